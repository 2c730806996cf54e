package store

import (
	"context"
	"fmt"
	"time"
)

// UsageSummary totals a user's usage records over a window.
type UsageSummary struct {
	Generations    int     `json:"generations"`
	Images         int     `json:"images"`
	Credits        int     `json:"credits"`
	ComputeSeconds float64 `json:"compute_seconds"`
}

// UsageSince totals the user's usage records created at or after since.
func (s *Store) UsageSince(ctx context.Context, userID string, since time.Time) (UsageSummary, error) {
	var u UsageSummary
	err := s.pool.QueryRow(ctx, `
		SELECT count(*), COALESCE(SUM(credits_consumed), 0), COALESCE(SUM(compute_seconds), 0),
		       (SELECT count(*) FROM images WHERE user_id = $1 AND created_at >= $2)
		FROM usage_records WHERE user_id = $1 AND created_at >= $2`, userID, since).
		Scan(&u.Generations, &u.Credits, &u.ComputeSeconds, &u.Images)
	if err != nil {
		return UsageSummary{}, fmt.Errorf("usage of %s: %w", userID, err)
	}
	return u, nil
}

// StorageUsed is the bytes of the user's stored images (PNGs; thumbnails are
// not counted against the plan).
func (s *Store) StorageUsed(ctx context.Context, userID string) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(SUM(file_size_bytes), 0) FROM images WHERE user_id = $1`,
		userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("storage of %s: %w", userID, err)
	}
	return n, nil
}
