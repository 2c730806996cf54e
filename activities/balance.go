package activities

import (
	"context"
	"log/slog"

	"github.com/easel/easel/internal/balancecache"
)

// balanceChange marks the user's cached balance as changing before a ledger
// write and returns the function that ends the mark once the write has
// committed or failed, so no reader caches the old balance in between. A
// nil cache does nothing. Cache errors are logged, never fatal: the cached
// value also expires on its own (balancecache.TTL).
func balanceChange(ctx context.Context, c *balancecache.Cache, log *slog.Logger, userID string) (end func()) {
	if c == nil {
		return func() {}
	}
	finish, err := c.Begin(ctx, userID)
	if err != nil && log != nil {
		log.WarnContext(ctx, "balance cache begin", "user_id", userID, "err", err)
	}
	return func() {
		if err := finish(context.WithoutCancel(ctx)); err != nil && log != nil {
			log.WarnContext(ctx, "balance cache invalidate", "user_id", userID, "err", err)
		}
	}
}
