package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/easel/easel/internal/catalog"
	"github.com/jackc/pgx/v5"
)

// Generation is one image-generation job and its money.
type Generation struct {
	ID             string
	UserID         string
	IdempotencyKey string
	RequestHash    string
	WorkflowID     string
	Status         string
	Model          string
	Params         json.RawMessage
	Plan           string
	GPUTier        string
	BatchSize      int
	ImagesProduced int
	CreditsHeld    int
	CreditsSettled *int
	ComputeSeconds float64
	Error          string
	CreatedAt      time.Time
	StartedAt      *time.Time
	CompletedAt    *time.Time
}

// Terminal reports whether the job has finished one way or another.
func (g Generation) Terminal() bool {
	return catalog.JobTerminal(g.Status)
}

// AdmitInput is a new job: the generation row to record and the hold to take.
type AdmitInput struct {
	Generation    Generation
	MaxConcurrent int
	HoldTTL       time.Duration
}

// Admit reserves the job's credits and records the job in one transaction.
// It is idempotent by job id; refusals are *InsufficientCreditsError or
// *ConcurrencyLimitError and leave nothing behind.
func (s *Store) Admit(ctx context.Context, in AdmitInput) (Generation, error) {
	g := in.Generation
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := holdTx(ctx, tx, HoldInput{JobID: g.ID, UserID: g.UserID, Amount: g.CreditsHeld,
			MaxConcurrent: in.MaxConcurrent, TTL: in.HoldTTL}); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO generations (id, user_id, idempotency_key, request_hash, workflow_id, model, params,
			                         plan, gpu_tier, batch_size, credits_held)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (id) DO NOTHING`,
			g.ID, g.UserID, nullable(g.IdempotencyKey), g.RequestHash, g.WorkflowID, g.Model, g.Params,
			g.Plan, g.GPUTier, g.BatchSize, g.CreditsHeld)
		if err != nil {
			return fmt.Errorf("record generation: %w", err)
		}
		return nil
	})
	if err != nil {
		return Generation{}, fmt.Errorf("admit job %s: %w", g.ID, err)
	}
	return s.GetGeneration(ctx, g.UserID, g.ID)
}

// ImageRecord is one stored image of a finished job.
type ImageRecord struct {
	Name         string `json:"name"`
	Key          string `json:"key"`
	ThumbnailKey string `json:"thumbnail_key"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	Bytes        int64  `json:"bytes"`
	Seed         uint32 `json:"seed"`
}

// FinalizeInput is what a finished render produced and what it costs.
type FinalizeInput struct {
	JobID          string
	UserID         string
	Images         []ImageRecord
	Credits        int
	ComputeSeconds float64
	Model          string
	GPUTier        string
	Steps          int
	Width          int
	Height         int
	BatchSize      int
	StartedAt      time.Time // when the render began; zero if unknown
	// ListenFor, when set, is an event type: the result tells whether any
	// webhook endpoint of the user takes it, read with the job, so that the
	// caller can skip emitting an event nobody receives.
	ListenFor string
}

// Finalized is a finished job as Finalize leaves it.
type Finalized struct {
	Generation
	// Listened is whether a webhook endpoint of the user takes the
	// FinalizeInput's ListenFor event type (false when none was given).
	Listened bool
}

// activeStatuses are the statuses of a job that has not ended.
const activeStatuses = `('queued', 'running', 'canceling')`

