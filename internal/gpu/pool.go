package gpu

import (
	"context"
	"slices"
	"sync"
)

// Pool hands out device indexes, one render per device at a time. It
// replaces a counting semaphore so that each render knows which GPU it
// holds, and so that a GPU found unhealthy stops getting work.
type Pool struct {
	mu        sync.Mutex
	free      []int        // healthy devices nobody holds, in handing-out order
	healthy   map[int]bool // every device; false once taken out of service
	held      map[int]bool
	changed   chan struct{} // closed and replaced whenever a device frees up
	exhausted chan struct{} // closed the first time no healthy device is left
}

// NewPool returns a pool of the given device indexes, all healthy and free.
func NewPool(devices []int) *Pool {
	p := &Pool{healthy: make(map[int]bool, len(devices)), held: make(map[int]bool, len(devices)),
		changed: make(chan struct{}), exhausted: make(chan struct{})}
	for _, d := range devices {
		p.healthy[d] = true
		p.free = append(p.free, d)
	}
	return p
}

// Acquire hands a free healthy device to the caller until Release, waiting
// for one until ctx ends; a device already free is handed out even when ctx
// is done, so a done ctx asks "is one free now?". It fails with ErrNoDevice
// when the pool has no healthy device at all, so that a job fails over to
// another host instead of waiting forever.
func (p *Pool) Acquire(ctx context.Context) (int, error) {
	for {
		p.mu.Lock()
		if p.healthyCount() == 0 {
			p.mu.Unlock()
			return 0, ErrNoDevice
		}
		if len(p.free) > 0 {
			d := p.free[0]
			p.free = p.free[1:]
			p.held[d] = true
			p.mu.Unlock()
			return d, nil
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-changed:
		}
	}
}

// Release returns a device taken with Acquire. An unhealthy device stays out.
func (p *Pool) Release(d int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.held[d] {
		return
	}
	p.held[d] = false
	if p.healthy[d] {
		p.free = append(p.free, d)
	}
	p.notify()
}

// Remove takes a device out of service: a holder keeps it until Release,
// but nobody gets it again until Restore. It reports whether the device
// was healthy before.
func (p *Pool) Remove(d int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	was, known := p.healthy[d]
	if !known || !was {
		return false
	}
	p.healthy[d] = false
	p.free = slices.DeleteFunc(p.free, func(x int) bool { return x == d })
	if p.healthyCount() == 0 {
		close(p.exhausted)
	}
	// Waiters must re-check: with no healthy device left they give up.
	p.notify()
	return true
}

// Restore puts a device removed for a passing reason (heat) back in service.
// It reports whether the device was out before.
func (p *Pool) Restore(d int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	was, known := p.healthy[d]
	if !known || was {
		return false
	}
	p.healthy[d] = true
	if !p.held[d] {
		p.free = append(p.free, d)
	}
	p.notify()
	return true
}

// Healthy reports whether d is in service.
func (p *Pool) Healthy(d int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.healthy[d]
}

// Exhausted is closed the first time the pool has no healthy device left:
// the host can no longer render and should stop taking work.
func (p *Pool) Exhausted() <-chan struct{} { return p.exhausted }

func (p *Pool) healthyCount() int {
	n := 0
	for _, ok := range p.healthy {
		if ok {
			n++
		}
	}
	return n
}

// notify wakes every Acquire waiting for a change; callers hold mu.
func (p *Pool) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}
