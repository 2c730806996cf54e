package gpu

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/easel/easel/internal/engine"
)

// Options configure Open.
type Options struct {
	// Driver is NVML (NewNVML) or a fake; nil means no NVML at all.
	Driver Driver
	Tier   string // GPU tier, for metric labels
	// Slots is how many GPUs to render on: 0 means every GPU NVML finds.
	Slots int
	// NoDriverSlots is the number of render slots when there is no driver
	// (GPU_SLOTS): plain slots with no device behind them, as the sim engine
	// needs.
	NoDriverSlots int
	Log           *slog.Logger
	// SampleEvery is how often devices are read for metrics and health
	// (default 5 s).
	SampleEvery time.Duration
	// MaxTempC takes a device out of service at this temperature; 0 uses
	// the device's own slowdown threshold, or DefaultMaxTempC.
	MaxTempC float64
	// Foreign reports whether a GPU process (host PID) is something other
	// than this host's InvokeAI servers: admission leaves its memory alone.
	// Nil treats every process as InvokeAI's (see ProcessMatcher).
	Foreign func(pid uint32) bool
	// CUDACheck, when set, is run once at Open: devices it finds unusable
	// (or all of them, when CUDA cannot start at all) are taken out of
	// service, so the host reports them and drains instead of failing
	// every render. See CUDACheck.
	CUDACheck func(ctx context.Context, uuids []string) (map[string]error, error)
}

// DefaultMaxTempC is the over-temperature limit for a device that reports no
// slowdown threshold.
const DefaultMaxTempC = 90

// Host is one GPU worker host: its devices, their pool, telemetry and
// health. Its Acquire, Release, Admit and Meter serve the Render activity.
type Host struct {
	tier    string
	log     *slog.Logger
	driver  Driver // nil without NVML
	foreign func(pid uint32) bool
	closers []func() error
	// running counts Run and the event watcher: Close waits for them, so
	// the driver library is never unloaded under a call in progress.
	running sync.WaitGroup
	devices map[int]engine.Device
	order   []int
	infos   map[int]Info
	pool    *Pool
	every   time.Duration
	maxTemp float64
	metrics hostMetrics

	mu      sync.Mutex
	closed  bool
	samples map[int]Sample
	health  map[int]*deviceHealth
}

// Open starts NVML and discovers the host's GPUs. Where no NVIDIA driver is
// installed it logs that once and returns a host of NoDriverSlots plain
// slots, without GPU metrics, health checks or VRAM admission.
func Open(o Options) (*Host, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Driver == nil {
		return pseudo(o), nil
	}
	if err := o.Driver.Init(); err != nil {
		o.Log.Warn("no NVIDIA driver found: running without GPU metrics, health checks or VRAM admission",
			"slots", max(o.NoDriverSlots, 1), "err", err)
		return pseudo(o), nil
	}
	h, err := discover(o)
	if err != nil {
		_ = o.Driver.Shutdown()
		return nil, err
	}
	return h, nil
}

// Pseudo is a host of slots plain devices (indexes 0..slots-1) with no
// driver behind them: renders are pinned and counted, nothing is measured.
func Pseudo(slots int) *Host { return pseudo(Options{NoDriverSlots: slots, Log: slog.Default()}) }

func pseudo(o Options) *Host {
	h := newHost(o, nil)
	for i := range max(o.NoDriverSlots, 1) {
		h.addDevice(i, Info{})
	}
	h.pool = NewPool(h.order)
	return h
}

func newHost(o Options, d Driver) *Host {
	every := o.SampleEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	return &Host{tier: o.Tier, log: o.Log, driver: d, foreign: o.Foreign, devices: map[int]engine.Device{}, infos: map[int]Info{},
		every: every, maxTemp: o.MaxTempC, metrics: newHostMetrics(), samples: map[int]Sample{},
		health: map[int]*deviceHealth{}}
}

func (h *Host) addDevice(i int, info Info) {
	h.devices[i] = engine.Device{Index: i, UUID: info.UUID}
	h.infos[i] = info
	h.order = append(h.order, i)
}

