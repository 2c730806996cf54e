// Package progress carries a job's live status through Redis: the latest
// status under job:{job_id}:status (kept 24 hours) and every change published
// on job:{job_id}:events, which the API relays to clients as Server-Sent Events.
package progress

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
	"github.com/redis/go-redis/v9"
)

// StatusTTL is how long the latest status of a job stays in Redis.
const StatusTTL = 24 * time.Hour

// Status is a job's live state.
type Status struct {
	JobID      string  `json:"job_id"`
	State      string  `json:"state"`
	Progress   float64 `json:"progress"` // 0..1 over the whole batch
	Image      int     `json:"image"`    // index of the image being rendered
	Images     int     `json:"images"`   // batch size
	Step       int     `json:"step"`
	TotalSteps int     `json:"total_steps"`
	Message    string  `json:"message,omitempty"`
	// Preview is a small picture of the image being rendered, on some
	// running events (at most one a second per job).
	Preview *engine.Preview `json:"preview,omitempty"`
	// StartedAt is when the job's render began (its first attempt), on
	// the running states a GPU worker reports.
	StartedAt *time.Time `json:"started_at,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// Terminal reports whether no further events will follow.
func (s Status) Terminal() bool {
	return s.State == catalog.JobCompleted || s.State == catalog.JobFailed || s.State == catalog.JobCanceled
}

// StatusKey and EventsChannel name a job's Redis key and channel.
func StatusKey(jobID string) string     { return "job:" + jobID + ":status" }
func EventsChannel(jobID string) string { return "job:" + jobID + ":events" }

// Hub publishes and reads job status. Its watchers share one Redis pub/sub
// connection (see fanout.go).
type Hub struct {
	rdb *redis.Client
	fan fanout
}

// NewHub wraps a Redis client.
func NewHub(rdb *redis.Client) *Hub {
	return &Hub{rdb: rdb, fan: fanout{jobs: map[string]*jobFeed{}, sent: map[string]int{}, confirmed: map[string]int{}}}
}

// Publish stores s as the job's latest status and announces it, in one round trip.
func (h *Hub) Publish(ctx context.Context, s Status) error {
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = time.Now().UTC()
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode status of job %s: %w", s.JobID, err)
	}
	_, err = h.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, StatusKey(s.JobID), b, StatusTTL)
		p.Publish(ctx, EventsChannel(s.JobID), b)
		return nil
	})
	if err != nil {
		return fmt.Errorf("publish status of job %s: %w", s.JobID, err)
	}
	return nil
}

// Get returns the job's latest status; ok is false when none is stored.
func (h *Hub) Get(ctx context.Context, jobID string) (s Status, ok bool, err error) {
	b, err := h.rdb.Get(ctx, StatusKey(jobID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Status{}, false, nil
	}
	if err != nil {
		return Status{}, false, fmt.Errorf("read status of job %s: %w", jobID, err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Status{}, false, fmt.Errorf("decode status of job %s: %w", jobID, err)
	}
	return s, true, nil
}
