package authcache

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
)

// Channel is where migration 00014's triggers announce changed users.
const Channel = "easel_auth"

// Listen hears Channel on its own connection to url (not a pool's: a
// LISTEN belongs to one session) and forgets each announced user in s,
// until ctx ends. The caches answer only while it is connected: on any
// error they go off and empty, and it reconnects with backoff, so a change
// made while it was deaf is never served from memory.
func Listen(ctx context.Context, url string, s *Set, log *slog.Logger) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 100*time.Millisecond, 10*time.Second
	for ctx.Err() == nil {
		started := time.Now()
		err := listenOnce(ctx, url, s)
		s.setLive(false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			b.Reset()
		}
		wait := b.NextBackOff()
		log.Warn("auth cache: not hearing changes; caching is off until it reconnects",
			"channel", Channel, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// listenOnce connects, listens and forgets announced users until the
// connection fails or ctx ends.
func listenOnce(ctx context.Context, url string, s *Set) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to hear %s: %w", Channel, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("listen %s: %w", Channel, err)
	}
	// Whatever changed before LISTEN took effect may be cached: start empty.
	s.setLive(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait on %s: %w", Channel, err)
		}
		s.Forget(n.Payload)
	}
}
