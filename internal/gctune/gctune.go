// Package gctune sets the Go garbage collector for Easel's long-running
// processes (api, worker, dev): collect four times less often than Go's
// default, and never let the heap outgrow the container.
//
// Why: at 2,000 authenticated reads a second on two cores, each collection's
// concurrent mark (20-150 ms, with allocating requests made to assist it)
// is when the slow answers come: the API's slowest 1 % came in 100 ms
// windows that began with a collection (docs/benchmarks.md, section 8).
// Collecting less often makes those windows rarer; the memory limit (a
// share of the cgroup's, through automemlimit) makes the collector run
// sooner, whatever GOGC says, before the container would be killed for its
// memory.
package gctune

import (
	"errors"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

const (
	// Percent is GOGC's value when the environment sets none: the heap may
	// grow to five times what the last collection left live.
	Percent = 400
	// MemoryShare is the part of the container's memory limit the Go heap
	// may use (GOMEMLIMIT) when the environment sets none; the rest is
	// left to goroutine stacks, cgo and the kernel's page cache.
	MemoryShare = 0.9
)

// Settings is what the collector runs with after Apply.
type Settings struct {
	Percent     int    // GOGC; -1 when off
	MemoryLimit int64  // bytes; math.MaxInt64 when none
	LimitFrom   string // "GOMEMLIMIT", "cgroup" or "none"
}

// Apply sets GOGC to Percent unless the environment sets GOGC, and
// GOMEMLIMIT to MemoryShare of the cgroup's memory limit unless the
// environment sets GOMEMLIMIT (or AUTOMEMLIMIT=off, automemlimit's switch).
// It logs and returns what the collector runs with; a limit it cannot read
// is logged and left unset.
func Apply(log *slog.Logger) Settings {
	return apply(log, memlimit.FromCgroup)
}

// apply is Apply with the container's memory limit read by limit.
func apply(log *slog.Logger, limit memlimit.Provider) Settings {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(Percent)
	}
	s := Settings{LimitFrom: "none"}
	read := false
	got, err := memlimit.Set(memlimit.WithRatio(MemoryShare), memlimit.WithProvider(func() (uint64, error) {
		read = true
		return limit()
	}))
	switch {
	case os.Getenv("GOMEMLIMIT") != "":
		s.LimitFrom = "GOMEMLIMIT"
	case err != nil && !errors.Is(err, memlimit.ErrNoLimit):
		log.Warn("garbage collector: the container's memory limit could not be read; the heap has no limit", "err", err)
	case read && got != math.MaxInt64:
		s.LimitFrom = "cgroup"
	}
	s.Percent, s.MemoryLimit = current()
	attrs := []any{"gogc", s.Percent, "memory_limit_from", s.LimitFrom}
	if s.MemoryLimit != math.MaxInt64 {
		attrs = append(attrs, "memory_limit_bytes", s.MemoryLimit)
	}
	log.Info("garbage collector", attrs...)
	return s
}

// current reads GOGC and GOMEMLIMIT as the runtime holds them (setting
// either to read it back would disturb the collector).
func current() (percent int, limit int64) {
	samples := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(samples)
	return int(samples[0].Value.Uint64()), int64(samples[1].Value.Uint64())
}
