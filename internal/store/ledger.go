package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Hold statuses.
const (
	HoldPending = "pending"
	HoldPosted  = "posted"
	HoldVoided  = "voided"
)

// InsufficientCreditsError says a hold was refused because the balance is short.
type InsufficientCreditsError struct {
	Needed    int
	Available int
}

func (e *InsufficientCreditsError) Error() string {
	return fmt.Sprintf("insufficient credits: %d needed, %d available", e.Needed, e.Available)
}

// ConcurrencyLimitError says a hold was refused because the user already has
// as many jobs in flight as the plan allows.
type ConcurrencyLimitError struct {
	Limit  int
	Active int
}

func (e *ConcurrencyLimitError) Error() string {
	return fmt.Sprintf("concurrent job limit reached: %d of %d jobs running", e.Active, e.Limit)
}

// ErrHoldVoided is returned when settling a hold that was already released.
var ErrHoldVoided = errors.New("credit hold already released")

// ErrCancelRequested is returned when finalizing a job its user (or an
// administrator's suspension) asked to cancel before it was settled: the
// cancel was answered as accepted, so the job must end canceled, whatever
// its render made.
var ErrCancelRequested = errors.New("job cancel requested before it was settled")

// Grant is a block of credits valid for a window.
type Grant struct {
	ID          string
	UserID      string
	Total       int
	Used        int
	Source      string
	ValidFrom   time.Time
	ValidUntil  time.Time
	ReferenceID string
}

// GrantInput describes credits to add. ReferenceID, when set, makes the grant
// idempotent: a second grant with the same reference returns the first.
type GrantInput struct {
	UserID      string
	Amount      int
	Source      string
	ValidFrom   time.Time
	ValidUntil  time.Time
	ReferenceID string
	Description string
}

// Balance is a user's spendable position.
type Balance struct {
	Granted   int // unused credits in grants valid now
	Held      int // credits reserved by pending holds
	Available int // Granted - Held
}

// Hold is a reservation of credits for one job.
type Hold struct {
	JobID         string
	UserID        string
	Amount        int
	SettledAmount int
	Status        string
	ExpiresAt     time.Time
	CreatedAt     time.Time
}

// HoldInput asks to reserve Amount credits for JobID. MaxConcurrent, when
// positive, refuses the hold if the user already has that many pending.
type HoldInput struct {
	JobID         string
	UserID        string
	Amount        int
	MaxConcurrent int
	TTL           time.Duration
}

// DefaultHoldTTL bounds how long a hold may stay pending.
const DefaultHoldTTL = 24 * time.Hour

// Grant adds credits to a user's ledger and records the grant transaction.
func (s *Store) Grant(ctx context.Context, in GrantInput) (Grant, error) {
	if in.Amount <= 0 {
		return Grant{}, fmt.Errorf("grant %d credits: amount must be positive", in.Amount)
	}
	if !in.ValidUntil.After(in.ValidFrom) {
		return Grant{}, fmt.Errorf("grant credits: valid_until must be after valid_from")
	}
	var g Grant
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, in.UserID); err != nil {
			return err
		}
		var err error
		g, err = grantTx(ctx, tx, in)
		return err
	})
	if err != nil {
		return Grant{}, fmt.Errorf("grant credits to %s: %w", in.UserID, err)
	}
	return g, nil
}

func grantTx(ctx context.Context, tx pgx.Tx, in GrantInput) (Grant, error) {
	ref := nullable(in.ReferenceID)
	if ref != nil {
		g, err := scanGrant(tx.QueryRow(ctx, grantColumns+` WHERE reference_id = $1`, ref))
		if err == nil {
			return g, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return Grant{}, err
		}
	}
	var id string
	err := tx.QueryRow(ctx, `
		INSERT INTO credits (user_id, total_credits, source, valid_from, valid_until, reference_id)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		in.UserID, in.Amount, in.Source, in.ValidFrom, in.ValidUntil, ref).Scan(&id)
	if err != nil {
		return Grant{}, fmt.Errorf("insert grant: %w", err)
	}
	desc := in.Description
	if desc == "" {
		desc = fmt.Sprintf("%d credits from %s", in.Amount, in.Source)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO credit_transactions (user_id, credit_id, amount, transaction_type, description, reference_id)
		VALUES ($1, $2, $3, 'grant', $4, $5)`, in.UserID, id, in.Amount, desc, id); err != nil {
		return Grant{}, fmt.Errorf("record grant transaction: %w", err)
	}
	return Grant{ID: id, UserID: in.UserID, Total: in.Amount, Source: in.Source,
		ValidFrom: in.ValidFrom, ValidUntil: in.ValidUntil, ReferenceID: in.ReferenceID}, nil
}

