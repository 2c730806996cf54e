//go:build cgo

package gpu

import (
	"fmt"
	"math"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// NewNVML returns the Driver backed by the host's libnvidia-ml. The library
// is loaded by Init, so a binary built with it starts on any host; Init fails
// where no NVIDIA driver is installed.
func NewNVML() Driver { return nvmlDriver{} }

type nvmlDriver struct{}

// nvmlErr turns an NVML return code into an error (nil on success); a GPU
// that fell off the bus also matches ErrGPULost.
func nvmlErr(what string, ret nvml.Return) error {
	switch ret {
	case nvml.SUCCESS:
		return nil
	case nvml.ERROR_GPU_IS_LOST:
		return fmt.Errorf("nvml %s: %w: %w", what, ErrGPULost, ret)
	}
	return fmt.Errorf("nvml %s: %w", what, ret)
}

func (nvmlDriver) Init() error     { return nvmlErr("init", nvml.Init()) }
func (nvmlDriver) Shutdown() error { return nvmlErr("shutdown", nvml.Shutdown()) }

func (nvmlDriver) Count() (int, error) {
	n, ret := nvml.DeviceGetCount()
	return n, nvmlErr("device count", ret)
}

func device(i int) (nvml.Device, error) {
	d, ret := nvml.DeviceGetHandleByIndex(i)
	return d, nvmlErr(fmt.Sprintf("device %d", i), ret)
}

func (nvmlDriver) Info(i int) (Info, error) {
	d, err := device(i)
	if err != nil {
		return Info{}, err
	}
	var info Info
	var ret nvml.Return
	if info.Name, ret = d.GetName(); ret != nvml.SUCCESS {
		return Info{}, nvmlErr("name", ret)
	}
	if info.UUID, ret = d.GetUUID(); ret != nvml.SUCCESS {
		return Info{}, nvmlErr("uuid", ret)
	}
	// Not every board reports a slowdown threshold; the health rules then
	// use their own limit.
	if t, ret := d.GetTemperatureThreshold(nvml.TEMPERATURE_THRESHOLD_SLOWDOWN); ret == nvml.SUCCESS {
		info.SlowdownC = float64(t)
	}
	return info, nil
}

func (nvmlDriver) Memory(i int) (free, total uint64, err error) {
	d, err := device(i)
	if err != nil {
		return 0, 0, err
	}
	m, ret := d.GetMemoryInfo()
	return m.Free, m.Total, nvmlErr("memory info", ret)
}

// Sample reads one device. Memory must be readable; the other figures are
// optional because MIG slices and some boards do not report them.
func (nvmlDriver) Sample(i int) (Sample, error) {
	d, err := device(i)
	if err != nil {
		return Sample{}, err
	}
	m, ret := d.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return Sample{}, nvmlErr("memory info", ret)
	}
	s := Sample{MemoryUsed: m.Used, MemoryTotal: m.Total, Utilization: math.NaN(),
		TemperatureC: math.NaN(), PowerW: math.NaN()}
	if u, ret := d.GetUtilizationRates(); ret == nvml.SUCCESS {
		s.Utilization = float64(u.Gpu) / 100
	}
	if t, ret := d.GetTemperature(nvml.TEMPERATURE_GPU); ret == nvml.SUCCESS {
		s.TemperatureC = float64(t)
	}
	if mw, ret := d.GetPowerUsage(); ret == nvml.SUCCESS {
		s.PowerW = float64(mw) / 1000
	}
	s.ECC = eccCounts(d)
	return s, nil
}

// eccCounts reads the volatile ECC counters, or nil where ECC is off or
// unsupported (consumer boards).
func eccCounts(d nvml.Device) *ECCCounts {
	corr, ret := d.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_CORRECTED, nvml.VOLATILE_ECC)
	if ret != nvml.SUCCESS {
		return nil
	}
	unc, ret := d.GetTotalEccErrors(nvml.MEMORY_ERROR_TYPE_UNCORRECTED, nvml.VOLATILE_ECC)
	if ret != nvml.SUCCESS {
		return nil
	}
	return &ECCCounts{Corrected: corr, Uncorrected: unc}
}

