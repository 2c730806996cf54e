// Package balancecache keeps users' credit balances in Redis under
// credit_balance:{user_id} for five minutes, so GET /v1/credits and /v1/me
// do not sum the ledger on every call.
//
// A cached balance must never outlive a ledger change. Writers bracket each
// change with Begin and the returned end func: Begin bumps the user's
// generation, marks a change in flight and drops the value; end drops the
// value again and clears the mark. Readers skip the cache while a change is
// in flight, and store what they read from Postgres only if the generation
// they saw before reading is still current and nothing is in flight, so a
// reader racing a change cannot put the old balance back.
package balancecache

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/easel/easel/internal/store"
)

// TTL is how long a balance stays cached.
const TTL = 5 * time.Minute

const (
	// pendingTTL bounds how long a crashed writer's in-flight mark keeps
	// readers off the cache.
	pendingTTL = 2 * time.Minute
	// genTTL must outlive any reader's database read, so a generation never
	// expires back to a value a slow reader saw.
	genTTL = time.Hour
)

// Key is the Redis key of the user's cached balance.
func Key(userID string) string     { return "credit_balance:" + userID }
func pendingKey(uid string) string { return Key(uid) + ":pending" }
func genKey(uid string) string     { return Key(uid) + ":gen" }

// Cache reads balances through Redis.
type Cache struct {
	rdb *redis.Client
	ttl time.Duration
}

// New wraps a Redis client.
func New(rdb *redis.Client) *Cache { return &Cache{rdb: rdb, ttl: TTL} }

// fill stores the value only if no change is in flight and the generation
// is the one the reader saw before reading the database.
var fill = redis.NewScript(`
local p = tonumber(redis.call('GET', KEYS[2]) or '0')
local g = redis.call('GET', KEYS[3]) or '0'
if p <= 0 and g == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`)

// finish clears one in-flight mark and drops the value the change made stale.
var finish = redis.NewScript(`
redis.call('DEL', KEYS[1])
local n = redis.call('DECR', KEYS[2])
if n <= 0 then redis.call('DEL', KEYS[2]) end
return n`)

// Balance returns the user's balance from the cache, or from load (which
// should read Postgres) on a miss. Redis failures fall back to load: the
// cache only saves work, it is never the source of truth.
func (c *Cache) Balance(ctx context.Context, userID string, load func(context.Context) (store.Balance, error)) (store.Balance, error) {
	vals, err := c.rdb.MGet(ctx, Key(userID), pendingKey(userID), genKey(userID)).Result()
	if err != nil {
		return load(ctx)
	}
	pending, _ := vals[1].(string)
	if n, _ := strconv.Atoi(pending); n > 0 {
		return load(ctx)
	}
	if s, ok := vals[0].(string); ok {
		var b store.Balance
		if json.Unmarshal([]byte(s), &b) == nil {
			return b, nil
		}
	}
	gen, _ := vals[2].(string)
	if gen == "" {
		gen = "0"
	}
	b, err := load(ctx)
	if err != nil {
		return store.Balance{}, err
	}
	if raw, err := json.Marshal(b); err == nil {
		// Best effort: a failed fill only means the next read misses too.
		_ = fill.Run(ctx, c.rdb, []string{Key(userID), pendingKey(userID), genKey(userID)},
			gen, raw, c.ttl.Milliseconds()).Err()
	}
	return b, nil
}

// Begin marks a ledger change for the user as in flight; call end once the
// change has committed (or failed). end is safe to call when err is non-nil.
func (c *Cache) Begin(ctx context.Context, userID string) (end func(context.Context) error, err error) {
	_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, genKey(userID))
		p.Expire(ctx, genKey(userID), genTTL)
		p.Incr(ctx, pendingKey(userID))
		p.Expire(ctx, pendingKey(userID), pendingTTL)
		p.Del(ctx, Key(userID))
		return nil
	})
	began := err == nil
	end = func(ctx context.Context) error {
		if !began {
			// Nothing was marked; still drop the value and bump the generation.
			return c.Invalidate(ctx, userID)
		}
		if err := finish.Run(ctx, c.rdb, []string{Key(userID), pendingKey(userID)}).Err(); err != nil {
			return fmt.Errorf("invalidate balance of %s: %w", userID, err)
		}
		return nil
	}
	if err != nil {
		return end, fmt.Errorf("mark balance of %s changing: %w", userID, err)
	}
	return end, nil
}

// Invalidate drops the user's cached balance after a change made outside a
// Begin/end bracket (e.g. a grant). Prefer the bracket: with Invalidate alone
// a reader may briefly see the old balance between the commit and this call.
func (c *Cache) Invalidate(ctx context.Context, userID string) error {
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, genKey(userID))
		p.Expire(ctx, genKey(userID), genTTL)
		p.Del(ctx, Key(userID))
		return nil
	})
	if err != nil {
		return fmt.Errorf("invalidate balance of %s: %w", userID, err)
	}
	return nil
}
