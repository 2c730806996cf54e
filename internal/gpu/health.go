package gpu

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// appXIDs are XID codes raised by a faulty application rather than a faulty
// device: a bad kernel (13), a GPU page fault (31), a stopped channel (43),
// preemptive cleanup after a killed process (45), a video decoder exception
// (68) and a context switch timeout (109). The device keeps working, so they
// are counted but do not take it out of service; every other XID does. (A
// contained ECC error, 94, kills only its process, but its uncorrectable
// count takes the device out anyway: it needs a reset to remap the row.)
var appXIDs = map[uint64]bool{13: true, 31: true, 43: true, 45: true, 68: true, 109: true}

// coolingMarginC is how far below its limit a hot device must cool before it
// takes work again, so a device at the limit does not flap.
const coolingMarginC = 5

// deviceHealth is why a device is out of service. fault is sticky until the
// worker restarts (after the GPU is reset or replaced); heat passes.
type deviceHealth struct {
	fault string
	hot   bool
}

func (d *deviceHealth) healthy() bool { return d.fault == "" && !d.hot }

// Run samples every device each SampleEvery for metrics and health, and
// watches XID and ECC events, until ctx ends. Without NVML it only waits.
func (h *Host) Run(ctx context.Context) {
	if h.driver == nil {
		<-ctx.Done()
		return
	}
	if !h.start(2) {
		return // closed already
	}
	defer h.running.Done()
	go func() {
		defer h.running.Done()
		h.watchEvents(ctx)
	}()
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		h.sampleAll()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (h *Host) sampleAll() {
	for _, i := range h.order {
		s, err := h.driver.Sample(i)
		if errors.Is(err, ErrGPULost) {
			h.fault(i, "device lost: "+err.Error())
			continue
		}
		if err != nil {
			h.log.Warn("read GPU", "gpu", i, "err", err)
			continue
		}
		h.record(i, s)
	}
}

// record keeps a sample for the collector and applies the health rules that
// samples tell: uncorrectable ECC errors and over-temperature.
func (h *Host) record(i int, s Sample) {
	h.mu.Lock()
	h.samples[i] = s
	h.mu.Unlock()
	if s.ECC != nil && s.ECC.Uncorrected > 0 {
		h.fault(i, fmt.Sprintf("%d uncorrectable ECC errors since the driver loaded", s.ECC.Uncorrected))
	}
	h.checkHeat(i, s.TemperatureC)
}

func (h *Host) checkHeat(i int, tempC float64) {
	if math.IsNaN(tempC) {
		return
	}
	limit := h.tempLimit(i)
	h.mu.Lock()
	st := h.state(i)
	was := st.hot
	switch {
	case tempC >= limit:
		st.hot = true
	case tempC <= limit-coolingMarginC:
		st.hot = false
	}
	now := st.hot
	h.mu.Unlock()
	if now != was {
		h.apply(i, fmt.Sprintf("temperature %.0f C, limit %.0f C", tempC, limit))
	}
}

func (h *Host) tempLimit(i int) float64 {
	switch {
	case h.maxTemp > 0:
		return h.maxTemp
	case h.infos[i].SlowdownC > 0:
		return h.infos[i].SlowdownC
	}
	return DefaultMaxTempC
}

// fault takes a device out of service for good (until restart).
func (h *Host) fault(i int, reason string) {
	h.mu.Lock()
	st := h.state(i)
	first := st.fault == ""
	if first {
		st.fault = reason
	}
	h.mu.Unlock()
	if first {
		h.apply(i, reason)
	}
}

// apply moves the device in or out of the pool to match its state.
func (h *Host) apply(i int, why string) {
	h.mu.Lock()
	healthy := h.state(i).healthy()
	h.mu.Unlock()
	if healthy {
		if h.pool.Restore(i) {
			h.log.Info("GPU back in service", "gpu", i, "reason", why)
		}
		return
	}
	if h.pool.Remove(i) {
		h.log.Error("GPU taken out of service: it takes no more renders", "gpu", i, "uuid", h.infos[i].UUID,
			"reason", why)
	}
}

// state returns the device's health record; callers hold mu.
func (h *Host) state(i int) *deviceHealth {
	st, ok := h.health[i]
	if !ok {
		st = &deviceHealth{}
		h.health[i] = st
	}
	return st
}

// watchEvents applies XID and double-bit ECC events as they come.
func (h *Host) watchEvents(ctx context.Context) {
	evs, err := h.driver.Events(h.order)
	if err != nil {
		h.log.Warn("GPU events unavailable: XID errors will not take GPUs out of service", "err", err)
		return
	}
	defer func() { _ = evs.Close() }()
	for ctx.Err() == nil {
		// A short wait lets the loop notice ctx ending; NVML cannot be
		// interrupted otherwise.
		ev, ok, err := evs.Wait(time.Second)
		if err != nil {
			h.log.Warn("wait for GPU events", "err", err)
			sleep(ctx, h.every)
			continue
		}
		if ok {
			h.onEvent(ev)
		}
	}
}

func (h *Host) onEvent(ev Event) {
	if _, ours := h.devices[ev.Device]; !ours {
		return
	}
	switch ev.Kind {
	case EventDoubleBit:
		h.fault(ev.Device, "uncorrectable (double-bit) ECC error")
	case EventXID:
		h.metrics.xidEvents.WithLabelValues(h.tier, gpuLabel(ev.Device), strconv.FormatUint(ev.XID, 10)).Inc()
		if appXIDs[ev.XID] {
			h.log.Warn("GPU reported an application XID; the device stays in service", "gpu", ev.Device, "xid", ev.XID)
			return
		}
		h.fault(ev.Device, fmt.Sprintf("critical XID %d", ev.XID))
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
