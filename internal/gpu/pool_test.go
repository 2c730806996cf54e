package gpu

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPoolPinsOneRenderPerDevice(t *testing.T) {
	t.Parallel()
	p := NewPool([]int{0, 1})
	ctx := context.Background()
	a, _ := p.Acquire(ctx)
	b, _ := p.Acquire(ctx)
	if a == b {
		t.Fatalf("both renders got device %d", a)
	}
	got := make(chan int)
	go func() {
		d, _ := p.Acquire(ctx)
		got <- d
	}()
	select {
	case d := <-got:
		t.Fatalf("a third render got device %d while both were held", d)
	case <-time.After(20 * time.Millisecond):
	}
	p.Release(b)
	if d := <-got; d != b {
		t.Fatalf("got device %d, want the released %d", d, b)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := p.Acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire on a full pool: %v, want the context's error", err)
	}
}

func TestPoolRemovedDeviceTakesNoWork(t *testing.T) {
	t.Parallel()
	p := NewPool([]int{0, 1})
	ctx := context.Background()
	held, _ := p.Acquire(ctx) // device 0
	if !p.Remove(1) {
		t.Fatal("Remove(1) of a healthy device reported no change")
	}
	if !p.Remove(held) {
		t.Fatal("Remove of a held device reported no change")
	}
	select {
	case <-p.Exhausted():
	default:
		t.Fatal("no healthy device left, but Exhausted is open")
	}
	p.Release(held)
	if _, err := p.Acquire(ctx); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("Acquire with every device out: %v, want ErrNoDevice", err)
	}
	if !p.Restore(1) {
		t.Fatal("Restore(1) reported no change")
	}
	if d, err := p.Acquire(ctx); err != nil || d != 1 {
		t.Fatalf("after Restore: device %d, %v; want 1", d, err)
	}
}

func TestPoolWaiterGivesUpWhenLastDeviceGoes(t *testing.T) {
	t.Parallel()
	p := NewPool([]int{0})
	d, _ := p.Acquire(context.Background())
	errc := make(chan error)
	go func() {
		_, err := p.Acquire(context.Background())
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	p.Remove(d)
	if err := <-errc; !errors.Is(err, ErrNoDevice) {
		t.Fatalf("waiter got %v, want ErrNoDevice", err)
	}
}

// A done context asks whether a device is free now: Acquire answers without
// waiting.
func TestPoolAcquireWithDoneContext(t *testing.T) {
	t.Parallel()
	p := NewPool([]int{0})
	done, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := p.Acquire(done)
	if err != nil || d != 0 {
		t.Fatalf("free device with a done context: %d, %v; want device 0", d, err)
	}
	if _, err := p.Acquire(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("no free device with a done context: %v, want context.Canceled", err)
	}
}
