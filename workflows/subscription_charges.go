package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/catalog"
)

// subscriptionCharge is the currency every subscription is charged in.
const subscriptionCharge = "usd"

// Nil receiver names the billing activities; the worker registers the real one.
var billingActivity *activities.Billing

// charge runs the Charge activity and records the attempt. A decline comes
// back as an error; its details go into the history.
func (s *subscription) charge(ctx workflow.Context, kind string, start time.Time, amount int64, key, slug string) (activities.ChargeResult, error) {
	var res activities.ChargeResult
	err := workflow.ExecuteActivity(chargeContext(ctx), billingActivity.Charge, activities.ChargeInput{
		SubscriptionID: s.in.SubscriptionID, UserID: s.in.UserID, CustomerID: s.in.CustomerID, PlanSlug: slug,
		AmountCents: amount, Currency: subscriptionCharge, PeriodStart: start, IdempotencyKey: key,
		Description: fmt.Sprintf("Easel %s %s from %s", slug, kind, start.UTC().Format(time.DateOnly)),
	}).Get(ctx, &res)
	s.record(ctx, kind, start, amount, res, err)
	return res, err
}

// record adds a charge attempt to the history, keeping the latest
// maxChargeHistory.
func (s *subscription) record(ctx workflow.Context, kind string, start time.Time, amount int64, res activities.ChargeResult, err error) {
	rec := ChargeRecord{Kind: kind, PeriodStart: start, At: workflow.Now(ctx), AmountCents: amount,
		PaymentIntentID: res.PaymentIntentID, Status: ChargeSucceeded}
	if err != nil {
		s.markFailed(ctx, &rec, err)
	}
	s.in.Charges = append(s.in.Charges, rec)
	if n := len(s.in.Charges); n > maxChargeHistory {
		s.in.Charges = append([]ChargeRecord(nil), s.in.Charges[n-maxChargeHistory:]...)
	}
}

// markFailed fills in why a charge failed: a decline with its code, or
// any other error.
func (s *subscription) markFailed(ctx workflow.Context, rec *ChargeRecord, err error) {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == activities.TypeCardDeclined {
		var d activities.DeclineDetails
		_ = appErr.Details(&d)
		rec.Status, rec.PaymentIntentID, rec.Code = ChargeDeclined, d.PaymentIntentID, d.Code
		return
	}
	// Not a decline (Stripe refused the request, or retries ran out): it
	// still goes through dunning, which gives support days to fix it.
	workflow.GetLogger(ctx).Error("subscription charge failed", "subscription_id", s.in.SubscriptionID, "error", err)
	rec.Status, rec.Code = ChargeFailed, err.Error()
}

// grant gives a period's credits, once per period start, with the payment
// that bought them.
func (s *subscription) grant(ctx workflow.Context, plan SubscriptionPlan, start, end time.Time, paid activities.ChargeResult) error {
	return s.grantCredits(ctx, plan.Slug, plan.Credits, start, end, paid)
}

func (s *subscription) grantCredits(ctx workflow.Context, slug string, credits int, start, end time.Time, paid activities.ChargeResult) error {
	if credits <= 0 {
		return nil // a plan without credits has nothing to grant
	}
	s.lastGrant = start
	err := workflow.ExecuteActivity(grantContext(ctx), billingActivity.GrantPeriod, activities.GrantPeriodInput{
		SubscriptionID: s.in.SubscriptionID, UserID: s.in.UserID, PlanSlug: slug, Credits: credits,
		PeriodStart: start, PeriodEnd: end, PaymentIntentID: paid.PaymentIntentID, AmountCents: paid.AmountCents, Currency: subscriptionCharge,
	}).Get(ctx, nil)
	if err != nil {
		return fmt.Errorf("grant credits of subscription %s from %s: %w", s.in.SubscriptionID, start, err)
	}
	return nil
}

// chargeContext retries network failures; a decline or a request Stripe
// rejects would fail the same way again.
func chargeContext(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              catalog.ControlQueue,
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: 6 * time.Hour,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        5 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        10 * time.Minute,
			NonRetryableErrorTypes: []string{activities.TypeCardDeclined, activities.TypeStripeInvalidRequest},
		},
	})
}

// grantContext retries without limit: the customer has paid, so the grant
// must eventually happen.
func grantContext(ctx workflow.Context) workflow.Context {
	return controlContext(ctx, 5*time.Minute, 0)
}

// bookkeepingContext runs the database writes that mirror the workflow: a
// few quick retries, since the next write repeats the whole state.
func bookkeepingContext(ctx workflow.Context) workflow.Context {
	return controlContext(ctx, time.Minute, 10)
}

// controlContext runs an activity on the control queue with exponential
// retries up to maxInterval apart; attempts 0 means no limit.
func controlContext(ctx workflow.Context, maxInterval time.Duration, attempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           catalog.ControlQueue,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    maxInterval,
			MaximumAttempts:    attempts,
		},
	})
}
