package api

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// One holder per key at a time, others in turn; other keys do not wait;
// a waiter gives up when its context ends.
func TestKeyedLocks(t *testing.T) {
	var k keyedLocks
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := k.lock(context.Background(), "sub-1")
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			unlock()
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d holders of one key at once, want 1", most.Load())
	}

	unlock, _ := k.lock(context.Background(), "sub-1")
	other, err := k.lock(context.Background(), "sub-2")
	if err != nil {
		t.Fatalf("another key waited: %v", err)
	}
	other()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := k.lock(ctx, "sub-1"); err == nil {
		t.Fatal("took a held key")
	}
	unlock()
	again, err := k.lock(context.Background(), "sub-1")
	if err != nil {
		t.Fatal(err)
	}
	again()
}
