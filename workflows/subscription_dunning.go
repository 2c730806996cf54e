package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/store"
)

// DunningSchedule is when a declined renewal is retried, counted from the
// first decline: Stripe's smart retries use similar spacing, and a week
// covers a payday.
var DunningSchedule = []time.Duration{24 * time.Hour, 3 * 24 * time.Hour, 7 * 24 * time.Hour}

// collect charges a period, retrying declines on the dunning schedule. It
// returns nil when every retry failed, or when a cancel or a deleted
// customer stopped the retries; a free plan is paid by definition.
func (s *subscription) collect(ctx workflow.Context, start time.Time, plan SubscriptionPlan) (*activities.ChargeResult, error) {
	if plan.PriceCents == 0 {
		return &activities.ChargeResult{}, nil
	}
	for {
		if s.in.DunningAttempt > 0 {
			if err := s.sleepUntilRetry(ctx); err != nil || s.dunningStopped() {
				return nil, err
			}
		}
		key := s.renewalKey(start)
		res, err := s.chargePeriod(ctx, start, plan, key)
		if err == nil {
			return &res, nil
		}
		more := s.failAttempt(ctx)
		s.afterDecline(ctx, key)
		if !more {
			return nil, nil
		}
	}
}

// chargePeriod charges one attempt at a period; a cancel of a checkout
// waits while it is in flight.
func (s *subscription) chargePeriod(ctx workflow.Context, start time.Time, plan SubscriptionPlan, key string) (activities.ChargeResult, error) {
	s.charging = true
	defer func() { s.charging = false }()
	return s.charge(ctx, ChargeRenewal, start, plan.PriceCents, key, plan.Slug)
}

// dunningStopped says no more retries are wanted: the customer canceled
// the period they gave up, or is gone from Stripe.
func (s *subscription) dunningStopped() bool { return s.in.CancelAtPeriodEnd || s.customerDeleted }

// renewalKey is the Stripe idempotency key of a period. Each dunning retry
// needs its own key: Stripe replays the stored decline for a reused key.
func (s *subscription) renewalKey(start time.Time) string {
	key := s.in.SubscriptionID + "/" + start.UTC().Format(time.RFC3339)
	if s.in.DunningAttempt > 0 {
		key += fmt.Sprintf("/retry-%d", s.in.DunningAttempt)
	}
	return key
}

// failAttempt enters or advances dunning; false once retries are exhausted.
func (s *subscription) failAttempt(ctx workflow.Context) bool {
	if s.in.DunningAttempt == 0 {
		s.in.DunningSince = workflow.Now(ctx)
	}
	s.in.DunningAttempt++
	if !s.inCheckout() {
		s.phase = phasePastDue // a checkout stays incomplete: the free plan is in effect
	}
	return s.in.DunningAttempt <= len(DunningSchedule)
}

// sleepUntilRetry waits for the next dunning retry; a cancel wakes it so
// the customer is not charged again for a period they gave up.
func (s *subscription) sleepUntilRetry(ctx workflow.Context) error {
	d := s.nextRetryAt().Sub(workflow.Now(ctx))
	if d <= 0 {
		return nil
	}
	_, err := workflow.AwaitWithTimeout(ctx, d, s.dunningStopped)
	return err
}

func (s *subscription) nextRetryAt() time.Time {
	return retryAt(s.in.DunningSince, s.in.DunningAttempt)
}

// afterDecline records a failed attempt for the billing team, tells the
// user on the first one, and shows the subscription as past due.
func (s *subscription) afterDecline(ctx workflow.Context, key string) {
	last := s.in.Charges[len(s.in.Charges)-1]
	f := store.PaymentFailure{UserID: s.in.UserID, SubscriptionID: s.in.SubscriptionID, IdempotencyKey: key,
		PaymentIntentID: last.PaymentIntentID, AmountCents: last.AmountCents, Code: last.Code}
	if err := workflow.ExecuteActivity(bookkeepingContext(ctx), billingActivity.RecordPaymentFailure, f).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("record payment failure", "key", key, "error", err)
	}
	if s.in.DunningAttempt == 1 {
		s.notify(ctx, s.paymentFailedNotice())
	}
	s.sync(ctx)
	s.emitPaymentFailed(ctx, key, last)
}

func (s *subscription) paymentFailedNotice() activities.NoticeInput {
	return activities.NoticeInput{UserID: s.in.UserID, Kind: store.NoticePaymentFailed,
		Subject: "We could not charge your card",
		Body: fmt.Sprintf("The payment for your %s plan was declined. We will try again in %d, %d and %d days; "+
			"update your card before then to keep your plan.\n", s.in.Plan.Slug,
			int(DunningSchedule[0].Hours()/24), int(DunningSchedule[1].Hours()/24), int(DunningSchedule[2].Hours()/24))}
}

// unpaid ends a subscription whose charge failed for good: a cancel during
// dunning ends it as canceled, otherwise it is downgraded.
func (s *subscription) unpaid(ctx workflow.Context, err error) (SubscriptionResult, error) {
	switch {
	case err != nil:
		return s.result(ctx, s.phase, ""), err
	case s.customerDeleted:
		return s.end(ctx, phaseCanceled, reasonCustomerDeleted)
	case s.in.CancelAtPeriodEnd:
		return s.end(ctx, phaseCanceled, "canceled during dunning")
	case s.inCheckout():
		// Never in effect: the free plan simply stays.
		return s.end(ctx, phaseCanceled, fmt.Sprintf("first payment failed after %d retries", len(DunningSchedule)))
	}
	return s.downgrade(ctx)
}

// downgrade tells the user, and ends the subscription: its fallback plan
// takes over.
func (s *subscription) downgrade(ctx workflow.Context) (SubscriptionResult, error) {
	s.notify(ctx, activities.NoticeInput{UserID: s.in.UserID, Kind: store.NoticeDowngraded,
		Subject: "Your Easel plan has changed",
		Body: fmt.Sprintf("We could not collect the payment for your %s plan after %d attempts, so your "+
			"account is now on the free plan. Subscribe again at any time to get your plan back.\n",
			s.in.Plan.Slug, len(DunningSchedule))})
	return s.end(ctx, phaseDowngraded, fmt.Sprintf("payment failed after %d retries", len(DunningSchedule)))
}
