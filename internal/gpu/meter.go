package gpu

import (
	"time"

	"github.com/easel/easel/internal/engine"
)

// Meter starts measuring the GPU seconds a render uses on dev; the returned
// stop gives them. With NVML process accounting enabled on the device, they
// are the seconds the device's processes kept a kernel running during the
// render; otherwise (no NVML, accounting off, a render shorter than the
// driver's sampling period) the wall clock while the render held the
// device, which is exact for billing because the device is pinned to it.
func (h *Host) Meter(dev engine.Device) (stop func() float64) {
	start := time.Now()
	before, ok := h.accounting(dev.Index)
	return func() float64 {
		wall := time.Since(start)
		secs := wall.Seconds()
		if ok {
			if after, ok := h.accounting(dev.Index); ok {
				if s, ok := accountedSeconds(before, after, wall); ok {
					secs = s
				}
			}
		}
		h.metrics.busySeconds.WithLabelValues(h.tier, gpuLabel(dev.Index)).Add(secs)
		return secs
	}
}

// accounting reads the device's accounting, ok only when it is enabled.
func (h *Host) accounting(device int) (Accounting, bool) {
	if h.driver == nil {
		return Accounting{}, false
	}
	a, err := h.driver.Accounting(device)
	if err != nil || !a.Enabled {
		return Accounting{}, false
	}
	return a, true
}

// accountedSeconds turns two accounting readings taken around a render into
// GPU seconds: each process's mean utilization over the window (the growth
// of its utilization sum over the growth of its sample count) times the
// window, summed over processes and capped at the window. ok is false when
// no process was sampled inside the window.
func accountedSeconds(before, after Accounting, wall time.Duration) (float64, bool) {
	busy, sampled := 0.0, false
	for pid, a := range after.Procs {
		b := before.Procs[pid] // zero for a process that started in the window
		if a.Samples <= b.Samples || a.SumUtil < b.SumUtil {
			continue // not sampled in the window, or a reused pid
		}
		sampled = true
		// SumUtil is in hundredths of a percent: 10000 is a kernel always on.
		busy += float64(a.SumUtil-b.SumUtil) / float64(a.Samples-b.Samples) / 10000
	}
	if !sampled {
		return 0, false
	}
	return min(busy, 1) * wall.Seconds(), true
}
