package gpu

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func openFake(t *testing.T, n int) (*Host, *fakeDriver) {
	t.Helper()
	f := newFakeDriver(n)
	log, _ := bufferLog()
	h, err := Open(Options{Driver: f, Tier: "a10g", Log: log, SampleEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return h, f
}

func TestOverTemperatureTakesDeviceOutUntilItCools(t *testing.T) {
	t.Parallel()
	h, _ := openFake(t, 1)
	for _, step := range []struct {
		tempC   float64
		healthy bool
	}{{60, true}, {88, false}, {85, false}, {83, true}, {nan, true}} {
		h.record(0, Sample{TemperatureC: step.tempC})
		if got := h.pool.Healthy(0); got != step.healthy {
			t.Fatalf("at %.0f C (slowdown 88 C): healthy=%v, want %v", step.tempC, got, step.healthy)
		}
	}
}

func TestUncorrectableECCIsSticky(t *testing.T) {
	t.Parallel()
	h, _ := openFake(t, 1)
	h.record(0, Sample{TemperatureC: 50, ECC: &ECCCounts{Corrected: 12}})
	if !h.pool.Healthy(0) {
		t.Fatal("corrected ECC errors took the device out")
	}
	h.record(0, Sample{TemperatureC: 50, ECC: &ECCCounts{Uncorrected: 1}})
	h.record(0, Sample{TemperatureC: 50, ECC: &ECCCounts{}})
	if h.pool.Healthy(0) {
		t.Fatal("device with an uncorrectable ECC error is in service")
	}
}

func TestXIDEvents(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		ev      Event
		healthy bool
	}{
		{Event{Device: 0, Kind: EventXID, XID: 13}, true},  // the application's fault
		{Event{Device: 0, Kind: EventXID, XID: 31}, true},  // page fault in a kernel
		{Event{Device: 0, Kind: EventXID, XID: 79}, false}, // fallen off the bus
		{Event{Device: 0, Kind: EventXID, XID: 48}, false}, // double-bit ECC
		{Event{Device: 0, Kind: EventDoubleBit}, false},
	} {
		t.Run(fmt.Sprintf("kind%d-xid%d", c.ev.Kind, c.ev.XID), func(t *testing.T) {
			h, _ := openFake(t, 1)
			h.onEvent(c.ev)
			if got := h.pool.Healthy(0); got != c.healthy {
				t.Fatalf("healthy=%v, want %v", got, c.healthy)
			}
		})
	}
}

func TestLostGPUIsTakenOut(t *testing.T) {
	t.Parallel()
	h, f := openFake(t, 2)
	f.sampleErr[1] = fmt.Errorf("nvml memory info: %w", ErrGPULost)
	h.sampleAll()
	if !h.pool.Healthy(0) || h.pool.Healthy(1) {
		t.Fatalf("healthy 0=%v 1=%v, want only the lost GPU 1 out", h.pool.Healthy(0), h.pool.Healthy(1))
	}
}

// Run applies samples and events as they come, and the pool follows.
func TestRunMonitorsDevices(t *testing.T) {
	t.Parallel()
	h, f := openFake(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	f.events <- Event{Device: 1, Kind: EventXID, XID: 79}
	f.set(0, func(s *Sample) { s.TemperatureC = 95 })
	select {
	case <-h.Exhausted():
	case <-time.After(5 * time.Second):
		t.Fatalf("host still has a healthy GPU: 0=%v 1=%v", h.pool.Healthy(0), h.pool.Healthy(1))
	}
	if n := testutil.ToFloat64(h.metrics.xidEvents.WithLabelValues("a10g", "1", "79")); n != 1 {
		t.Fatalf("easel_gpu_xid_events_total{gpu=1,xid=79} = %v, want 1", n)
	}
	cancel()
	<-done
}
