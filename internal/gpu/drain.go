package gpu

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultDrainTimeout is how long running renders may take to finish once a
// drain begins (DRAIN_TIMEOUT).
const DefaultDrainTimeout = 2 * time.Minute

// Drain stops a GPU worker gracefully. Once begun, the worker takes no new
// renders; renders already running may finish until the drain deadline, when
// Expired closes and they give their GPU up and fail over: the Render
// activity then fails with a retryable error, and Temporal retries it on
// another worker, which resumes after the images recorded in the last
// heartbeat. The activities package sees a Drain through its two channels.
type Drain struct {
	timeout time.Duration
	log     *slog.Logger

	mu       sync.Mutex
	begun    chan struct{}
	expired  chan struct{}
	expire   sync.Once
	timer    *time.Timer
	deadline time.Time
}

// NewDrain returns a drain that gives running renders timeout to finish.
func NewDrain(timeout time.Duration, log *slog.Logger) *Drain {
	if timeout <= 0 {
		timeout = DefaultDrainTimeout
	}
	if log == nil {
		log = slog.Default()
	}
	return &Drain{timeout: timeout, log: log, begun: make(chan struct{}), expired: make(chan struct{})}
}

// Begin starts the drain. The deadline is the drain timeout from now, or by
// when that is earlier (a spot interruption brings its own); a later Begin
// can only bring the deadline forward.
func (d *Drain) Begin(reason string, by time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	deadline := time.Now().Add(d.timeout)
	if !by.IsZero() && by.Before(deadline) {
		deadline = by
	}
	first := d.timer == nil
	if !first && !deadline.Before(d.deadline) {
		return
	}
	if first {
		close(d.begun)
	} else {
		d.timer.Stop()
	}
	d.deadline = deadline
	d.timer = time.AfterFunc(time.Until(deadline), d.fire)
	d.log.Warn("draining: no new renders; running renders fail over at the deadline", "reason", reason,
		"deadline", deadline.Format(time.RFC3339))
}

func (d *Drain) fire() { d.expire.Do(func() { close(d.expired) }) }

// Begun is closed when the drain begins: renders not yet started must not
// start on this worker.
func (d *Drain) Begun() <-chan struct{} { return d.begun }

// Expired is closed at the drain deadline: running renders must stop and
// fail over.
func (d *Drain) Expired() <-chan struct{} { return d.expired }

// Serve waits for a reason to stop: ctx ending (SIGTERM), a drain begun
// elsewhere (a spot notice), or the host losing its last healthy GPU. It
// then begins the drain and calls stop, which must block until the worker's
// running renders have ended: Temporal's worker.Stop, with a
// WorkerStopTimeout longer than the drain timeout so that failed-over renders
// still report their failure. A host left without a GPU returns ErrNoDevice,
// so the process exits with an error and its supervisor replaces it.
func (d *Drain) Serve(ctx context.Context, exhausted <-chan struct{}, stop func()) error {
	var err error
	select {
	case <-ctx.Done():
		d.Begin("shutdown requested", time.Time{})
	case <-d.begun:
	case <-exhausted:
		err = fmt.Errorf("stop worker: %w", ErrNoDevice)
		d.Begin(ErrNoDevice.Error(), time.Time{})
	}
	stop()
	d.log.Info("drained: the worker has stopped")
	return err
}
