package autoscale

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// StartFunc starts one GPU worker for a tier and returns how to stop it.
// `easel dev` passes one that starts a sim-engine Temporal worker; tests pass
// one that counts.
type StartFunc func(ctx context.Context, tier string) (stop func(), err error)

// LocalPool is the driver of `easel dev`: capacity is the number of
// in-process GPU workers per tier.
type LocalPool struct {
	start StartFunc
	mu    sync.Mutex
	tiers map[string][]func() // stop functions, oldest first
}

// NewLocalPool returns an empty pool that starts workers with start.
func NewLocalPool(start StartFunc) *LocalPool {
	return &LocalPool{start: start, tiers: map[string][]func(){}}
}

// Capacity is the number of workers running for the tier.
func (p *LocalPool) Capacity(_ context.Context, tier string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.tiers[tier]), nil
}

// SetCapacity starts or stops workers until n run. The newest stop first,
// like an Auto Scaling group's default termination of the newest instance.
// The lock is held throughout, so two calls never race past each other.
func (p *LocalPool) SetCapacity(ctx context.Context, tier string, n int) error {
	if n < 0 {
		return nonRetryable(ErrInvalidCapacity, fmt.Errorf("capacity %d of tier %s is negative", n, tier))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.tiers[tier]) < n {
		stop, err := p.start(ctx, tier)
		if err != nil {
			return fmt.Errorf("start worker %d of tier %s: %w", len(p.tiers[tier])+1, tier, err)
		}
		p.tiers[tier] = append(p.tiers[tier], stop)
	}
	for len(p.tiers[tier]) > n {
		last := len(p.tiers[tier]) - 1
		p.tiers[tier][last]()
		p.tiers[tier] = p.tiers[tier][:last]
	}
	return nil
}

// Close stops every worker, tier by tier in name order, newest first.
func (p *LocalPool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tier := range slices.Sorted(maps.Keys(p.tiers)) {
		stops := p.tiers[tier]
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		delete(p.tiers, tier)
	}
}