// Accounting reads the per-process sample counters of accounting stats v2.
// Older drivers lack that call; they report accounting as disabled, so GPU
// seconds fall back to the device-held wall clock.
func (nvmlDriver) Accounting(i int) (Accounting, error) {
	d, err := device(i)
	if err != nil {
		return Accounting{}, err
	}
	mode, ret := d.GetAccountingMode()
	if ret != nvml.SUCCESS || mode != nvml.FEATURE_ENABLED {
		return Accounting{}, nil
	}
	if nvml.Extensions().LookupSymbol("nvmlDeviceGetAccountingStats_v2") != nil {
		return Accounting{}, nil
	}
	pids, ret := d.GetAccountingPids()
	if ret != nvml.SUCCESS {
		return Accounting{}, nvmlErr("accounting pids", ret)
	}
	a := Accounting{Enabled: true, Procs: make(map[uint32]ProcUsage, len(pids))}
	for _, pid := range pids {
		st, ret := d.GetAccountingStats_v2(uint32(pid))
		if ret != nvml.SUCCESS {
			continue // the process left the driver's circular buffer
		}
		a.Procs[uint32(pid)] = ProcUsage{Samples: uint64(st.SampleCount), SumUtil: st.SumGpuUtil}
	}
	return a, nil
}

// Processes lists the device's compute processes. A process whose memory
// the driver cannot attribute (NVML's "not available", seen under some
// virtualisation) counts as holding none.
func (nvmlDriver) Processes(i int) ([]Process, error) {
	d, err := device(i)
	if err != nil {
		return nil, err
	}
	infos, ret := d.GetComputeRunningProcesses()
	if ret != nvml.SUCCESS {
		return nil, nvmlErr("compute processes", ret)
	}
	out := make([]Process, 0, len(infos))
	for _, p := range infos {
		used := p.UsedGpuMemory
		if used == math.MaxUint64 {
			used = 0
		}
		out = append(out, Process{PID: p.Pid, UsedBytes: used})
	}
	return out, nil
}

func (nvmlDriver) Events(devices []int) (Events, error) {
	set, ret := nvml.EventSetCreate()
	if ret != nvml.SUCCESS {
		return nil, nvmlErr("event set", ret)
	}
	for _, i := range devices {
		d, err := device(i)
		if err != nil {
			_ = set.Free()
			return nil, err
		}
		// Registering only the supported types: a board without ECC
		// refuses the double-bit event and would lose its XIDs too.
		supported, ret := d.GetSupportedEventTypes()
		if ret != nvml.SUCCESS {
			continue
		}
		want := supported & (nvml.EventTypeXidCriticalError | nvml.EventTypeDoubleBitEccError)
		if ret := d.RegisterEvents(want, set); ret != nvml.SUCCESS && ret != nvml.ERROR_NOT_SUPPORTED {
			_ = set.Free()
			return nil, nvmlErr(fmt.Sprintf("register events of device %d", i), ret)
		}
	}
	return nvmlEvents{set: set}, nil
}

type nvmlEvents struct{ set nvml.EventSet }

func (e nvmlEvents) Wait(timeout time.Duration) (Event, bool, error) {
	data, ret := e.set.Wait(uint32(timeout.Milliseconds()))
	if ret == nvml.ERROR_TIMEOUT {
		return Event{}, false, nil
	}
	if ret != nvml.SUCCESS {
		return Event{}, false, nvmlErr("event wait", ret)
	}
	idx, ret := data.Device.GetIndex()
	if ret != nvml.SUCCESS {
		return Event{}, false, nvmlErr("event device index", ret)
	}
	ev := Event{Device: idx, Kind: EventXID, XID: data.EventData}
	if data.EventType&nvml.EventTypeDoubleBitEccError != 0 {
		ev.Kind = EventDoubleBit
	}
	return ev, true, nil
}

func (e nvmlEvents) Close() error { return nvmlErr("free event set", e.set.Free()) }
