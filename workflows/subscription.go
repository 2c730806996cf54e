package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/catalog"
)

// SubscriptionWorkflow is the workflow type name the workers register
// Subscription under.
const SubscriptionWorkflow = "Subscription"

// SubscriptionID is the workflow id of a subscription.
func SubscriptionID(subID string) string { return "subscription/" + subID }

// Charge kinds and outcomes in the charge history.
const (
	ChargeRenewal   = "renewal"
	ChargeProration = "proration"
	ChargeSucceeded = "succeeded"
	ChargeDeclined  = "declined"
	ChargeFailed    = "failed"
)

// maxChargeHistory bounds the history carried through continue-as-new, so
// the input of a years-old subscription stays small.
const maxChargeHistory = 24

// SubscriptionPlan is the part of a store.Plan that billing needs, with the
// price in cents: store.Plan.MonthlyPrice is a decimal string, and a workflow
// must not parse money twice in two places.
type SubscriptionPlan struct {
	Slug       string
	PriceCents int64
	Credits    int
}

// ChargeRecord is one charge attempt.
type ChargeRecord struct {
	Kind            string
	PeriodStart     time.Time
	At              time.Time
	AmountCents     int64
	PaymentIntentID string
	Status          string
	Code            string
}

// SubscriptionInput starts a subscription, and carries its state through
// continue-as-new. It is a workflow input: a field removed must stay
// harmless in old payloads (encoding/json ignores unknown fields), and a
// field added must mean "as before" when zero.
type SubscriptionInput struct {
	SubscriptionID    string
	UserID            string
	CustomerID        string
	Plan              SubscriptionPlan
	PeriodStart       time.Time
	PeriodEnd         time.Time
	TrialEnd          time.Time // zero: no trial
	CancelAtPeriodEnd bool

	// Carried state; the API leaves it zero.
	Started        bool              // the current period is billed (or its trial granted)
	RenewedAt      time.Time         // when a renewal began the current period; zero for the first
	Anchor         time.Time         // periods end on this day of the month
	PendingPlan    *SubscriptionPlan // a downgrade waiting for the period end
	Charges        []ChargeRecord
	DunningAttempt int
	DunningSince   time.Time

	// FallbackPlan, when set, is where the user goes when this subscription
	// ends (canceled, downgraded after dunning, customer deleted): a new
	// subscription on it starts as this one ends. Nil: the user is left
	// without a subscription, which the store reads as Free.
	FallbackPlan *SubscriptionPlan

	// Checkout, when set, is a paid subscription not yet in effect: the free
	// subscription stays in effect until its first charge succeeds (or its
	// trial begins). Cleared once it is in effect.
	Checkout *Checkout
}

// SubscriptionResult is how a subscription ended. Downgraded means payment
// failed after dunning: the caller starts a Free subscription.
type SubscriptionResult struct {
	Status    string
	Plan      string
	PeriodEnd time.Time
	EndedAt   time.Time
	Reason    string
	Charges   []ChargeRecord
	// Successor is the free subscription that replaced this one, if any.
	Successor string
}

// subscriptionPhase is where a subscription stands in its life. Its String
// is the status user_subscriptions stores and the state query answers.
type subscriptionPhase int

const (
	phaseIncomplete subscriptionPhase = iota // a checkout: the free plan stays in effect until it is paid
	phaseTrialing                            // the trial's credits are granted; the first charge is at the trial end
	phaseActive                              // the current period is paid
	phasePastDue                             // a charge was declined: dunning retries it
	phaseCanceled                            // ended by a cancel, or by the Stripe customer's deletion
	phaseExpired                             // a checkout that got no card in time
	phaseDowngraded                          // ended because dunning failed
)

var phaseStatuses = [...]string{catalog.SubIncomplete, catalog.SubTrialing, catalog.SubActive, catalog.SubPastDue, catalog.SubCanceled, catalog.SubExpired, catalog.SubDowngraded}

func (p subscriptionPhase) String() string {
	if p < 0 || int(p) >= len(phaseStatuses) {
		return fmt.Sprintf("subscriptionPhase(%d)", int(p))
	}
	return phaseStatuses[p]
}

