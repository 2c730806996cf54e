package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/easel/easel/internal/config"
)

// processLogger is the configured logger, with the Redis client's own
// messages (failed dials, pool errors) sent through it: otherwise they
// reach stderr as plain text between the JSON lines, during exactly the
// outage an operator reads the logs for.
func processLogger(cfg config.Config) *slog.Logger {
	log := cfg.Logger()
	redis.SetLogger(redisLog{log.With("component", "redis")})
	return log
}

// redisLog adapts go-redis's Printf-style logger to slog; the client logs
// only what went wrong, so its messages are warnings.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
}
