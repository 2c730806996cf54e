package temporalserver

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// Tags given to With are written with every record of that logger and
// its children, in order, and siblings do not see each other's tags;
// records under the handler's level are not written.
func TestTemporalLoggerWith(t *testing.T) {
	var out bytes.Buffer
	base := newTemporalLogger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn})), new(atomic.Bool))
	parent := log.With(base, tag.NewStringTag("shard", "1"))
	a := log.With(parent, tag.NewStringTag("task", "a"))
	b := log.With(parent, tag.NewStringTag("task", "b"))
	a.Warn("first", tag.NewStringTag("extra", "x"))
	b.Error("second")
	b.Info("not written")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("records:\n%s", out.String())
	}
	if !strings.Contains(lines[0], "msg=first component=temporal shard=1 task=a extra=x") {
		t.Errorf("first record: %s", lines[0])
	}
	if !strings.Contains(lines[1], "msg=second component=temporal shard=1 task=b") || strings.Contains(lines[1], "task=a") {
		t.Errorf("second record: %s", lines[1])
	}
}