// subscription is the state of one run. Besides the phase, it holds flags
// that update handlers and the Stripe event coroutine set while the run
// loop waits; each says something the phase cannot (a trialing or an
// active subscription may be renewing, upgrading, or losing its customer).
type subscription struct {
	in        SubscriptionInput
	phase     subscriptionPhase
	lastGrant time.Time // the latest grant start: grants are keyed by it

	renewNow        bool // a renew_now was accepted for the current period
	renewing        bool // the period has ended: the boundary is being billed
	upgrading       bool // an upgrade is charging
	charging        bool // a period's charge is in flight
	customerDeleted bool // the Stripe customer was deleted: end without charging

	events   workflow.ReceiveChannel
	handling int // Stripe events being applied
}

// Subscription bills one subscription, one period per run: it waits for the
// period end, charges the next period (with dunning), grants its credits
// and continues as new, so the history never grows past one period.
func Subscription(ctx workflow.Context, in SubscriptionInput) (SubscriptionResult, error) {
	s := &subscription{in: in, phase: initialPhase(in)}
	if err := s.setUp(ctx); err != nil {
		return s.result(ctx, phaseActive, ""), err
	}
	if res, done, err := s.begin(ctx); done || err != nil {
		return res, err
	}
	if s.in.DunningAttempt == 0 {
		if err := s.awaitPeriodEnd(ctx); err != nil {
			return s.result(ctx, s.phase, ""), err
		}
	}
	return s.closePeriod(ctx)
}

func initialPhase(in SubscriptionInput) subscriptionPhase {
	switch {
	case in.Checkout != nil:
		return phaseIncomplete
	case in.DunningAttempt > 0:
		return phasePastDue
	case inTrial(in.TrialEnd, in.PeriodStart, in.PeriodEnd):
		return phaseTrialing
	}
	return phaseActive
}

// setUp registers the handlers, the search attributes and the Stripe event
// listener before the run waits for anything.
func (s *subscription) setUp(ctx workflow.Context) error {
	if err := s.register(ctx); err != nil {
		return err
	}
	if err := s.searchable(ctx); err != nil {
		return err
	}
	s.listen(ctx)
	return nil
}

// searchable sets the run's search attributes, so every subscription is
// found in Temporal UI by user and current plan.
func (s *subscription) searchable(ctx workflow.Context) error {
	err := workflow.UpsertTypedSearchAttributes(ctx, SearchUserID.ValueSet(s.in.UserID), SearchPlan.ValueSet(s.in.Plan.Slug))
	if err != nil {
		return fmt.Errorf("set search attributes: %w", err)
	}
	return nil
}

// begin puts the subscription in effect: a checkout waits for its card,
// and a first period not yet billed is billed. done: the subscription
// ended (with the result) before its first period end.
func (s *subscription) begin(ctx workflow.Context) (SubscriptionResult, bool, error) {
	if s.inCheckout() {
		if res, done, err := s.awaitCard(ctx); done || err != nil {
			return res, done, err
		}
	}
	if s.in.Started {
		return SubscriptionResult{}, false, nil
	}
	return s.start(ctx)
}

// inCheckout says the subscription has not yet been in effect.
func (s *subscription) inCheckout() bool { return s.in.Checkout != nil }

// start bills the first period: a trial grants its credits free until the
// trial end; otherwise the first period is charged like any renewal, so all
// money goes through this workflow.
func (s *subscription) start(ctx workflow.Context) (SubscriptionResult, bool, error) {
	s.in.Started = true
	if s.in.TrialEnd.After(s.in.PeriodStart) {
		s.in.PeriodEnd, s.in.Anchor, s.phase = s.in.TrialEnd, s.in.TrialEnd, phaseTrialing
		return SubscriptionResult{}, false, s.takeEffect(ctx, activities.ChargeResult{})
	}
	if s.in.Anchor.IsZero() {
		s.in.Anchor = s.in.PeriodStart
	}
	paid, err := s.collect(ctx, s.in.PeriodStart, s.in.Plan)
	if err != nil || paid == nil {
		res, err := s.unpaid(ctx, err)
		return res, true, err
	}
	s.phase = phaseActive
	return SubscriptionResult{}, false, s.takeEffect(ctx, *paid)
}

