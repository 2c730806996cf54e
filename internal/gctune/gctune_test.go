package gctune

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// restore puts the collector back as the test found it.
func restore(t *testing.T) {
	t.Helper()
	percent, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
}

func logger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func TestApplyDefaultsInAContainer(t *testing.T) {
	restore(t)
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	log, buf := logger()
	const container = 1 << 30
	s := apply(log, memlimit.Limit(container))
	want := Settings{Percent: Percent, MemoryLimit: 966367641, LimitFrom: "cgroup"} // 0.9 GiB, rounded down
	if s != want {
		t.Fatalf("settings %+v, want %+v", s, want)
	}
	if got := debug.SetGCPercent(100); got != Percent {
		t.Errorf("the runtime's GOGC is %d, want %d", got, Percent)
	}
	if got := debug.SetMemoryLimit(-1); got != want.MemoryLimit {
		t.Errorf("the runtime's memory limit is %d, want %d", got, want.MemoryLimit)
	}
	if !strings.Contains(buf.String(), "gogc=400 memory_limit_from=cgroup memory_limit_bytes=966367641") {
		t.Errorf("the log does not say what the collector runs with:\n%s", buf)
	}
}

func TestApplyWithoutAContainerLimit(t *testing.T) {
	restore(t)
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	log, buf := logger()
	s := apply(log, func() (uint64, error) { return 0, memlimit.ErrNoLimit })
	if s.Percent != Percent || s.MemoryLimit != math.MaxInt64 || s.LimitFrom != "none" {
		t.Fatalf("settings %+v, want GOGC %d and no limit", s, Percent)
	}
	if line := buf.String(); !strings.Contains(line, "memory_limit_from=none") || strings.Contains(line, "memory_limit_bytes") {
		t.Errorf("the log should say there is no limit, without a number of bytes:\n%s", line)
	}
}

func TestApplyKeepsTheEnvironmentsSettings(t *testing.T) {
	restore(t)
	debug.SetGCPercent(150) // as the runtime does for GOGC=150 at start
	debug.SetMemoryLimit(512 << 20)
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "512MiB")
	log, _ := logger()
	asked := false
	s := apply(log, func() (uint64, error) { asked = true; return 1 << 30, nil })
	want := Settings{Percent: 150, MemoryLimit: 512 << 20, LimitFrom: "GOMEMLIMIT"}
	if s != want {
		t.Fatalf("settings %+v, want %+v", s, want)
	}
	if asked {
		t.Error("the container's limit was read although GOMEMLIMIT is set")
	}
}

func TestApplyWhenTheLimitCannotBeRead(t *testing.T) {
	restore(t)
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	log, buf := logger()
	s := apply(log, func() (uint64, error) { return 0, errors.New("no memory controller") })
	if s.MemoryLimit != math.MaxInt64 || s.LimitFrom != "none" {
		t.Fatalf("settings %+v, want no limit", s)
	}
	if !strings.Contains(buf.String(), "level=WARN") || !strings.Contains(buf.String(), "no memory controller") {
		t.Errorf("the failure was not logged as a warning:\n%s", buf)
	}
}
