package gpu

import (
	"context"
	"math"
	"testing"
	"time"
)

func TestAccountedSeconds(t *testing.T) {
	t.Parallel()
	before := Accounting{Enabled: true, Procs: map[uint32]ProcUsage{
		100: {Samples: 50, SumUtil: 50 * 2000}, // an engine process, 20% busy so far
		200: {Samples: 10, SumUtil: 0},         // idle the whole window
	}}
	after := Accounting{Enabled: true, Procs: map[uint32]ProcUsage{
		100: {Samples: 60, SumUtil: 50*2000 + 10*8000}, // 80% busy in the window
		200: {Samples: 20, SumUtil: 0},
		300: {Samples: 5, SumUtil: 5 * 1000}, // started in the window, 10% busy
	}}
	secs, ok := accountedSeconds(before, after, 10*time.Second)
	if !ok || math.Abs(secs-9) > 1e-9 {
		t.Fatalf("got %v %v, want (0.8 + 0.1) x 10 s = 9 s", secs, ok)
	}
	// Kernels of several processes overlap; the device cannot be busier
	// than the window.
	after.Procs[200] = ProcUsage{Samples: 20, SumUtil: 10 * 9000}
	if secs, _ := accountedSeconds(before, after, 10*time.Second); secs != 10 {
		t.Fatalf("got %v, want the window (10 s)", secs)
	}
	if _, ok := accountedSeconds(before, before, time.Second); ok {
		t.Fatal("a window with no sample must fall back to the wall clock")
	}
}

// Sequential: it bounds wall-clock sleeps from above, which other tests
// competing for the CPU would stretch.
func TestMeterUsesAccountingWhereEnabled(t *testing.T) {
	h, f := openFake(t, 1)
	dev, _ := h.Acquire(context.Background())

	// Accounting off: the wall clock while the device was held.
	stop := h.Meter(dev)
	time.Sleep(30 * time.Millisecond)
	if secs := stop(); secs < 0.03 || secs > 1 {
		t.Fatalf("accounting off: %v s, want about 0.03 s of wall clock", secs)
	}

	// Accounting on: the engine process was half busy during the render.
	f.accts[0] = Accounting{Enabled: true, Procs: map[uint32]ProcUsage{7: {Samples: 1, SumUtil: 0}}}
	stop = h.Meter(dev)
	time.Sleep(40 * time.Millisecond)
	f.mu.Lock()
	f.accts[0] = Accounting{Enabled: true, Procs: map[uint32]ProcUsage{7: {Samples: 3, SumUtil: 2 * 5000}}}
	f.mu.Unlock()
	secs := stop()
	if secs < 0.02 || secs > 0.5 {
		t.Fatalf("accounting on: %v s, want about half of 0.04 s", secs)
	}
}