// Finalize records a finished job in one transaction: its images, the settle
// of its hold at the real cost, its usage record and its final status.
// Replaying it changes nothing. A job marked canceling is not settled
// (ErrCancelRequested): the job's row is where a cancel and a settle meet,
// under its lock, so a cancel the API accepted (MarkCanceling) always wins
// and one that came after the settle finds the job completed.
func (s *Store) Finalize(ctx context.Context, in FinalizeInput) (Finalized, error) {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM generations WHERE id = $1 FOR UPDATE`, in.JobID).Scan(&status)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("lock generation: %w", err)
		}
		if status == catalog.JobCanceling {
			return ErrCancelRequested
		}
		if _, err := settleTx(ctx, tx, in.JobID, in.Credits); err != nil {
			return err
		}
		for _, img := range in.Images {
			if err := insertImage(ctx, tx, in, img); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO usage_records (user_id, job_id, action_type, model_used, gpu_tier, steps, width, height,
			                           batch_size, compute_seconds, credits_consumed)
			VALUES ($1, $2, 'generation', $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (job_id) DO NOTHING`,
			in.UserID, in.JobID, in.Model, in.GPUTier, in.Steps, in.Width, in.Height, in.BatchSize,
			in.ComputeSeconds, in.Credits); err != nil {
			return fmt.Errorf("record usage: %w", err)
		}
		_, err = tx.Exec(ctx, `
			UPDATE generations SET status = 'completed', credits_settled = $2, images_produced = $3,
			       compute_seconds = $4, completed_at = COALESCE(completed_at, now()),
			       started_at = COALESCE(started_at, $5)
			WHERE id = $1 AND status IN `+activeStatuses,
			in.JobID, in.Credits, len(in.Images), in.ComputeSeconds, nullableTime(in.StartedAt))
		if err != nil {
			return fmt.Errorf("complete generation: %w", err)
		}
		return nil
	})
	if err != nil {
		return Finalized{}, fmt.Errorf("finalize job %s: %w", in.JobID, err)
	}
	var f Finalized
	err = s.db.QueryRow(ctx, generationSelect+`,
		EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.user_id = $2 AND $3 <> ''
		        AND (cardinality(e.events) = 0 OR $3 = ANY(e.events)))
		FROM generations WHERE id = $1 AND user_id = $2`, in.JobID, in.UserID, in.ListenFor).Scan(generationFields(&f.Generation, &f.Listened)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Finalized{}, fmt.Errorf("generation %s: %w", in.JobID, ErrNotFound)
	}
	if err != nil {
		return Finalized{}, fmt.Errorf("read finalized job %s: %w", in.JobID, err)
	}
	return f, nil
}

func insertImage(ctx context.Context, tx pgx.Tx, in FinalizeInput, img ImageRecord) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO images (image_name, user_id, image_origin, image_category, width, height, session_id,
		                    metadata, s3_key, s3_thumbnail_key, file_size_bytes)
		SELECT $1, $2, 'internal', 'general', $3, $4, $5::text,
		       g.params || jsonb_build_object('seed', $6::bigint), $7, $8, $9
		FROM generations g WHERE g.id = $5::uuid
		ON CONFLICT (image_name) DO NOTHING`,
		img.Name, in.UserID, img.Width, img.Height, in.JobID, int64(img.Seed), img.Key, img.ThumbnailKey, img.Bytes)
	if err != nil {
		return fmt.Errorf("record image %s: %w", img.Name, err)
	}
	return nil
}

// Abort ends a job that produced nothing billable: it releases the hold and
// marks the job failed or canceled. A job already completed is left as is,
// and a job that never took a hold (its admission failed before the commit)
// has nothing to release: Abort is safe on every exit path of a workflow.
func (s *Store) Abort(ctx context.Context, jobID, status, reason string) (Hold, error) {
	if status != catalog.JobFailed && status != catalog.JobCanceled {
		return Hold{}, fmt.Errorf("abort job %s: status %q is not failed or canceled", jobID, status)
	}
	var h Hold
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		h, err = releaseTx(ctx, tx, jobID)
		if errors.Is(err, ErrNotFound) {
			h = Hold{JobID: jobID}
			return nil
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			UPDATE generations SET status = $2, error = NULLIF($3, ''), credits_settled = 0,
			       completed_at = COALESCE(completed_at, now())
			WHERE id = $1 AND status IN `+activeStatuses, jobID, status, storableText(reason))
		if err != nil {
			return fmt.Errorf("mark generation %s: %w", status, err)
		}
		return nil
	})
	if err != nil {
		return Hold{}, fmt.Errorf("abort job %s: %w", jobID, err)
	}
	return h, nil
}

// MarkRunning records that the user's job's render began: status running
// (unless the job already moved on) and the first start time.
func (s *Store) MarkRunning(ctx context.Context, userID, jobID string, startedAt time.Time) error {
	_, err := s.db.Exec(ctx, `
		UPDATE generations SET started_at = COALESCE(started_at, $3),
		       status = CASE WHEN status = 'queued' THEN 'running' ELSE status END
		WHERE id = $1 AND user_id = $2`, jobID, userID, startedAt)
	if err != nil {
		return fmt.Errorf("mark job %s running: %w", jobID, err)
	}
	return nil
}

// UnfinishedGenerations lists the user's jobs that are queued or
// running, oldest first.
func (s *Store) UnfinishedGenerations(ctx context.Context, userID string) ([]Generation, error) {
	return s.queryGenerations(ctx, "list unfinished generations of "+userID,
		`WHERE user_id = $1 AND status IN ('queued', 'running') ORDER BY created_at, id`, userID)
}