// discover builds the host from NVML's devices; a driver that sees no GPU
// leaves a plain host, as if there were no driver.
func discover(o Options) (*Host, error) {
	n, err := o.Driver.Count()
	if err != nil {
		return nil, fmt.Errorf("discover GPUs: %w", err)
	}
	if n == 0 {
		o.Log.Warn("the NVIDIA driver sees no GPU: running without GPU metrics", "slots", max(o.NoDriverSlots, 1))
		_ = o.Driver.Shutdown()
		return pseudo(o), nil
	}
	use := n
	if o.Slots > 0 {
		if o.Slots > n {
			return nil, fmt.Errorf("%d GPU slots asked for, but the host has %d GPUs (one slot per GPU)", o.Slots, n)
		}
		use = o.Slots
	}
	h := newHost(o, o.Driver)
	for i := range use {
		info, err := o.Driver.Info(i)
		if err != nil {
			return nil, fmt.Errorf("describe GPU %d: %w", i, err)
		}
		h.addDevice(i, info)
	}
	h.closers = append(h.closers, o.Driver.Shutdown)
	h.pool = NewPool(h.order)
	o.Log.Info("GPUs found", "count", n, "used", use, "devices", h.describe())
	h.checkCUDA(o.CUDACheck)
	return h, nil
}

func (h *Host) describe() []string {
	out := make([]string, 0, len(h.order))
	for _, i := range h.order {
		out = append(out, fmt.Sprintf("%d: %s %s", i, h.infos[i].Name, h.infos[i].UUID))
	}
	return out
}

// Slots is the number of renders the host runs at once: one per device.
func (h *Host) Slots() int { return len(h.order) }

// HasNVML reports whether the host's GPUs are read through a driver.
func (h *Host) HasNVML() bool { return h.driver != nil }

// Acquire pins a free, healthy device to the caller until Release.
func (h *Host) Acquire(ctx context.Context) (engine.Device, error) {
	i, err := h.pool.Acquire(ctx)
	if err != nil {
		return engine.Device{}, err
	}
	return h.devices[i], nil
}

// Release returns a device taken with Acquire.
func (h *Host) Release(dev engine.Device) { h.pool.Release(dev.Index) }

// Exhausted is closed once no device of the host is healthy.
func (h *Host) Exhausted() <-chan struct{} { return h.pool.Exhausted() }

// Admit checks that dev can hold req: it fails with an error wrapping
// engine.ErrTooLarge or engine.ErrDeviceBusy. The Render activity sends the
// engine one image per request, so the batch checked here is 1. Without
// NVML every render is admitted.
//
// What the render can use is the device's free memory plus what this
// host's InvokeAI already holds: InvokeAI keeps models resident in its model
// cache and evicts them to make room for the next render, so its memory is
// not taken. Only other processes (and the driver's reserve) are. A render
// that still does not fit fails in InvokeAI with an out-of-memory error,
// which is retried.
func (h *Host) Admit(dev engine.Device, req engine.Request) error {
	if h.driver == nil {
		return nil
	}
	free, total, err := h.driver.Memory(dev.Index)
	if err != nil {
		// A device that cannot report memory is the health monitor's
		// business; refusing the render here would not make it healthier.
		h.log.Warn("read GPU memory for admission", "gpu", dev.Index, "err", err)
		return nil
	}
	return admit(dev.Index, req.Model, req.Width, req.Height, 1, h.usable(dev.Index, free, total), total)
}

// usable is free memory plus the memory of the device's InvokeAI
// processes, at most total. When the processes cannot be listed, the whole
// device counts: InvokeAI's out-of-memory error is the backstop.
func (h *Host) usable(device int, free, total uint64) uint64 {
	procs, err := h.driver.Processes(device)
	if err != nil {
		h.log.Warn("list GPU processes for admission: admitting against the whole device", "gpu", device, "err", err)
		return total
	}
	usable := free
	for _, p := range procs {
		if h.foreign == nil || !h.foreign(p.PID) {
			usable += p.UsedBytes
		}
	}
	return min(usable, total)
}

// Close waits for Run and the event watcher to return (cancel Run's
// context first), then shuts NVML down.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.running.Wait()
	var first error
	for i := len(h.closers) - 1; i >= 0; i-- {
		if err := h.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// start registers n goroutines that Close must wait for, unless the host
// is closed already.
func (h *Host) start(n int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.running.Add(n)
	return true
}

func gpuLabel(i int) string { return strconv.Itoa(i) }
