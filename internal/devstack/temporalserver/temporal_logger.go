package temporalserver

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// slogLogger adapts a *slog.Logger to the Temporal server's log.Logger.
type slogLogger struct {
	l *slog.Logger
	// stopping demotes records to debug once Stop began: while services shut
	// down one by one the survivors warn about every connection and shard
	// they lose, which is expected; a real failure surfaces as Stop's error.
	stopping *atomic.Bool
	// with are the tags of With, turned into attributes only when a record
	// is written: the server makes a logger With tags for nearly every
	// task and request, and writes few of them (slog's With would format
	// them all at once).
	with []tag.Tag
}

var (
	_ log.Logger     = slogLogger{}
	_ log.WithLogger = slogLogger{}
)

func newTemporalLogger(l *slog.Logger, stopping *atomic.Bool) log.Logger {
	return slogLogger{l: l.With("component", "temporal"), stopping: stopping}
}

func (s slogLogger) Debug(msg string, tags ...tag.Tag) { s.log(slog.LevelDebug, msg, tags) }
func (s slogLogger) Info(msg string, tags ...tag.Tag)  { s.log(slog.LevelInfo, msg, tags) }
func (s slogLogger) Warn(msg string, tags ...tag.Tag)  { s.log(slog.LevelWarn, msg, tags) }
func (s slogLogger) Error(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

// DPanic only panics in development builds of the server; here it is an error.
func (s slogLogger) DPanic(msg string, tags ...tag.Tag) { s.log(slog.LevelError, msg, tags) }

func (s slogLogger) Panic(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	panic(msg)
}

// Fatal panics instead of exiting so the embedding process gets a stack
// trace and deferred cleanup still runs.
func (s slogLogger) Fatal(msg string, tags ...tag.Tag) {
	s.log(slog.LevelError, msg, tags)
	panic(msg)
}

func (s slogLogger) With(tags ...tag.Tag) log.Logger {
	return slogLogger{l: s.l, stopping: s.stopping, with: append(s.with[:len(s.with):len(s.with)], tags...)}
}

func (s slogLogger) log(level slog.Level, msg string, tags []tag.Tag) {
	ctx := context.Background()
	if s.stopping.Load() {
		level = slog.LevelDebug
	}
	if !s.l.Enabled(ctx, level) {
		return
	}
	s.l.Log(ctx, level, msg, attrs(s.with, tags)...)
}

func attrs(with, tags []tag.Tag) []any {
	out := make([]any, 0, len(with)+len(tags))
	for _, t := range with {
		out = append(out, slog.Any(t.Key(), t.Value()))
	}
	for _, t := range tags {
		out = append(out, slog.Any(t.Key(), t.Value()))
	}
	return out
}