// takeEffect puts the first period in effect once it is paid (or its
// trial began): a checkout replaces the free subscription, the period's
// credits are granted, and the row shows it.
func (s *subscription) takeEffect(ctx workflow.Context, paid activities.ChargeResult) error {
	if err := s.activate(ctx); err != nil {
		return err
	}
	if err := s.grant(ctx, s.in.Plan, s.in.PeriodStart, s.in.PeriodEnd, paid); err != nil {
		return err
	}
	s.sync(ctx)
	return nil
}

// awaitPeriodEnd sleeps until the period end or a renew_now update. An
// upgrade still charging finishes first, so it is billed on its own period.
func (s *subscription) awaitPeriodEnd(ctx workflow.Context) error {
	if d := s.in.PeriodEnd.Sub(workflow.Now(ctx)); d > 0 {
		if _, err := workflow.AwaitWithTimeout(ctx, d, func() bool { return s.renewNow || s.customerDeleted }); err != nil {
			return err
		}
	}
	s.renewing = true
	return workflow.Await(ctx, func() bool { return !s.upgrading })
}

// closePeriod ends a subscription canceled (or whose customer was deleted)
// at its period end, and renews any other.
func (s *subscription) closePeriod(ctx workflow.Context) (SubscriptionResult, error) {
	switch {
	case s.customerDeleted:
		return s.end(ctx, phaseCanceled, reasonCustomerDeleted)
	case s.in.CancelAtPeriodEnd:
		return s.end(ctx, phaseCanceled, "canceled at period end")
	}
	return s.renew(ctx)
}

// renew charges the next period, grants it and continues as new.
func (s *subscription) renew(ctx workflow.Context) (SubscriptionResult, error) {
	start := s.nextStart(ctx)
	plan := s.nextPlan()
	paid, err := s.collect(ctx, start, plan)
	if err != nil || paid == nil {
		return s.unpaid(ctx, err)
	}
	s.advance(start, plan)
	s.in.RenewedAt = workflow.Now(ctx)
	if err := s.grant(ctx, plan, s.in.PeriodStart, s.in.PeriodEnd, *paid); err != nil {
		return s.result(ctx, s.phase, ""), err
	}
	s.sync(ctx)
	s.emitRenewed(ctx, plan, *paid)
	if err := s.settle(ctx); err != nil {
		return s.result(ctx, s.phase, ""), err
	}
	return SubscriptionResult{}, workflow.NewContinueAsNewError(ctx, Subscription, s.in)
}

// nextPlan is the plan the next period is billed on: a pending downgrade
// takes effect then.
func (s *subscription) nextPlan() SubscriptionPlan {
	if s.in.PendingPlan != nil {
		return *s.in.PendingPlan
	}
	return s.in.Plan
}

// nextStart is when the next period starts: the scheduled end, or now when
// the billing team renewed early (the billing day then moves to today).
func (s *subscription) nextStart(ctx workflow.Context) time.Time {
	if s.renewNow {
		// Keys and grant references count whole seconds: a renewal in the
		// same second as the period start must still be a new period.
		now := s.grantStart(workflow.Now(ctx))
		s.in.Anchor = now
		return now
	}
	if s.phase == phaseTrialing || s.in.Anchor.IsZero() {
		s.in.Anchor = s.in.PeriodEnd
	}
	return s.in.PeriodEnd
}

// advance moves the carried state to the paid period.
func (s *subscription) advance(start time.Time, plan SubscriptionPlan) {
	s.in.Plan, s.in.PendingPlan, s.in.TrialEnd = plan, nil, time.Time{}
	s.in.PeriodStart, s.in.PeriodEnd = start, periodEnd(s.in.Anchor, start)
	s.in.DunningAttempt, s.in.DunningSince = 0, time.Time{}
	s.phase = phaseActive
}

// grantStart keys a grant made now (an upgrade, a renewal by the billing
// team): see nextGrantStart.
func (s *subscription) grantStart(now time.Time) time.Time {
	return nextGrantStart(now, s.in.PeriodStart, s.lastGrant)
}

// result ends the run in phase.
func (s *subscription) result(ctx workflow.Context, phase subscriptionPhase, reason string) SubscriptionResult {
	s.phase = phase
	return SubscriptionResult{Status: phase.String(), Plan: s.in.Plan.Slug, PeriodEnd: s.in.PeriodEnd,
		EndedAt: workflow.Now(ctx), Reason: reason, Charges: s.in.Charges}
}
