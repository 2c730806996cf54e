package api

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// leases takes a user's rate-limit tokens from the shared limiter in Redis
// a few at a time and spends them in this process: for a plan whose limit
// allows several requests in leaseSpan, one Redis round trip serves that
// many requests instead of one each. Every token still comes out of the
// one bucket all API instances share, so no user gets past the plan's
// limit; tokens a lease leaves unspent when it lapses (after leaseFor) are
// lost, which only makes the limit stricter for a moment, never looser.
// Plans too small for a batch (Free, Basic) ask Redis on every request.
type leases struct {
	limiter *redis_rate.Limiter

	mu     sync.Mutex
	held   map[string]*lease
	pruned time.Time        // when lapsed leases were last dropped
	clock  func() time.Time // nil: time.Now
}

// lease is tokens taken from the shared bucket and not yet spent.
type lease struct {
	tokens    int
	remaining int           // what the bucket had left when they were taken
	reset     time.Duration // and how long until it would be full again
	until     time.Time
}

const (
	// leaseSpan is how much of a limit's rate one lease takes: a tenth of
	// a second (Enterprise's 6,000 reads a minute: 10 tokens).
	leaseSpan = 100 * time.Millisecond
	// leaseFor is how long unspent tokens stay spendable.
	leaseFor = time.Second
	// leasePrune is the number of held leases past which lapsed ones are
	// dropped, at most once per leaseFor (every lease may still be live).
	leasePrune = 10_000
)

// newLeases spends tokens of limiter's buckets in batches.
func newLeases(limiter *redis_rate.Limiter) *leases {
	return &leases{limiter: limiter, held: map[string]*lease{}}
}

func (l *leases) now() time.Time {
	if l.clock != nil {
		return l.clock()
	}
	return time.Now()
}

// Allow answers one request against key's limit: from a lease when one is
// held, else from Redis, taking a batch when the limit allows one.
func (l *leases) Allow(ctx context.Context, key string, limit redis_rate.Limit) (*redis_rate.Result, error) {
	if res := l.spend(key, limit); res != nil {
		return res, nil
	}
	if n := batch(limit); n > 1 {
		res, err := l.limiter.AllowN(ctx, key, limit, n)
		if err != nil {
			return nil, fmt.Errorf("rate limit %s: take %d: %w", key, n, err)
		}
		if res.Allowed == n {
			l.keep(key, n-1, res)
			res.Allowed, res.Remaining = 1, res.Remaining+n-1
			return res, nil
		}
		// Fewer than a batch left: one token at a time.
	}
	res, err := l.limiter.Allow(ctx, key, limit)
	if err != nil {
		return nil, fmt.Errorf("rate limit %s: %w", key, err)
	}
	return res, nil
}

// batch is how many tokens one lease of limit takes.
func batch(limit redis_rate.Limit) int {
	if limit.Period <= 0 {
		return 1
	}
	return max(int(int64(limit.Rate)*int64(leaseSpan)/int64(limit.Period)), 1)
}

// spend takes a token from key's lease, if one is held and live.
func (l *leases) spend(key string, limit redis_rate.Limit) *redis_rate.Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	le := l.held[key]
	if le == nil || le.tokens == 0 || !l.now().Before(le.until) {
		return nil
	}
	le.tokens--
	return &redis_rate.Result{Limit: limit, Allowed: 1, Remaining: le.remaining + le.tokens, ResetAfter: le.reset, RetryAfter: -1}
}

// keep holds n tokens just taken for key, beside any still held.
func (l *leases) keep(key string, n int, res *redis_rate.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.held) >= leasePrune && now.Sub(l.pruned) >= leaseFor {
		l.pruned = now
		for k, le := range l.held {
			if !now.Before(le.until) {
				delete(l.held, k)
			}
		}
	}
	le := l.held[key]
	if le == nil || !now.Before(le.until) {
		le = &lease{}
		l.held[key] = le
	}
	le.tokens += n
	le.remaining, le.reset, le.until = res.Remaining, res.ResetAfter, now.Add(leaseFor)
}
