package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrLiveSubscription is returned when a user who already has a
// subscription in effect (or an open checkout) asks for another.
var ErrLiveSubscription = errors.New("user already has a live subscription")

// Subscription is one row of user_subscriptions, with plan slugs.
type Subscription struct {
	ID                string     `json:"id"`
	UserID            string     `json:"user_id"`
	Plan              string     `json:"plan"`
	PendingPlan       string     `json:"pending_plan,omitempty"`
	CustomerID        string     `json:"-"`
	Status            string     `json:"status"`
	PeriodStart       time.Time  `json:"current_period_start"`
	PeriodEnd         time.Time  `json:"current_period_end"`
	TrialEnd          *time.Time `json:"trial_end,omitempty"`
	CancelAtPeriodEnd bool       `json:"cancel_at_period_end"`
	SetupIntentID     string     `json:"-"`
	CreatedAt         time.Time  `json:"created_at"`
	EndedAt           *time.Time `json:"ended_at,omitempty"`
}

const subscriptionColumns = `us.id, us.user_id, p.slug, COALESCE(pp.slug, ''), us.stripe_customer_id, us.status,
	us.current_period_start, us.current_period_end, us.trial_end, COALESCE(us.cancel_at_period_end, FALSE),
	COALESCE(us.setup_intent_id, ''), us.created_at, us.ended_at`

const subscriptionFrom = ` FROM user_subscriptions us
	JOIN subscription_plans p ON p.id = us.plan_id
	LEFT JOIN subscription_plans pp ON pp.id = us.pending_plan_id`

func scanSubscription(row pgx.Row) (Subscription, error) {
	var s Subscription
	err := row.Scan(&s.ID, &s.UserID, &s.Plan, &s.PendingPlan, &s.CustomerID, &s.Status, &s.PeriodStart,
		&s.PeriodEnd, &s.TrialEnd, &s.CancelAtPeriodEnd, &s.SetupIntentID, &s.CreatedAt, &s.EndedAt)
	return s, err
}

