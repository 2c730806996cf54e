package invokeai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/easel/easel/internal/engine"
)

// RetryChannel is the Redis channel on which a retried render names its
// job, so that every host cancels what a lost attempt left in its queues.
const RetryChannel = "invokeai:render_retry"

// retryNotice is a RetryChannel message.
type retryNotice struct {
	JobID   string `json:"job_id"`
	Attempt int    `json:"attempt"`
}

// renders records which attempts of which jobs this host is rendering, so
// a notice never cancels the retry that sent it, nor a newer attempt than
// its sender (a lost attempt goes on enqueueing images). One per host,
// shared by the engines of NewPerDevice.
type renders struct {
	mu      sync.Mutex
	running map[retryNotice]int
}

func newRenders() *renders { return &renders{running: map[retryNotice]int{}} }

// begin marks an attempt of a job as rendering here until end is called.
func (r *renders) begin(jobID string, attempt int) (end func()) {
	k := retryNotice{JobID: jobID, Attempt: attempt}
	r.mu.Lock()
	r.running[k]++
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.running[k]--; r.running[k] == 0 {
			delete(r.running, k)
		}
	}
}

// current reports whether this host renders the job at the notice's
// attempt or a later one.
func (r *renders) current(n retryNotice) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.running {
		if k.JobID == n.JobID && k.Attempt >= n.Attempt {
			return true
		}
	}
	return false
}

// announceRetry tells the other hosts that the job is being retried: a lost
// attempt (its worker cut off from Temporal) may still render it there.
func (e *Engine) announceRetry(ctx context.Context, jobID string, attempt int) {
	if e.cfg.Redis == nil || attempt <= 1 {
		return
	}
	msg, err := json.Marshal(retryNotice{JobID: jobID, Attempt: attempt})
	if err == nil {
		err = e.cfg.Redis.Publish(ctx, RetryChannel, msg).Err()
	}
	if err != nil {
		e.log.WarnContext(ctx, "invokeai: announce a retried render", "job_id", jobID, "err", err)
	}
}

// ListenRetries subscribes to RetryChannel and, until ctx ends, cancels on
// every InvokeAI server of this host the queue items of each job another
// host retries. Call it once per host (on any engine of NewPerDevice: each
// one reaches all the host's servers); it returns once subscribed.
func (e *Engine) ListenRetries(ctx context.Context) error {
	if e.cfg.Redis == nil {
		return errors.New("invokeai: ListenRetries needs Config.Redis")
	}
	sub := e.cfg.Redis.Subscribe(ctx, RetryChannel)
	if _, err := sub.Receive(ctx); err != nil {
		_ = sub.Close()
		return fmt.Errorf("invokeai: subscribe to %s: %w", RetryChannel, err)
	}
	go func() {
		defer func() { _ = sub.Close() }()
		ch := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				e.onRetry(ctx, m)
			}
		}
	}()
	return nil
}

func (e *Engine) onRetry(ctx context.Context, m *redis.Message) {
	var n retryNotice
	if err := json.Unmarshal([]byte(m.Payload), &n); err != nil || n.JobID == "" {
		e.log.WarnContext(ctx, "invokeai: bad retry notice", "payload", m.Payload, "err", err)
		return
	}
	if e.renders.current(n) {
		return // this host runs that retry (or a newer one) itself
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RequestTimeout)
	defer cancel()
	e.cancelLeftovers(ctx, n.JobID)
}

// attemptOf is the render's attempt number (engine.WithAttempt), at least 1.
func attemptOf(ctx context.Context) int {
	return max(engine.Attempt(ctx), 1)
}
