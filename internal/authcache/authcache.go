// Package authcache keeps, for a few seconds, what authenticating a request
// reads from Postgres: who a token belongs to and that user's plan. Every
// change to those rows is announced by a trigger (migration 00014) on the
// channel easel_auth, and Listen forgets the user at once in every API
// process; the time-to-live bounds staleness if an announcement is ever
// missed. While Listen is not connected the caches answer nothing, so a
// process that cannot hear changes reads the database as if uncached.
package authcache

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// TTL is the longest an entry is used: a change that Listen somehow did
// not hear takes effect within it.
const TTL = 5 * time.Second

// Size bounds each cache's entries; beyond it the least recently used go.
const Size = 20_000

// entry is a cached value with the user it belongs to, for eviction by user,
// and when it stops being usable.
type entry[V any] struct {
	userID string
	until  time.Time
	value  V
}

// Cache maps keys (a token's identity, a user id) to values of one user.
type Cache[V any] struct {
	lru  *expirable.LRU[string, entry[V]]
	live *atomic.Bool
	// gen is the generation of Purge and EvictUser calls, so a value read
	// from the database before an eviction is not stored after it.
	mu  sync.Mutex
	gen uint64
}

// Get returns the value under key while it is fresh and the caches hear
// changes.
func (c *Cache[V]) Get(key string, now time.Time) (V, bool) {
	var zero V
	if c == nil || !c.live.Load() {
		return zero, false
	}
	e, ok := c.lru.Get(key)
	if !ok || !now.Before(e.until) {
		return zero, false
	}
	return e.value, true
}

// Generation is the eviction count a Put must match: read it before
// loading the value from the database.
func (c *Cache[V]) Generation() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// Put stores value for userID under key until until (at most TTL from
// now), unless an eviction happened since gen was read: the value may
// predate the change that evicted.
func (c *Cache[V]) Put(key, userID string, value V, gen uint64, until time.Time) {
	if c == nil || !c.live.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	c.lru.Add(key, entry[V]{userID: userID, until: until, value: value})
}

// EvictUser forgets every entry of the user.
func (c *Cache[V]) EvictUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, k := range c.lru.Keys() {
		if e, ok := c.lru.Peek(k); ok && e.userID == userID {
			c.lru.Remove(k)
		}
	}
}

// Purge forgets everything.
func (c *Cache[V]) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.lru.Purge()
}

// evicter is what Set needs of a cache, whatever its value type.
type evicter interface {
	EvictUser(userID string)
	Purge()
}

// Set is the caches of one API process, evicted together.
type Set struct {
	live   atomic.Bool
	mu     sync.Mutex
	caches []evicter
}

// New returns a cache of the set.
func New[V any](s *Set) *Cache[V] {
	c := &Cache[V]{lru: expirable.NewLRU[string, entry[V]](Size, nil, TTL), live: &s.live}
	s.mu.Lock()
	s.caches = append(s.caches, c)
	s.mu.Unlock()
	return c
}

// Forget evicts the user from every cache; "*" evicts everyone.
func (s *Set) Forget(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.caches {
		if userID == "*" {
			c.Purge()
		} else {
			c.EvictUser(userID)
		}
	}
}

// setLive turns the caches on (hearing changes) or off, emptying them.
func (s *Set) setLive(live bool) {
	if !live {
		s.live.Store(false)
		s.Forget("*")
		return
	}
	s.Forget("*")
	s.live.Store(true)
}

// Live reports whether the caches answer: Listen is connected.
func (s *Set) Live() bool { return s.live.Load() }
