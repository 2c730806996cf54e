package devtemporal

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync/atomic"
)

// defaultLogger keeps `easel dev` output readable: the server is chatty at
// info level, so only warnings and errors get through.
func defaultLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// minLevel is the lowest level the logger accepts; the server process only
// emits records at or above it so filtered logs never cross the pipe.
func minLevel(l *slog.Logger) slog.Level {
	ctx := context.Background()
	for _, lvl := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if l.Enabled(ctx, lvl) {
			return lvl
		}
	}
	return slog.LevelError
}

// forwardLogs re-emits the server's JSON log lines on logger until r closes.
// Lines that are not JSON (a panic trace, say) are logged as errors verbatim.
// Once stopping is set records are demoted to debug: while services shut
// down one by one the survivors warn (and sometimes error) about every
// connection and shard they lose, which is expected; a real failure to stop
// surfaces as Stop's error.
func forwardLogs(r io.Reader, logger *slog.Logger, stopping *atomic.Bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		forwardLine(sc.Bytes(), logger, stopping.Load())
	}
}

func forwardLine(line []byte, logger *slog.Logger, stopping bool) {
	var rec map[string]any
	if err := json.Unmarshal(line, &rec); err != nil {
		logger.Error(string(line), "component", "temporal")
		return
	}
	var level slog.Level
	if s, ok := rec[slog.LevelKey].(string); ok {
		_ = level.UnmarshalText([]byte(s))
	}
	if stopping {
		level = slog.LevelDebug
	}
	msg, _ := rec[slog.MessageKey].(string)
	delete(rec, slog.LevelKey)
	delete(rec, slog.MessageKey)
	delete(rec, slog.TimeKey) // the handler on this side stamps its own time
	logger.Log(context.Background(), level, msg, sortedAttrs(rec)...)
}

func sortedAttrs(rec map[string]any) []any {
	keys := make([]string, 0, len(rec))
	for k := range rec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]any, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, rec[k]))
	}
	return attrs
}
