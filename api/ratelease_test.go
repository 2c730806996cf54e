package api

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/easel/easel/internal/testenv"
)

// countCalls counts the commands a Redis client sends.
type countCalls struct{ n atomic.Int64 }

func (c *countCalls) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *countCalls) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *countCalls) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestLeasesNeverPassTheLimit: two API instances share one user's bucket
// of Enterprise's 6,000 reads a minute. Together they allow exactly the
// bucket's 6,000 and refuse the next, with about a tenth of the Redis
// round trips of one per request; a Free user's 120 still ask Redis on
// every request, and the 121st is refused with when to retry.
// (Refusals cost two round trips: a lease, then a single token.)
func TestLeasesNeverPassTheLimit(t *testing.T) {
	rdb := testenv.Redis(t)
	calls := &countCalls{}
	rdb.AddHook(calls)
	ctx := context.Background()
	a, b := newLeases(redis_rate.NewLimiter(rdb)), newLeases(redis_rate.NewLimiter(rdb))
	// The clock stands still: no token comes back during the test, and no
	// lease lapses.
	now := time.Now()
	a.clock = func() time.Time { return now }
	b.clock = a.clock

	key := fmt.Sprintf("ratelimit:lease-test-%d:read", time.Now().UnixNano())
	t.Cleanup(func() { rdb.Del(context.Background(), "rate:"+key) })
	limit := redis_rate.PerMinute(6000)
	allowed, before := 0, calls.n.Load()
	for i := range 7000 {
		l := a
		if i%3 == 0 {
			l = b
		}
		res, err := l.Allow(ctx, key, limit)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed == 1 {
			allowed++
		} else if res.RetryAfter <= 0 {
			t.Fatalf("request %d refused without a retry time: %+v", i, res)
		}
	}
	// Real time passes while the test runs: the bucket may have refilled
	// by a token per 10 ms of it, never more.
	refill := int(time.Since(now) / (10 * time.Millisecond))
	if allowed < 6000 || allowed > 6000+refill {
		t.Errorf("allowed %d of 7000 against a limit of 6000 (refill allowance %d)", allowed, refill)
	}
	// 600 leases of 10 for the allowed; a refusal asks for a lease, then
	// for one token: two each.
	if got := calls.n.Load() - before; got > 6000/10+2*1000+100 {
		t.Errorf("%d Redis commands for 7000 requests, want about 2,600: the leases saved nothing", got)
	}

	freeKey := key + "-free"
	t.Cleanup(func() { rdb.Del(context.Background(), "rate:"+freeKey) })
	free := redis_rate.PerMinute(120)
	before = calls.n.Load()
	for i := range 121 {
		res, err := a.Allow(ctx, freeKey, free)
		if err != nil {
			t.Fatal(err)
		}
		if want := i < 120; (res.Allowed == 1) != want {
			t.Fatalf("Free request %d: allowed %d, want %v", i+1, res.Allowed, want)
		}
		if i == 120 && res.RetryAfter <= 0 {
			t.Fatalf("the 121st refused without a retry time: %+v", res)
		}
	}
	if got := calls.n.Load() - before; got < 121 {
		t.Errorf("%d Redis commands for 121 Free requests: want one each", got)
	}
}

// TestLeaseLapses: tokens a lease did not spend within leaseFor are not
// spent later; the next request asks Redis again.
func TestLeaseLapses(t *testing.T) {
	rdb := testenv.Redis(t)
	l := newLeases(redis_rate.NewLimiter(rdb))
	now := time.Now()
	l.clock = func() time.Time { return now }
	key := fmt.Sprintf("ratelimit:lapse-test-%d:read", time.Now().UnixNano())
	t.Cleanup(func() { rdb.Del(context.Background(), "rate:"+key) })
	limit := redis_rate.PerMinute(6000)
	if _, err := l.Allow(context.Background(), key, limit); err != nil {
		t.Fatal(err)
	}
	if res := l.spend(key, limit); res == nil || res.Allowed != 1 {
		t.Fatalf("a live lease did not spend: %+v", res)
	}
	now = now.Add(leaseFor)
	if res := l.spend(key, limit); res != nil {
		t.Fatalf("a lapsed lease spent: %+v", res)
	}
}

// TestLeasesPruned: leases that lapsed are dropped once many are held, so
// the map does not grow with every user ever seen.
func TestLeasesPruned(t *testing.T) {
	l := newLeases(nil)
	now := time.Now()
	l.clock = func() time.Time { return now }
	res := &redis_rate.Result{Remaining: 5}
	for i := range leasePrune {
		l.keep(fmt.Sprintf("old-%d", i), 3, res)
	}
	now = now.Add(leaseFor)
	l.keep("new", 3, res)
	if len(l.held) != 1 || l.held["new"] == nil {
		t.Fatalf("%d leases held after the old ones lapsed, want only the new one", len(l.held))
	}
	// Live leases are kept, and the next prune waits a leaseFor.
	for i := range leasePrune {
		l.keep(fmt.Sprintf("live-%d", i), 3, res)
	}
	if len(l.held) != leasePrune+1 {
		t.Fatalf("%d leases held, want every live one", len(l.held))
	}
}