func (s *Store) oneSubscription(ctx context.Context, what, where string, args ...any) (Subscription, error) {
	sub, err := scanSubscription(s.db.QueryRow(ctx, `SELECT `+subscriptionColumns+subscriptionFrom+` WHERE `+where+
		` ORDER BY us.created_at DESC LIMIT 1`, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return Subscription{}, fmt.Errorf("subscription %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("read subscription %s: %w", what, err)
	}
	return sub, nil
}

// GetSubscription reads a subscription by id.
func (s *Store) GetSubscription(ctx context.Context, id string) (Subscription, error) {
	return s.oneSubscription(ctx, id, `us.id::text = $1`, id)
}

// LiveSubscription is the user's subscription in effect: trialing, active
// or past due. An open checkout is not in effect (see Checkout).
func (s *Store) LiveSubscription(ctx context.Context, userID string) (Subscription, error) {
	return s.oneSubscription(ctx, "of user "+userID,
		`us.user_id = $1 AND us.status IN ('trialing', 'active', 'past_due')`, userID)
}

// Checkout is the user's open checkout: a paid subscription waiting for its
// card or its first payment.
func (s *Store) Checkout(ctx context.Context, userID string) (Subscription, error) {
	return s.oneSubscription(ctx, "checkout of user "+userID, `us.user_id = $1 AND us.status = 'incomplete'`, userID)
}

// SubscriptionByCustomer is the newest subscription of a Stripe customer.
func (s *Store) SubscriptionByCustomer(ctx context.Context, customerID string) (Subscription, error) {
	return s.oneSubscription(ctx, "of customer "+customerID, `us.stripe_customer_id = $1`, customerID)
}

// SubscriptionByPaymentIntent is the subscription a payment was made for.
func (s *Store) SubscriptionByPaymentIntent(ctx context.Context, paymentIntentID string) (Subscription, error) {
	return s.oneSubscription(ctx, "paid by "+paymentIntentID,
		`us.id::text = (SELECT subscription_id FROM payments WHERE stripe_payment_intent_id = $1)`, paymentIntentID)
}

// NewSubscription is a subscription about to be billed by its workflow.
type NewSubscription struct {
	UserID        string
	Plan          string
	CustomerID    string
	Status        string // catalog.SubIncomplete for a checkout
	PeriodStart   time.Time
	PeriodEnd     time.Time
	TrialEnd      time.Time // zero: no trial
	SetupIntentID string
}

// CreateSubscription inserts a subscription, or returns ErrLiveSubscription
// when the user already has one in effect (or, for a checkout, an open
// checkout): the unique indexes decide, so two concurrent requests cannot
// both win. A checkout lives beside the free subscription in effect, which
// ActivateSubscription ends once the checkout is paid.
func (s *Store) CreateSubscription(ctx context.Context, in NewSubscription) (Subscription, error) {
	var id string
	err := s.db.QueryRow(ctx, `
		INSERT INTO user_subscriptions (user_id, plan_id, stripe_customer_id, status, current_period_start,
		                                current_period_end, trial_end, setup_intent_id)
		SELECT $1, p.id, $3, $4, $5, $6, $7, NULLIF($8, '') FROM subscription_plans p WHERE p.slug = $2
		RETURNING id`, in.UserID, in.Plan, in.CustomerID, in.Status, in.PeriodStart, in.PeriodEnd,
		nullTime(in.TrialEnd), in.SetupIntentID).Scan(&id)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return Subscription{}, ErrLiveSubscription
	case errors.Is(err, pgx.ErrNoRows):
		return Subscription{}, fmt.Errorf("plan %q: %w", in.Plan, ErrNotFound)
	case err != nil:
		return Subscription{}, fmt.Errorf("create subscription of %s to %s: %w", in.UserID, in.Plan, err)
	}
	return s.GetSubscription(ctx, id)
}

// ActivateSubscription puts a paid checkout in effect with status (active,
// or trialing), ending the user's free subscription in the same
// transaction, so the user is never left with neither or both. It returns
// the free subscriptions it ended (none when replayed).
func (s *Store) ActivateSubscription(ctx context.Context, id, status string) (ended []string, err error) {
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			UPDATE user_subscriptions us SET status = 'canceled', ended_at = now()
			FROM subscription_plans p
			WHERE p.id = us.plan_id AND p.monthly_price = 0 AND us.id::text <> $1
			  AND us.user_id = (SELECT user_id FROM user_subscriptions WHERE id::text = $1)
			  AND us.status IN ('trialing', 'active', 'past_due') RETURNING us.id::text`, id)
		if err != nil {
			return fmt.Errorf("end free subscription: %w", err)
		}
		if ended, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return fmt.Errorf("end free subscription: %w", err)
		}
		tag, err := tx.Exec(ctx, `UPDATE user_subscriptions SET status = $2
			WHERE id::text = $1 AND ended_at IS NULL AND status IN ('incomplete', 'trialing', 'active')`, id, status)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("subscription %s is not an open checkout: %w", id, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("activate subscription %s: %w", id, err)
	}
	return ended, nil
}

// EndCheckout ends an open checkout with status (canceled, expired); false
// when it was not open.
func (s *Store) EndCheckout(ctx context.Context, id, status string) (bool, error) {
	tag, err := s.db.Exec(ctx, `UPDATE user_subscriptions SET status = $2, ended_at = now()
		WHERE id::text = $1 AND status = 'incomplete'`, id, status)
	if err != nil {
		return false, fmt.Errorf("end checkout %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// SubscriptionSync is the state a subscription workflow writes back, so the
// API, plan limits and the billing report read the workflow's truth.
type SubscriptionSync struct {
	ID                string
	Plan              string
	PendingPlan       string // "" clears it
	Status            string
	PeriodStart       time.Time
	PeriodEnd         time.Time
	TrialEnd          time.Time
	CancelAtPeriodEnd bool
	Ended             bool // canceled for good: ended_at is set
}

// SyncSubscription writes a workflow's state to its row. It is idempotent:
// the same state written twice is the same row.
func (s *Store) SyncSubscription(ctx context.Context, in SubscriptionSync) error {
	tag, err := s.db.Exec(ctx, `
		UPDATE user_subscriptions us SET
			plan_id = (SELECT id FROM subscription_plans WHERE slug = $2),
			pending_plan_id = (SELECT id FROM subscription_plans WHERE slug = NULLIF($3, '')),
			status = $4, current_period_start = $5, current_period_end = $6, trial_end = $7,
			cancel_at_period_end = $8,
			ended_at = CASE WHEN $9 THEN COALESCE(us.ended_at, now()) END
		WHERE us.id::text = $1 AND us.ended_at IS NULL
		  AND EXISTS (SELECT 1 FROM subscription_plans WHERE slug = $2)`,
		in.ID, in.Plan, in.PendingPlan, in.Status, in.PeriodStart, in.PeriodEnd, nullTime(in.TrialEnd),
		in.CancelAtPeriodEnd, in.Ended)
	if err != nil {
		return fmt.Errorf("sync subscription %s: %w", in.ID, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	// An ended row is final: a workflow still finishing (a Free subscription
	// replaced by a paid one) must not bring it back to life.
	if _, err := s.GetSubscription(ctx, in.ID); err == nil {
		return nil
	}
	return fmt.Errorf("sync subscription %s to plan %q: %w", in.ID, in.Plan, ErrNotFound)
}

// FallbackSubscription ends a subscription with status and puts its user on
// the free plan with a new subscription for [start, end), in one
// transaction; it returns the new subscription's id. It is idempotent: when
// the user already has a live subscription, that one is returned.
func (s *Store) FallbackSubscription(ctx context.Context, oldID, status, freePlan string, start, end time.Time) (string, error) {
	var id string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var userID, customerID string
		err := tx.QueryRow(ctx, `UPDATE user_subscriptions SET status = $2, ended_at = COALESCE(ended_at, now())
			WHERE id::text = $1 RETURNING user_id, stripe_customer_id`, oldID, status).Scan(&userID, &customerID)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("subscription %s: %w", oldID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT id FROM user_subscriptions WHERE user_id = $1
			AND status IN ('trialing', 'active', 'past_due')`, userID).Scan(&id)
		if err == nil || !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return tx.QueryRow(ctx, `
			INSERT INTO user_subscriptions (user_id, plan_id, stripe_customer_id, status, current_period_start, current_period_end)
			SELECT $1, p.id, $3, 'active', $4, $5 FROM subscription_plans p WHERE p.slug = $2 RETURNING id`,
			userID, freePlan, customerID, start, end).Scan(&id)
	})
	if err != nil {
		return "", fmt.Errorf("move subscription %s to %s: %w", oldID, freePlan, err)
	}
	return id, nil
}

