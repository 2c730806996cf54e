package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/pricing"
	"github.com/jackc/pgx/v5"
)

// Refund is the outcome of a refund of a payment.
type Refund struct {
	UserID   string
	CreditID string // "" when the payment bought no credits
	// ClawedBack is how many unspent credits of the grant this refund
	// removed.
	ClawedBack int
	// First is false when the refund was already applied (a redelivery, or
	// an earlier refund of the charge arriving after a later one).
	First bool
	// Whole says the payment is now refunded in full.
	Whole bool
}

// RefundPayment applies a refund of a payment: refundedCents is how much of
// it has been refunded in all (Stripe's cumulative amount_refunded of the
// charge); 0 or anything from the payment's amount up refunds all of it.
// The grant the payment bought loses the same share of its credits, once
// per refunded cent: what earlier refunds took counts against it, and a
// refund that refunds no more than is recorded changes nothing. It never
// takes credits that pending jobs hold, so a render in flight still
// settles: a clawback is at most the grant's unspent credits and the
// user's available balance.
func (s *Store) RefundPayment(ctx context.Context, paymentIntentID string, refundedCents int64) (Refund, error) {
	var r Refund
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var p refundedPayment
		err := tx.QueryRow(ctx, `SELECT user_id, credit_id, round(amount * 100)::bigint, refunded_cents, clawed_back_credits
			FROM payments WHERE stripe_payment_intent_id = $1 FOR UPDATE`, paymentIntentID).
			Scan(&r.UserID, &p.creditID, &p.paidCents, &p.refundedCents, &p.clawedBack)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("payment %s: %w", paymentIntentID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if p.creditID != nil {
			r.CreditID = *p.creditID
		}
		refunded := refundedCents
		if refunded <= 0 || refunded > p.paidCents {
			refunded = p.paidCents
		}
		r.Whole = refunded >= p.paidCents
		if refunded <= p.refundedCents {
			return nil
		}
		r.First = true
		if r.CreditID != "" {
			r.ClawedBack, err = clawBackTx(ctx, tx, r.UserID, r.CreditID, p, refunded,
				fmt.Sprintf("refund/%s/%d", paymentIntentID, refunded))
			if err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE payments SET refunded_cents = $2, clawed_back_credits = clawed_back_credits + $3,
			status = CASE WHEN $4 THEN 'refunded' ELSE 'partially_refunded' END,
			refunded_at = CASE WHEN $4 THEN now() END
			WHERE stripe_payment_intent_id = $1`, paymentIntentID, refunded, r.ClawedBack, r.Whole)
		return err
	})
	if err != nil {
		return Refund{}, fmt.Errorf("refund payment %s: %w", paymentIntentID, err)
	}
	return r, nil
}

// refundedPayment is what a refund reads of its payment.
type refundedPayment struct {
	creditID      *string
	paidCents     int64
	refundedCents int64 // before this refund
	clawedBack    int   // credits earlier refunds took back
}

// clawBackTx takes back the grant's share of a refund that brings the
// payment's refunded amount to refunded: the grant as bought (what is left
// of it plus what earlier refunds took) times refunded over paid, rounded
// half up, less what earlier refunds took; a whole refund takes all that is
// left. It takes only unspent credits, keeping held ones covered, and
// records what it took as a clawback transaction.
func clawBackTx(ctx context.Context, tx pgx.Tx, userID, creditID string, p refundedPayment, refunded int64, reference string) (int, error) {
	if err := lockUser(ctx, tx, userID); err != nil {
		return 0, err
	}
	b, err := balanceTx(ctx, tx, userID)
	if err != nil {
		return 0, err
	}
	var total, used int
	if err := tx.QueryRow(ctx, `SELECT total_credits, used_credits FROM credits WHERE id = $1`,
		creditID).Scan(&total, &used); err != nil {
		return 0, fmt.Errorf("read grant %s: %w", creditID, err)
	}
	owed := total
	if refunded < p.paidCents {
		owed = int(pricing.Share(int64(total+p.clawedBack), refunded, p.paidCents)) - p.clawedBack
	}
	take := min(owed, total-used, max(b.Available, 0))
	if take <= 0 {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE credits SET total_credits = total_credits - $2 WHERE id = $1`,
		creditID, take); err != nil {
		return 0, fmt.Errorf("claw back grant %s: %w", creditID, err)
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO credit_transactions (user_id, credit_id, amount, transaction_type, description, reference_id)
		VALUES ($1, $2, $3, 'clawback', $4, $5) ON CONFLICT DO NOTHING`,
		userID, creditID, -take, fmt.Sprintf("%d unspent credits clawed back (%s)", take, reference), reference)
	if err != nil {
		return 0, fmt.Errorf("record clawback of grant %s: %w", creditID, err)
	}
	return take, nil
}

// DisputePayment marks a payment disputed, once, and returns its user;
// first is false when it was already marked.
func (s *Store) DisputePayment(ctx context.Context, paymentIntentID string) (userID string, first bool, err error) {
	err = s.db.QueryRow(ctx, `
		WITH p AS (SELECT user_id, disputed_at FROM payments WHERE stripe_payment_intent_id = $1),
		     u AS (UPDATE payments SET status = 'disputed', disputed_at = now()
		           WHERE stripe_payment_intent_id = $1 AND disputed_at IS NULL RETURNING 1)
		SELECT p.user_id, EXISTS (SELECT 1 FROM u) FROM p`, paymentIntentID).Scan(&userID, &first)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, fmt.Errorf("payment %s: %w", paymentIntentID, ErrNotFound)
	}
	if err != nil {
		return "", false, fmt.Errorf("dispute payment %s: %w", paymentIntentID, err)
	}
	return userID, first, nil
}

// BillingSummary is what the billing team sees first.
type BillingSummary struct {
	// MRRCents is the monthly price of every trialing, active and past-due
	// paid subscription (a trial counts: it converts at its end).
	MRRCents       int64           `json:"mrr_cents"`
	ActiveByPlan   map[string]int  `json:"active_by_plan"`
	PastDue        int             `json:"past_due"`
	FailedPayments []FailedPayment `json:"failed_payments"`
	Revenue30Days  int64           `json:"revenue_30d_cents"`
	Refunded30Days int64           `json:"refunded_30d_cents"`
}

// FailedPayment is one failed charge attempt in the summary.
type FailedPayment struct {
	UserID          string    `json:"user_id"`
	SubscriptionID  string    `json:"subscription_id"`
	PaymentIntentID string    `json:"payment_intent_id,omitempty"`
	AmountCents     int64     `json:"amount_cents"`
	Code            string    `json:"code"`
	At              time.Time `json:"at"`
}

// Billing summarizes subscriptions and payments; failed lists the newest
// failed attempts, at most limit.
func (s *Store) Billing(ctx context.Context, limit int) (BillingSummary, error) {
	sum, err := s.SubscriptionTotals(ctx)
	if err != nil {
		return sum, err
	}
	if err := s.db.QueryRow(ctx, `SELECT
		COALESCE(sum(round(amount * 100) - refunded_cents), 0)::bigint,
		COALESCE(sum(refunded_cents), 0)::bigint
		FROM payments WHERE created_at > now() - interval '30 days'`).Scan(&sum.Revenue30Days, &sum.Refunded30Days); err != nil {
		return sum, fmt.Errorf("billing revenue: %w", err)
	}
	sum.FailedPayments, err = s.failedPayments(ctx, limit)
	return sum, err
}

// SubscriptionTotals fills the subscription part of a summary: MRR, live
// subscriptions by plan and the past-due count, in one query.
func (s *Store) SubscriptionTotals(ctx context.Context) (BillingSummary, error) {
	sum := BillingSummary{ActiveByPlan: map[string]int{}}
	rows, err := s.db.Query(ctx, `
		SELECT p.slug, us.status, count(*), COALESCE(sum(round(p.monthly_price * 100)), 0)::bigint
		FROM user_subscriptions us JOIN subscription_plans p ON p.id = us.plan_id
		WHERE us.status IN ('trialing', 'active', 'past_due') GROUP BY p.slug, us.status`)
	if err != nil {
		return sum, fmt.Errorf("subscription totals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var slug, status string
		var n int
		var cents int64
		if err := rows.Scan(&slug, &status, &n, &cents); err != nil {
			return sum, fmt.Errorf("subscription totals: %w", err)
		}
		sum.ActiveByPlan[slug] += n
		sum.MRRCents += cents
		if status == catalog.SubPastDue {
			sum.PastDue += n
		}
	}
	if err := rows.Err(); err != nil {
		return sum, fmt.Errorf("subscription totals: %w", err)
	}
	return sum, nil
}

func (s *Store) failedPayments(ctx context.Context, limit int) ([]FailedPayment, error) {
	rows, err := s.db.Query(ctx, `
		SELECT user_id, subscription_id, COALESCE(stripe_payment_intent_id, ''), round(amount * 100)::bigint, code, created_at
		FROM payment_failures ORDER BY created_at DESC, id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list failed payments: %w", err)
	}
	fs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (FailedPayment, error) {
		var f FailedPayment
		err := r.Scan(&f.UserID, &f.SubscriptionID, &f.PaymentIntentID, &f.AmountCents, &f.Code, &f.At)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("list failed payments: %w", err)
	}
	return fs, nil
}

// ActiveUsers counts the users who generated anything since t.
func (s *Store) ActiveUsers(ctx context.Context, since time.Time) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(DISTINCT user_id) FROM usage_records WHERE created_at >= $1`, since).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count active users: %w", err)
	}
	return n, nil
}
