package activities

import (
	"context"
	"errors"
	"log/slog"

	"go.temporal.io/sdk/temporal"

	"github.com/easel/easel/internal/balancecache"
	"github.com/easel/easel/internal/notify"
	"github.com/easel/easel/internal/payments"
	"github.com/easel/easel/internal/store"
)

// errNoStripe fails a charge on a worker without STRIPE_SECRET_KEY. It
// retries: a worker with Stripe configured (after a deploy) picks it up.
var errNoStripe = errors.New("stripe is not configured on this worker (STRIPE_SECRET_KEY)")

// TypeStripeInvalidRequest is a charge Stripe refused as malformed (bad
// parameters, unknown customer, revoked key, an idempotency key reused with
// other parameters). Retrying sends the same request, so it is never
// retried; it needs a person.
const TypeStripeInvalidRequest = "StripeInvalidRequest"

// Billing holds the subscription workflow's activities: the charge (through
// the Stripe gateway, keyed by the workflow's input so a retry or a replay
// never charges twice) and the database moves around it.
type Billing struct {
	// Payments charges through Stripe; nil (no STRIPE_SECRET_KEY) bills
	// free subscriptions only.
	Payments *payments.Gateway
	Store    *store.Store
	Log      *slog.Logger
	// Notices delivers billing notices; nil logs them.
	Notices notify.Sender
	// Balances, when set, is kept in step with grants and clawbacks.
	Balances *balancecache.Cache
}

// Charge charges one subscription period off-session. A charge the customer
// must act on (declined card, authentication required, no payment method)
// is a non-retryable CardDeclined error with DeclineDetails; a Stripe
// outage, rate limit or network failure is a plain error, so the activity
// retries with the same idempotency key and Stripe answers the first
// outcome.
func (b *Billing) Charge(ctx context.Context, in ChargeInput) (ChargeResult, error) {
	if b.Payments == nil {
		return ChargeResult{}, errNoStripe
	}
	if err := in.Validate(); err != nil {
		return ChargeResult{}, temporal.NewNonRetryableApplicationError(err.Error(), TypeInvalidRequest, err)
	}
	res, err := b.Payments.Charge(ctx, in)
	if err != nil {
		return ChargeResult{}, paymentError(err)
	}
	if b.Log != nil {
		b.Log.InfoContext(ctx, "subscription charged", "subscription_id", in.SubscriptionID,
			"user_id", in.UserID, "payment_intent", res.PaymentIntentID, "amount_cents", res.AmountCents)
	}
	return res, nil
}

// paymentError turns the gateway's verdict into the workflow's terms: a
// decline is a non-retryable CardDeclined carrying its details, a refused
// request a non-retryable StripeInvalidRequest, anything else retries.
func paymentError(err error) error {
	var d *payments.DeclineError
	switch {
	case errors.As(err, &d):
		return temporal.NewNonRetryableApplicationError(d.Error(), TypeCardDeclined, d.Err, d.Details)
	case errors.Is(err, payments.ErrInvalidRequest):
		return temporal.NewNonRetryableApplicationError(err.Error(), TypeStripeInvalidRequest, err)
	}
	return err
}

// GrantPeriod grants a period's credits and records its payment, once.
func (b *Billing) GrantPeriod(ctx context.Context, in GrantPeriodInput) (GrantPeriodResult, error) {
	end := balanceChange(ctx, b.Balances, b.Log, in.UserID)
	id, err := b.Store.GrantPeriod(ctx, store.PeriodGrant{
		SubscriptionID: in.SubscriptionID, UserID: in.UserID, PlanSlug: in.PlanSlug, Credits: in.Credits,
		PeriodStart: in.PeriodStart, PeriodEnd: in.PeriodEnd, PaymentIntentID: in.PaymentIntentID,
		AmountCents: in.AmountCents, Currency: in.Currency,
	})
	end()
	if errors.Is(err, store.ErrInvalidPeriod) || errors.Is(err, store.ErrNotFound) {
		// The same input will fail the same way: do not retry.
		return GrantPeriodResult{}, temporal.NewNonRetryableApplicationError(err.Error(), TypeInvalidRequest, err)
	}
	if err != nil {
		return GrantPeriodResult{}, err
	}
	return GrantPeriodResult{CreditID: id}, nil
}

// ActivateInput puts a paid checkout in effect.
type ActivateInput struct {
	SubscriptionID string
	Status         string // active, or trialing
}

// Activate puts a checkout whose first period is paid (or whose trial
// began) in effect and ends the free subscription it replaces, in one
// transaction; it returns the free subscriptions it ended, whose workflows
// the caller stops.
func (b *Billing) Activate(ctx context.Context, in ActivateInput) ([]string, error) {
	ended, err := b.Store.ActivateSubscription(ctx, in.SubscriptionID, in.Status)
	if errors.Is(err, store.ErrNotFound) {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), TypeInvalidRequest, err)
	}
	return ended, err
}
