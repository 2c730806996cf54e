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
	rows, err := s.pool.Query(ctx, grantColumns+`
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
	b, err := balanceTx(ctx, s.pool, userID)
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
	var h Hold
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		h, err = holdTx(ctx, tx, in)
		return err
	})
	if err != nil {
		return Hold{}, fmt.Errorf("hold %d credits for job %s: %w", in.Amount, in.JobID, err)
	}
	return h, nil
}

func holdTx(ctx context.Context, tx pgx.Tx, in HoldInput) (Hold, error) {
	if in.Amount <= 0 {
		return Hold{}, fmt.Errorf("amount must be positive, got %d", in.Amount)
	}
	if err := lockUser(ctx, tx, in.UserID); err != nil {
		return Hold{}, err
	}
	existing, err := getHold(ctx, tx, in.JobID, false)
	if err == nil {
		if existing.UserID != in.UserID {
			return Hold{}, fmt.Errorf("job %s belongs to another user: %w", in.JobID, ErrNotFound)
		}
		return existing, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Hold{}, err
	}
	if in.MaxConcurrent > 0 {
		var active int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM credit_holds WHERE user_id = $1 AND status = 'pending'`,
			in.UserID).Scan(&active); err != nil {
			return Hold{}, fmt.Errorf("count active jobs: %w", err)
		}
		if active >= in.MaxConcurrent {
			return Hold{}, &ConcurrencyLimitError{Limit: in.MaxConcurrent, Active: active}
		}
	}
	b, err := balanceTx(ctx, tx, in.UserID)
	if err != nil {
		return Hold{}, fmt.Errorf("read balance: %w", err)
	}
	if b.Available < in.Amount {
		return Hold{}, &InsufficientCreditsError{Needed: in.Amount, Available: max(b.Available, 0)}
	}
	ttl := in.TTL
	if ttl <= 0 {
		ttl = DefaultHoldTTL
	}
	h := Hold{JobID: in.JobID, UserID: in.UserID, Amount: in.Amount, Status: HoldPending}
	err = tx.QueryRow(ctx, `
		INSERT INTO credit_holds (id, user_id, amount, expires_at)
		VALUES ($1, $2, $3, now() + $4::interval) RETURNING expires_at, created_at`,
		in.JobID, in.UserID, in.Amount, ttl.String()).Scan(&h.ExpiresAt, &h.CreatedAt)
	if err != nil {
		return Hold{}, fmt.Errorf("insert hold: %w", err)
	}
	return h, nil
}

func getHold(ctx context.Context, tx pgx.Tx, jobID string, forUpdate bool) (Hold, error) {
	q := `SELECT id, user_id, amount, COALESCE(settled_amount, 0), status, expires_at, created_at
	      FROM credit_holds WHERE id = $1`
	if forUpdate {
		q += ` FOR UPDATE`
	}
	var h Hold
	err := tx.QueryRow(ctx, q, jobID).Scan(&h.JobID, &h.UserID, &h.Amount, &h.SettledAmount, &h.Status, &h.ExpiresAt, &h.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Hold{}, fmt.Errorf("hold %s: %w", jobID, ErrNotFound)
	}
	if err != nil {
		return Hold{}, fmt.Errorf("read hold %s: %w", jobID, err)
	}
	return h, nil
}

// GetHold reads a job's hold.
func (s *Store) GetHold(ctx context.Context, jobID string) (Hold, error) {
	var h Hold
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		h, err = getHold(ctx, tx, jobID, false)
		return err
	})
	return h, err
}

// Settle posts a pending hold at the actual cost (at most the amount held),
// drawing on the soonest-expiring grants first. Settling a posted hold again
// returns it unchanged; settling a voided hold returns ErrHoldVoided.
func (s *Store) Settle(ctx context.Context, jobID string, amount int) (Hold, error) {
	var h Hold
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		h, err = settleTx(ctx, tx, jobID, amount)
		return err
	})
	if err != nil {
		return Hold{}, fmt.Errorf("settle job %s at %d credits: %w", jobID, amount, err)
	}
	return h, nil
}