// MarkCanceling records the user's cancel of an unfinished job, so it shows
// at once; the workflow then releases the hold and marks it canceled (or
// completed, if the images were already stored).
func (s *Store) MarkCanceling(ctx context.Context, userID, jobID string) (Generation, error) {
	_, err := s.db.Exec(ctx, `UPDATE generations SET status = 'canceling'
		WHERE id = $1 AND user_id = $2 AND status IN ('queued', 'running')`, jobID, userID)
	if err != nil {
		return Generation{}, fmt.Errorf("mark job %s canceling: %w", jobID, err)
	}
	return s.GetGeneration(ctx, userID, jobID)
}

func nullableTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

const generationSelect = `SELECT id, user_id, COALESCE(idempotency_key, ''), request_hash, workflow_id, status,
	model, params, plan, gpu_tier, batch_size, images_produced, credits_held, credits_settled,
	COALESCE(compute_seconds, 0), COALESCE(error, ''), created_at, started_at, completed_at`

const generationColumns = generationSelect + ` FROM generations`

func scanGeneration(row pgx.Row) (Generation, error) {
	var g Generation
	err := row.Scan(generationFields(&g)...)
	return g, err
}

// generationFields are the scan targets of generationColumns, then more.
func generationFields(g *Generation, more ...any) []any {
	return append([]any{&g.ID, &g.UserID, &g.IdempotencyKey, &g.RequestHash, &g.WorkflowID, &g.Status,
		&g.Model, &g.Params, &g.Plan, &g.GPUTier, &g.BatchSize, &g.ImagesProduced, &g.CreditsHeld,
		&g.CreditsSettled, &g.ComputeSeconds, &g.Error, &g.CreatedAt, &g.StartedAt, &g.CompletedAt}, more...)
}

// GetGeneration reads one of the user's jobs; another user's job is ErrNotFound.
func (s *Store) GetGeneration(ctx context.Context, userID, jobID string) (Generation, error) {
	g, err := scanGeneration(s.db.QueryRow(ctx, generationColumns+` WHERE id = $1 AND user_id = $2`, jobID, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Generation{}, fmt.Errorf("generation %s: %w", jobID, ErrNotFound)
	}
	if err != nil {
		return Generation{}, fmt.Errorf("read generation %s: %w", jobID, err)
	}
	return g, nil
}

// Page bounds a listing: at most Limit rows created before Before (zero:
// now). Rows share a created_at (the images of one batch are stored in one
// transaction), so a listing that orders by a tiebreak after created_at
// takes AfterKey too: the tiebreak of the previous page's last row, which
// also lets through the rows created at Before that sort after it. Empty,
// only rows created strictly before Before are listed.
type Page struct {
	Limit    int
	Before   time.Time
	AfterKey string
}

// afterKey is AfterKey as a query argument: NULL when empty, so that the
// tiebreak comparison is false and the bound is strict on created_at. The
// listings state created_at <= Before apart from the tiebreak so that it
// bounds their index scan.
func (p Page) afterKey() *string {
	if p.AfterKey == "" {
		return nil
	}
	return &p.AfterKey
}

func (p Page) normalize() Page {
	if p.Limit <= 0 || p.Limit > 100 {
		p.Limit = 20
	}
	if p.Before.IsZero() {
		p.Before = time.Now().Add(time.Hour)
	}
	return p
}

// ListGenerations lists the user's jobs, newest first; jobs created in the
// same instant by id, descending (page.AfterKey is a job id).
func (s *Store) ListGenerations(ctx context.Context, userID string, page Page) ([]Generation, error) {
	page = page.normalize()
	return s.queryGenerations(ctx, "list generations of "+userID, `
		WHERE user_id = $1 AND created_at <= $2 AND (created_at < $2 OR id < $4::uuid)
		ORDER BY created_at DESC, id DESC LIMIT $3`,
		userID, page.Before, page.Limit, page.afterKey())
}

// queryGenerations reads the jobs generationColumns + where selects; what
// names the read in its errors.
func (s *Store) queryGenerations(ctx context.Context, what, where string, args ...any) ([]Generation, error) {
	rows, err := s.db.Query(ctx, generationColumns+" "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	gens, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Generation, error) { return scanGeneration(r) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return gens, nil
}
