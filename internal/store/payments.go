package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// SourceSubscription is the grant source of a subscription period's credits.
const SourceSubscription = "subscription"

// PeriodGrant is one subscription period's credits and, for a paid period,
// the Stripe payment that bought them.
type PeriodGrant struct {
	SubscriptionID string
	UserID         string
	PlanSlug       string
	Credits        int
	PeriodStart    time.Time
	PeriodEnd      time.Time
	// PaymentIntentID is empty for a free period: no payments row is written.
	PaymentIntentID string
	AmountCents     int64
	Currency        string // ISO code; "" means USD
	Description     string // "" gets a description from the plan and period
}

// PeriodReference is the grant reference of a subscription period. It is the
// grant's idempotency key, so it must not change for a given period: the
// start is written in UTC so a time zone change cannot make a second grant.
func PeriodReference(subscriptionID string, periodStart time.Time) string {
	return "subscription/" + subscriptionID + "/" + periodStart.UTC().Format(time.RFC3339)
}

// GrantPeriod grants a subscription period's credits, valid for the period,
// and records its payment, in one transaction. A payment that bought no
// credits (an upgrade between plans with equal credits) writes only the
// payments row; the grant id is then "". It is idempotent: the grant is
// keyed by PeriodReference and the payment by its payment intent id, so a
// replay (an activity retried after a commit) writes nothing new and returns
// the first grant's id.
func (s *Store) GrantPeriod(ctx context.Context, in PeriodGrant) (string, error) {
	if err := in.validate(); err != nil {
		return "", err
	}
	ref := PeriodReference(in.SubscriptionID, in.PeriodStart)
	desc := in.Description
	if desc == "" {
		desc = fmt.Sprintf("%s subscription %s, %s to %s", in.PlanSlug, in.SubscriptionID,
			in.PeriodStart.UTC().Format(time.DateOnly), in.PeriodEnd.UTC().Format(time.DateOnly))
	}
	var creditID string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The lock serializes grants per user, so two concurrent replays
		// cannot both miss the reference lookup in grantTx and race on the
		// unique reference_id.
		if err := lockUser(ctx, tx, in.UserID); err != nil {
			return err
		}
		if in.Credits > 0 {
			g, err := grantTx(ctx, tx, GrantInput{UserID: in.UserID, Amount: in.Credits, Source: SourceSubscription,
				ValidFrom: in.PeriodStart, ValidUntil: in.PeriodEnd, ReferenceID: ref, Description: desc})
			if err != nil {
				return err
			}
			creditID = g.ID
		}
		if in.PaymentIntentID == "" {
			return nil
		}
		currency := strings.ToUpper(in.Currency)
		if currency == "" {
			currency = "USD"
		}
		// The amount goes in as exact decimal text: a float would round
		// some cent values.
		if _, err := tx.Exec(ctx, `
			INSERT INTO payments (user_id, stripe_payment_intent_id, amount, currency, status, description,
			                      subscription_id, credit_id)
			VALUES ($1, $2, $3::numeric, $4, 'succeeded', $5, $6, $7)
			ON CONFLICT (stripe_payment_intent_id) DO NOTHING`,
			in.UserID, in.PaymentIntentID, centsToDecimal(in.AmountCents), currency, desc,
			in.SubscriptionID, nullable(creditID)); err != nil {
			return fmt.Errorf("record payment %s: %w", in.PaymentIntentID, err)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("grant period %s to %s: %w", ref, in.UserID, err)
	}
	return creditID, nil
}

// ErrInvalidPeriod is returned for a period grant that can never succeed;
// retrying it is pointless.
var ErrInvalidPeriod = errors.New("invalid period grant")

func (in PeriodGrant) validate() error {
	switch {
	case in.SubscriptionID == "" || in.UserID == "":
		return fmt.Errorf("%w: subscription and user are required", ErrInvalidPeriod)
	case in.Credits < 0 || (in.Credits == 0 && in.PaymentIntentID == ""):
		// A paid change that adds no credits still records its payment.
		return fmt.Errorf("%w: %d credits, must be positive", ErrInvalidPeriod, in.Credits)
	case !in.PeriodEnd.After(in.PeriodStart):
		return fmt.Errorf("%w: period end %v not after start %v", ErrInvalidPeriod, in.PeriodEnd, in.PeriodStart)
	case in.AmountCents < 0:
		return fmt.Errorf("%w: negative amount %d cents", ErrInvalidPeriod, in.AmountCents)
	case len(in.Currency) > 3:
		return fmt.Errorf("%w: currency %q is not an ISO code", ErrInvalidPeriod, in.Currency)
	}
	return nil
}

// centsToDecimal writes a non-negative cent amount as dollars, e.g. 1999 -> "19.99".
func centsToDecimal(cents int64) string {
	return fmt.Sprintf("%d.%02d", cents/100, cents%100)
}

// Payment is a recorded Stripe payment.
type Payment struct {
	ID              string
	UserID          string
	PaymentIntentID string
	Amount          string // dollars, exact decimal text
	Currency        string
	Status          string
	Description     string
	CreatedAt       time.Time
}

// Payments lists a user's payments, newest first.
func (s *Store) Payments(ctx context.Context, userID string) ([]Payment, error) {
	rows, err := s.db.Query(ctx, `
		SELECT id, user_id, COALESCE(stripe_payment_intent_id, ''), amount::text, COALESCE(currency, ''),
		       status, description, created_at
		FROM payments WHERE user_id = $1 ORDER BY created_at DESC, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list payments of %s: %w", userID, err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Payment, error) {
		var p Payment
		err := r.Scan(&p.ID, &p.UserID, &p.PaymentIntentID, &p.Amount, &p.Currency, &p.Status, &p.Description, &p.CreatedAt)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list payments of %s: %w", userID, err)
	}
	return ps, nil
}
