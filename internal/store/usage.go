package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// UsageSummary totals a user's usage records over a window.
type UsageSummary struct {
	Generations    int     `json:"generations"`
	Images         int     `json:"images"`
	Credits        int     `json:"credits"`
	ComputeSeconds float64 `json:"compute_seconds"`
	// StorageBytes is StorageUsed, read with the rest.
	StorageBytes int64 `json:"-"`
}

// storageSQL is the bytes of user $1's images and uploads: the running total
// that triggers keep with every insert and delete (migration 00019), one
// row read however much the user stores.
const storageSQL = `COALESCE((SELECT bytes FROM user_storage WHERE user_id = $1), 0)`

// usageSQL totals user $1's usage records created at or after $2, with
// the storage they use now.
const usageSQL = `
		SELECT count(*), COALESCE(SUM(credits_consumed), 0), COALESCE(SUM(compute_seconds), 0),
		       (SELECT count(*) FROM images WHERE user_id = $1 AND created_at >= $2),
		       ` + storageSQL + `
		FROM usage_records WHERE user_id = $1 AND created_at >= $2`

func scanUsage(row pgx.Row, u *UsageSummary) error {
	return row.Scan(&u.Generations, &u.Credits, &u.ComputeSeconds, &u.Images, &u.StorageBytes)
}

// UsageSince totals the user's usage records created at or after since,
// with the storage they use now: the account view's figures in one
// statement.
func (s *Store) UsageSince(ctx context.Context, userID string, since time.Time) (UsageSummary, error) {
	var u UsageSummary
	if err := scanUsage(s.db.QueryRow(ctx, usageSQL, userID, since), &u); err != nil {
		return UsageSummary{}, fmt.Errorf("usage of %s: %w", userID, err)
	}
	return u, nil
}

// StorageUsed is the bytes of the user's stored images and uploads (PNGs;
// thumbnails are not counted against the plan).
func (s *Store) StorageUsed(ctx context.Context, userID string) (int64, error) {
	var n int64
	if err := s.db.QueryRow(ctx, `SELECT `+storageSQL, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("storage of %s: %w", userID, err)
	}
	return n, nil
}

// UsageRecord is one billable action, as the usage report shows it.
type UsageRecord struct {
	ID             string    `json:"-"`
	JobID          string    `json:"job_id"`
	ActionType     string    `json:"action_type"`
	Model          string    `json:"model"`
	GPUTier        string    `json:"gpu_tier"`
	Steps          int       `json:"steps"`
	Width          int       `json:"width"`
	Height         int       `json:"height"`
	BatchSize      int       `json:"batch_size"`
	ComputeSeconds float64   `json:"compute_seconds"`
	Credits        int       `json:"credits"`
	CreatedAt      time.Time `json:"created_at"`
}

// UsageCursor continues a newest-first walk of usage records: records created
// before Before, or at Before with an id below BeforeID (so records sharing a
// timestamp are neither skipped nor repeated). Zero Before starts at the top;
// an empty BeforeID means strictly before Before.
type UsageCursor struct {
	Before   time.Time
	BeforeID string
}

// UsageBetween totals the user's usage records created in [from, to).
func (s *Store) UsageBetween(ctx context.Context, userID string, from, to time.Time) (UsageSummary, error) {
	var u UsageSummary
	err := s.db.QueryRow(ctx, `
		SELECT count(*), COALESCE(SUM(credits_consumed), 0), COALESCE(SUM(compute_seconds), 0),
		       (SELECT count(*) FROM images WHERE user_id = $1 AND created_at >= $2 AND created_at < $3)
		FROM usage_records WHERE user_id = $1 AND created_at >= $2 AND created_at < $3`, userID, from, to).
		Scan(&u.Generations, &u.Credits, &u.ComputeSeconds, &u.Images)
	if err != nil {
		return UsageSummary{}, fmt.Errorf("usage of %s: %w", userID, err)
	}
	return u, nil
}

// nilUUID sorts below every generated id, so "id < nilUUID" never holds and a
// cursor without an id means strictly before its time.
const nilUUID = "00000000-0000-0000-0000-000000000000"

// UsageRecords lists up to limit of the user's usage records created in
// [from, to) and after cur, newest first.
func (s *Store) UsageRecords(ctx context.Context, userID string, from, to time.Time, cur UsageCursor, limit int) ([]UsageRecord, error) {
	before, beforeID := cur.Before, cur.BeforeID
	if before.IsZero() || before.After(to) {
		before, beforeID = to, ""
	}
	if beforeID == "" {
		beforeID = nilUUID
	}
	rows, err := s.db.Query(ctx, `
		SELECT id, COALESCE(job_id, ''), action_type, model_used, gpu_tier, steps, width, height, batch_size,
		       compute_seconds, credits_consumed, created_at
		FROM usage_records
		WHERE user_id = $1 AND created_at >= $2 AND created_at < $3
		  AND (created_at < $4 OR (created_at = $4 AND id < $5::uuid))
		ORDER BY created_at DESC, id DESC LIMIT $6`, userID, from, to, before, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("list usage of %s: %w", userID, err)
	}
	recs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (UsageRecord, error) {
		var u UsageRecord
		err := r.Scan(&u.ID, &u.JobID, &u.ActionType, &u.Model, &u.GPUTier, &u.Steps, &u.Width, &u.Height,
			&u.BatchSize, &u.ComputeSeconds, &u.Credits, &u.CreatedAt)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("list usage of %s: %w", userID, err)
	}
	return recs, nil
}