// DueSubscriptions lists trialing and active subscriptions whose period
// ends at or before t, oldest first: what `easel billing renew --all-due`
// renews.
func (s *Store) DueSubscriptions(ctx context.Context, t time.Time) ([]Subscription, error) {
	rows, err := s.db.Query(ctx, `SELECT `+subscriptionColumns+subscriptionFrom+`
		WHERE us.status IN ('trialing', 'active') AND us.current_period_end <= $1
		ORDER BY us.current_period_end, us.id`, t)
	if err != nil {
		return nil, fmt.Errorf("list due subscriptions: %w", err)
	}
	subs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Subscription, error) { return scanSubscription(r) })
	if err != nil {
		return nil, fmt.Errorf("list due subscriptions: %w", err)
	}
	return subs, nil
}

// RecordStripeEvent stores a webhook event id; first is false when it was
// stored before (a redelivery).
func (s *Store) RecordStripeEvent(ctx context.Context, id, typ, subscriptionID string) (first bool, err error) {
	tag, err := s.db.Exec(ctx, `INSERT INTO stripe_events (id, type, subscription_id) VALUES ($1, $2, NULLIF($3, ''))
		ON CONFLICT (id) DO NOTHING`, id, typ, subscriptionID)
	if err != nil {
		return false, fmt.Errorf("record stripe event %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ForgetStripeEvent removes a recorded event whose handling failed, so
// Stripe's redelivery is handled instead of being taken for a replay.
func (s *Store) ForgetStripeEvent(ctx context.Context, id string) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM stripe_events WHERE id = $1`, id); err != nil {
		return fmt.Errorf("forget stripe event %s: %w", id, err)
	}
	return nil
}

// PaymentFailure is one declined or failed charge attempt.
type PaymentFailure struct {
	UserID          string
	SubscriptionID  string
	IdempotencyKey  string // the attempt's Stripe idempotency key: one row per attempt
	PaymentIntentID string
	AmountCents     int64
	Code            string
}

// RecordPaymentFailure records a failed attempt once.
func (s *Store) RecordPaymentFailure(ctx context.Context, f PaymentFailure) error {
	_, err := s.db.Exec(ctx, `
		INSERT INTO payment_failures (user_id, subscription_id, idempotency_key, stripe_payment_intent_id, amount, code)
		VALUES ($1, $2, $3, NULLIF($4, ''), $5::numeric, $6) ON CONFLICT (idempotency_key) DO NOTHING`,
		f.UserID, f.SubscriptionID, f.IdempotencyKey, f.PaymentIntentID, centsToDecimal(f.AmountCents), f.Code)
	if err != nil {
		return fmt.Errorf("record payment failure %s: %w", f.IdempotencyKey, err)
	}
	return nil
}
