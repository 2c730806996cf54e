package authcache_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/easel/easel/internal/authcache"
	"github.com/easel/easel/internal/testenv"
)

// listening starts Listen on a migrated database and waits until it hears.
func listening(t *testing.T) (*authcache.Set, *pgxpool.Pool) {
	t.Helper()
	url := testenv.PostgresURL(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	set := &authcache.Set{}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		authcache.Listen(ctx, url, set, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	t.Cleanup(func() { stop(); <-done })
	waitFor(t, 10*time.Second, set.Live)
	return set, pool
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("not within %v", d)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// put stores v and checks it is there: an eviction heard between reading
// the generation and storing (a late announcement of an earlier change)
// rightly refuses the value, and the test stores it again.
func put[V any](t *testing.T, c *authcache.Cache[V], key, userID string, v V) {
	t.Helper()
	waitFor(t, time.Second, func() bool {
		c.Put(key, userID, v, c.Generation(), time.Now().Add(time.Minute))
		_, ok := c.Get(key, time.Now())
		return ok
	})
}

func newUser(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	id := uuid.NewString()
	if _, err := pool.Exec(context.Background(), `INSERT INTO users (id, email, name, cognito_sub) VALUES ($1, $2, 'U', $3)`,
		id, id+"@example.com", "sub-"+id); err != nil {
		t.Fatal(err)
	}
	return id
}

// A change that alters what a user may do, committed by anyone, empties
// that user's entries in every cache of the set at once; others stay.
func TestChangesCommittedAnywhereAreForgotten(t *testing.T) {
	set, pool := listening(t)
	users := authcache.New[string](set)
	plans := authcache.New[int](set)
	ctx := context.Background()
	changes := []struct {
		name string
		sql  string
	}{
		{"suspension", `UPDATE users SET is_active = FALSE WHERE id = $1`},
		{"role", `UPDATE users SET role = 'admin' WHERE id = $1`},
		{"key revocation", `UPDATE api_keys SET is_active = FALSE WHERE user_id = $1`},
		{"new subscription", `INSERT INTO user_subscriptions (user_id, plan_id, stripe_customer_id, status, current_period_start, current_period_end)
			SELECT $1, id, 'cus_test', 'active', now(), now() + interval '1 month' FROM subscription_plans WHERE slug = 'pro'`},
	}
	for _, ch := range changes {
		t.Run(ch.name, func(t *testing.T) {
			id, other := newUser(t, pool), newUser(t, pool)
			if _, err := pool.Exec(ctx, `INSERT INTO api_keys (user_id, key_hash, key_prefix, name) VALUES ($1, 'h', $2, 'k')`,
				id, id[:8]); err != nil {
				t.Fatal(err)
			}
			put(t, users, "token-of-"+id, id, "cached")
			put(t, plans, id, id, 1)
			put(t, users, "token-of-"+other, other, "cached")
			if _, err := pool.Exec(ctx, ch.sql, id); err != nil {
				t.Fatal(err)
			}
			took := waitFor(t, time.Second, func() bool {
				_, u := users.Get("token-of-"+id, time.Now())
				_, p := plans.Get(id, time.Now())
				return !u && !p
			})
			t.Logf("forgotten %v after the commit", took)
			if _, ok := users.Get("token-of-"+other, time.Now()); !ok {
				t.Error("another user's entry was forgotten too")
			}
		})
	}
}

// Signing in and using a key write last_login_at and last_used_at; those
// writes must not empty the caches, or every request would miss.
func TestBookkeepingWritesKeepEntries(t *testing.T) {
	set, pool := listening(t)
	users := authcache.New[string](set)
	id := newUser(t, pool)
	put(t, users, "t", id, "cached")
	if _, err := pool.Exec(context.Background(), `UPDATE users SET last_login_at = now() WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	// A forgetting change of another user, sent after, shows the first was
	// heard and ignored.
	other := newUser(t, pool)
	put(t, users, "o", other, "cached")
	if _, err := pool.Exec(context.Background(), `UPDATE users SET is_active = FALSE WHERE id = $1`, other); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, func() bool { _, ok := users.Get("o", time.Now()); return !ok })
	if _, ok := users.Get("t", time.Now()); !ok {
		t.Error("last_login_at emptied the entry")
	}
}

// Without a listener the caches answer nothing: a process that cannot hear
// changes must read the database.
func TestDeafCachesAnswerNothing(t *testing.T) {
	set := &authcache.Set{}
	c := authcache.New[string](set)
	c.Put("k", "u", "v", c.Generation(), time.Now().Add(time.Minute))
	if _, ok := c.Get("k", time.Now()); ok {
		t.Fatal("a cache that hears nothing answered")
	}
}

// An entry is never used past its time, whatever the listener hears.
func TestEntriesEnd(t *testing.T) {
	set, _ := listening(t)
	c := authcache.New[string](set)
	now := time.Now()
	c.Put("k", "u", "v", c.Generation(), now.Add(time.Second))
	if v, ok := c.Get("k", now); !ok || v != "v" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	if _, ok := c.Get("k", now.Add(time.Second)); ok {
		t.Error("used at its end")
	}
}

// A value read before an eviction is not stored after it: it may predate
// the change.
func TestValueReadBeforeEvictionIsNotKept(t *testing.T) {
	set, _ := listening(t)
	c := authcache.New[string](set)
	gen := c.Generation()
	set.Forget("u") // the change lands while the value was being read
	c.Put("k", "u", "stale", gen, time.Now().Add(time.Minute))
	if _, ok := c.Get("k", time.Now()); ok {
		t.Error("a value read before the eviction was kept")
	}
}

// When the listener loses its connection the caches go off and empty, and
// come back once it reconnects.
func TestLostListenerEmptiesCaches(t *testing.T) {
	set, pool := listening(t)
	c := authcache.New[string](set)
	put(t, c, "k", "u", "v")
	if _, err := pool.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return !set.Live() })
	waitFor(t, 10*time.Second, set.Live)
	if _, ok := c.Get("k", time.Now()); ok {
		t.Error("an entry from before the reconnect was served")
	}
}