const grantColumns = `SELECT id, user_id, total_credits, used_credits, source, valid_from, valid_until, COALESCE(reference_id, '') FROM credits`

func scanGrant(row pgx.Row) (Grant, error) {
	var g Grant
	err := row.Scan(&g.ID, &g.UserID, &g.Total, &g.Used, &g.Source, &g.ValidFrom, &g.ValidUntil, &g.ReferenceID)
	return g, err
}

// Grants lists a user's grants that are still valid, soonest-expiring first.
func (s *Store) Grants(ctx context.Context, userID string) ([]Grant, error) {
	rows, err := s.db.Query(ctx, grantColumns+`
		WHERE user_id = $1 AND valid_until > now() ORDER BY valid_until, created_at`, userID)
	if err != nil {
		return nil, fmt.Errorf("list grants of %s: %w", userID, err)
	}
	grants, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Grant, error) { return scanGrant(r) })
	if err != nil {
		return nil, fmt.Errorf("list grants of %s: %w", userID, err)
	}
	return grants, nil
}

// Balance returns the user's unused valid credits, the credits held by
// pending jobs, and what is left to spend.
func (s *Store) Balance(ctx context.Context, userID string) (Balance, error) {
	b, err := balanceTx(ctx, s.db, userID)
	if err != nil {
		return Balance{}, fmt.Errorf("balance of %s: %w", userID, err)
	}
	return b, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func balanceTx(ctx context.Context, q querier, userID string) (Balance, error) {
	var b Balance
	err := q.QueryRow(ctx, `
		SELECT
		  (SELECT COALESCE(SUM(total_credits - used_credits), 0) FROM credits
		    WHERE user_id = $1 AND valid_from <= now() AND valid_until > now()),
		  (SELECT COALESCE(SUM(amount), 0) FROM credit_holds
		    WHERE user_id = $1 AND status = 'pending')`, userID).Scan(&b.Granted, &b.Held)
	b.Available = b.Granted - b.Held
	return b, err
}

// Hold reserves credits for a job. It is idempotent by job id: holding the
// same job twice returns the first hold. It refuses with
// *InsufficientCreditsError or *ConcurrencyLimitError.
func (s *Store) Hold(ctx context.Context, in HoldInput) (Hold, error) {
	h, err := holdTx(ctx, s.db, in)
	if err != nil {
		return Hold{}, fmt.Errorf("hold %d credits for job %s: %w", in.Amount, in.JobID, err)
	}
	return h, nil
}

// holdTx runs easel_hold (schema/migrations/00017, first in 00003): lock the user, return an
// existing hold, check the concurrency limit and the balance, insert.
func holdTx(ctx context.Context, q querier, in HoldInput) (Hold, error) {
	if in.Amount <= 0 {
		return Hold{}, fmt.Errorf("amount must be positive, got %d", in.Amount)
	}
	ttl := in.TTL
	if ttl <= 0 {
		ttl = DefaultHoldTTL
	}
	var outcome string
	var active, available int
	h := Hold{JobID: in.JobID, UserID: in.UserID}
	var expires, created *time.Time
	err := q.QueryRow(ctx, `SELECT * FROM easel_hold($1, $2, $3, $4, $5::interval)`,
		in.JobID, in.UserID, in.Amount, in.MaxConcurrent, ttl.String()).
		Scan(&outcome, &h.Amount, &h.SettledAmount, &h.Status, &expires, &created, &active, &available)
	if err != nil {
		return Hold{}, fmt.Errorf("run easel_hold: %w", err)
	}
	switch outcome {
	case "held", "existing":
		h.ExpiresAt, h.CreatedAt = *expires, *created
		return h, nil
	case "insufficient":
		return Hold{}, &InsufficientCreditsError{Needed: in.Amount, Available: available}
	case "busy":
		return Hold{}, &ConcurrencyLimitError{Limit: in.MaxConcurrent, Active: active}
	case "no_user":
		return Hold{}, fmt.Errorf("user %s: %w", in.UserID, ErrNotFound)
	case "other_user":
		return Hold{}, fmt.Errorf("job %s belongs to another user: %w", in.JobID, ErrNotFound)
	}
	return Hold{}, fmt.Errorf("easel_hold answered %q", outcome)
}

// GetHold reads a job's hold.
func (s *Store) GetHold(ctx context.Context, jobID string) (Hold, error) {
	var h Hold
	err := s.db.QueryRow(ctx, `SELECT id, user_id, amount, COALESCE(settled_amount, 0), status, expires_at, created_at
		FROM credit_holds WHERE id = $1`, jobID).
		Scan(&h.JobID, &h.UserID, &h.Amount, &h.SettledAmount, &h.Status, &h.ExpiresAt, &h.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Hold{}, fmt.Errorf("hold %s: %w", jobID, ErrNotFound)
	}
	if err != nil {
		return Hold{}, fmt.Errorf("read hold %s: %w", jobID, err)
	}
	return h, nil
}

// Settle posts a pending hold at the actual cost (at most the amount held),
// drawing on the soonest-expiring grants first. Settling a posted hold again
// returns it unchanged; settling a voided hold returns ErrHoldVoided.
func (s *Store) Settle(ctx context.Context, jobID string, amount int) (Hold, error) {
	h, err := settleTx(ctx, s.db, jobID, amount)
	if err != nil {
		return Hold{}, fmt.Errorf("settle job %s at %d credits: %w", jobID, amount, err)
	}
	return h, nil
}

// settleTx runs easel_settle (schema/migrations/00017, first in 00003): lock the user and the
// hold, draw the grants, write the usage transactions, post the hold.
func settleTx(ctx context.Context, q querier, jobID string, amount int) (Hold, error) {
	var outcome string
	var userID *string
	var expires, created *time.Time
	h := Hold{JobID: jobID}
	err := q.QueryRow(ctx, `SELECT * FROM easel_settle($1, $2)`, jobID, amount).
		Scan(&outcome, &userID, &h.Amount, &h.SettledAmount, &h.Status, &expires, &created)
	if err != nil {
		return Hold{}, fmt.Errorf("run easel_settle: %w", err)
	}
	if outcome == "not_found" {
		return Hold{}, fmt.Errorf("hold %s: %w", jobID, ErrNotFound)
	}
	h.UserID, h.ExpiresAt, h.CreatedAt = *userID, *expires, *created
	switch outcome {
	case "settled", "posted":
		return h, nil
	case "voided":
		return h, ErrHoldVoided
	case "bad_amount":
		return Hold{}, fmt.Errorf("settle amount %d outside 0..%d held", amount, h.Amount)
	}
	return Hold{}, fmt.Errorf("easel_settle answered %q", outcome)
}

// Release voids a pending hold, returning its credits to the balance. It is
// idempotent, and a posted hold is returned unchanged (its money has moved).
func (s *Store) Release(ctx context.Context, jobID string) (Hold, error) {
	h, err := releaseTx(ctx, s.db, jobID)
	if err != nil {
		return Hold{}, fmt.Errorf("release job %s: %w", jobID, err)
	}
	return h, nil
}

func releaseTx(ctx context.Context, q querier, jobID string) (Hold, error) {
	h := Hold{JobID: jobID}
	err := q.QueryRow(ctx, `SELECT * FROM easel_release($1)`, jobID).
		Scan(&h.UserID, &h.Amount, &h.SettledAmount, &h.Status, &h.ExpiresAt, &h.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Hold{}, fmt.Errorf("hold %s: %w", jobID, ErrNotFound)
	}
	if err != nil {
		return Hold{}, fmt.Errorf("run easel_release: %w", err)
	}
	return h, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// HoldCursor marks where a sweep of pending holds stopped: the creation time
// and id of the last hold it saw.
type HoldCursor struct {
	CreatedAt time.Time
	JobID     string
}

// StaleHolds lists pending holds created before createdBefore, after the
// cursor in (created_at, id) order, at most limit: the hold reaper's
// candidates, swept a page at a time.
func (s *Store) StaleHolds(ctx context.Context, createdBefore time.Time, after HoldCursor, limit int) ([]Hold, error) {
	if after.JobID == "" {
		after.JobID = "00000000-0000-0000-0000-000000000000"
	}
	return s.listHolds(ctx, `SELECT id, user_id, amount, COALESCE(settled_amount, 0), status, expires_at, created_at
		FROM credit_holds WHERE status = 'pending' AND created_at < $1 AND (created_at, id) > ($2, $3::uuid)
		ORDER BY created_at, id LIMIT $4`, createdBefore, after.CreatedAt, after.JobID, limit)
}

// PendingHolds lists which of the given jobs still hold credits.
func (s *Store) PendingHolds(ctx context.Context, jobIDs []string) ([]Hold, error) {
	return s.listHolds(ctx, `SELECT id, user_id, amount, COALESCE(settled_amount, 0), status, expires_at, created_at
		FROM credit_holds WHERE id = ANY($1::uuid[]) AND status = 'pending' ORDER BY created_at, id`, jobIDs)
}

func (s *Store) listHolds(ctx context.Context, sql string, args ...any) ([]Hold, error) {
	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list pending holds: %w", err)
	}
	holds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Hold, error) {
		var h Hold
		err := r.Scan(&h.JobID, &h.UserID, &h.Amount, &h.SettledAmount, &h.Status, &h.ExpiresAt, &h.CreatedAt)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("list pending holds: %w", err)
	}
	return holds, nil
}
