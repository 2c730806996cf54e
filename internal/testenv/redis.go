package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisURL is the server the tests use unless EASEL_TEST_REDIS_URL
// names another.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// RedisURL returns the URL of a reachable Redis, or skips (fails under CI).
// Tests share the server; every key they write is scoped by a fresh id.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := Getenv("EASEL_TEST_REDIS_URL", DefaultRedisURL)
	opts, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("parse %s: %v", u, err)
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		Unavailable(t, "redis at %s: %v", u, err)
	}
	return u
}

// Redis returns a client on a reachable Redis, closed when the test ends.
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatalf("parse redis url: %v", err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