func settleTx(ctx context.Context, tx pgx.Tx, jobID string, amount int) (Hold, error) {
	h, err := getHold(ctx, tx, jobID, false)
	if err != nil {
		return Hold{}, err
	}
	// Same lock order as holdTx (user, then hold) so the two never deadlock.
	if err := lockUser(ctx, tx, h.UserID); err != nil {
		return Hold{}, err
	}
	if h, err = getHold(ctx, tx, jobID, true); err != nil {
		return Hold{}, err
	}
	switch h.Status {
	case HoldPosted:
		return h, nil
	case HoldVoided:
		return h, ErrHoldVoided
	}
	if amount < 0 || amount > h.Amount {
		return Hold{}, fmt.Errorf("settle amount %d outside 0..%d held", amount, h.Amount)
	}
	if err := consumeGrants(ctx, tx, h, amount); err != nil {
		return Hold{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE credit_holds SET status = 'posted', settled_amount = $2 WHERE id = $1`,
		jobID, amount); err != nil {
		return Hold{}, fmt.Errorf("post hold: %w", err)
	}
	h.Status, h.SettledAmount = HoldPosted, amount
	return h, nil
}

// consumeGrants draws amount credits from the user's grants, soonest-expiring
// first, writing one usage transaction per grant touched. Grants that were
// valid when the hold was taken still count, so a grant expiring while a job
// renders cannot leave the settle short.
func consumeGrants(ctx context.Context, tx pgx.Tx, h Hold, amount int) error {
	if amount == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `
		SELECT id, total_credits - used_credits FROM credits
		WHERE user_id = $1 AND used_credits < total_credits
		  AND valid_from <= now() AND valid_until > $2
		ORDER BY valid_until, created_at
		FOR UPDATE`, h.UserID, h.CreatedAt)
	if err != nil {
		return fmt.Errorf("select grants to consume: %w", err)
	}
	type draw struct {
		id   string
		take int
	}
	var draws []draw
	left := amount
	for rows.Next() && left > 0 {
		var id string
		var remaining int
		if err := rows.Scan(&id, &remaining); err != nil {
			rows.Close()
			return fmt.Errorf("scan grant: %w", err)
		}
		take := min(remaining, left)
		draws = append(draws, draw{id, take})
		left -= take
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("select grants to consume: %w", err)
	}
	if left > 0 {
		return fmt.Errorf("ledger short by %d credits for hold %s", left, h.JobID)
	}
	for _, d := range draws {
		if _, err := tx.Exec(ctx, `UPDATE credits SET used_credits = used_credits + $2 WHERE id = $1`, d.id, d.take); err != nil {
			return fmt.Errorf("consume grant %s: %w", d.id, err)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO credit_transactions (user_id, credit_id, amount, transaction_type, description, reference_id)
			VALUES ($1, $2, $3, 'usage', $4, $5)`,
			h.UserID, d.id, -d.take, fmt.Sprintf("generation %s", h.JobID), h.JobID); err != nil {
			return fmt.Errorf("record usage transaction: %w", err)
		}
	}
	return nil
}

// Release voids a pending hold, returning its credits to the balance. It is
// idempotent, and a posted hold is returned unchanged (its money has moved).
func (s *Store) Release(ctx context.Context, jobID string) (Hold, error) {
	var h Hold
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		h, err = releaseTx(ctx, tx, jobID)
		return err
	})
	if err != nil {
		return Hold{}, fmt.Errorf("release job %s: %w", jobID, err)
	}
	return h, nil
}

func releaseTx(ctx context.Context, tx pgx.Tx, jobID string) (Hold, error) {
	h, err := getHold(ctx, tx, jobID, true)
	if err != nil {
		return Hold{}, err
	}
	if h.Status != HoldPending {
		return h, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE credit_holds SET status = 'voided' WHERE id = $1`, jobID); err != nil {
		return Hold{}, fmt.Errorf("void hold: %w", err)
	}
	h.Status = HoldVoided
	return h, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
