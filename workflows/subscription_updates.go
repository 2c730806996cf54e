package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
)

// Subscription updates and queries.
const (
	CancelUpdate     = "cancel"
	ResumeUpdate     = "resume"
	RenewNowUpdate   = "renew_now"
	ChangePlanUpdate = "change_plan"
	StateQuery       = "state"
	ChargesQuery     = "charges"
)

// SubscriptionState answers the state query.
type SubscriptionState struct {
	Plan              SubscriptionPlan
	PendingPlan       *SubscriptionPlan
	PeriodStart       time.Time
	PeriodEnd         time.Time
	TrialEnd          time.Time
	Status            string
	CancelAtPeriodEnd bool
	NextChargeAt      time.Time
	DunningAttempt    int
}

// RenewNowRequest names the period the billing team means to end, so that a
// retried request cannot renew twice: once a period is renewed it is never
// current again, and a request naming it is refused. A zero PeriodStart
// means the current period, unless a renewal began it less than
// RenewCooldown ago: a request run twice (a double click, a CLI run again)
// then names the period the first one created, and is refused.
type RenewNowRequest struct {
	PeriodStart time.Time
}

// RenewNowResult names the period the accepted renewal ends.
type RenewNowResult struct {
	PeriodStart time.Time
}

// RenewCooldown is how long after a renewal a renew_now that names no period
// is refused. Renewing twice within it must name the period explicitly.
const RenewCooldown = time.Hour

// ChangePlanRequest switches plan: an upgrade now (prorated), a downgrade at
// the period end.
type ChangePlanRequest struct {
	Plan SubscriptionPlan
}

// ChangePlanResult says when the new plan takes effect.
type ChangePlanResult struct {
	EffectiveAt     time.Time
	AmountCents     int64
	Credits         int
	PaymentIntentID string
}

// register installs the queries and the updates with their validators. A
// validator refuses before anything is written to history, so a refused
// request costs nothing and changes nothing.
func (s *subscription) register(ctx workflow.Context) error {
	if err := s.registerQueries(ctx); err != nil {
		return err
	}
	updates := []struct {
		name      string
		handler   any
		validator any
	}{
		{CancelUpdate, s.cancel, s.validateCancel},
		{ResumeUpdate, s.resume, s.validateResume},
		{RenewNowUpdate, s.renewNowHandler, s.validateRenewNow},
		{ChangePlanUpdate, s.changePlan, s.validateChangePlan},
	}
	for _, u := range updates {
		opts := workflow.UpdateHandlerOptions{Validator: u.validator}
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler, opts); err != nil {
			return fmt.Errorf("register %s update: %w", u.name, err)
		}
	}
	return nil
}

func (s *subscription) registerQueries(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, StateQuery, s.state); err != nil {
		return fmt.Errorf("register state query: %w", err)
	}
	if err := workflow.SetQueryHandler(ctx, ChargesQuery, func() ([]ChargeRecord, error) {
		return s.in.Charges, nil
	}); err != nil {
		return fmt.Errorf("register charges query: %w", err)
	}
	return nil
}

func (s *subscription) state() (SubscriptionState, error) {
	return SubscriptionState{Plan: s.in.Plan, PendingPlan: s.in.PendingPlan, PeriodStart: s.in.PeriodStart,
		PeriodEnd: s.in.PeriodEnd, TrialEnd: s.in.TrialEnd, Status: s.phase.String(),
		CancelAtPeriodEnd: s.in.CancelAtPeriodEnd, NextChargeAt: s.nextChargeAt(),
		DunningAttempt: s.in.DunningAttempt}, nil
}

// nextChargeAt is zero when no charge is due: canceled, or a free plan.
func (s *subscription) nextChargeAt() time.Time {
	switch {
	case s.in.CancelAtPeriodEnd || s.nextPlan().PriceCents == 0:
		return time.Time{}
	case s.in.DunningAttempt > 0 && s.in.DunningAttempt <= len(DunningSchedule):
		return s.nextRetryAt()
	}
	return s.in.PeriodEnd
}

func (s *subscription) validateCancel() error {
	switch {
	case s.inCheckout() && s.charging:
		return errors.New("the first payment is being charged; retry in a moment")
	case s.in.CancelAtPeriodEnd:
		return errors.New("subscription is already canceled at period end")
	case s.in.FallbackPlan != nil && s.in.Plan.Slug == s.in.FallbackPlan.Slug:
		return fmt.Errorf("the %s plan has nothing to cancel", s.in.Plan.Slug)
	}
	return nil
}

// cancel cancels at the period end; a checkout, never in effect, ends now
// (the row is ended before the update answers, so the caller may open
// another checkout at once).
func (s *subscription) cancel(ctx workflow.Context) (SubscriptionState, error) {
	s.in.CancelAtPeriodEnd = true
	if s.inCheckout() {
		s.phase = phaseCanceled
		s.syncEnded(ctx, true)
		return s.state()
	}
	s.sync(ctx)
	return s.state()
}

func (s *subscription) validateResume() error {
	if s.inCheckout() {
		return errors.New("a checkout has nothing to resume: subscribe again")
	}
	if !s.in.CancelAtPeriodEnd {
		return errors.New("subscription is not canceled")
	}
	return nil
}

func (s *subscription) resume(ctx workflow.Context) (SubscriptionState, error) {
	s.in.CancelAtPeriodEnd = false
	s.sync(ctx)
	return s.state()
}

// validateRenewNow refuses anything but the first renewal of the current
// period, so a retried or duplicated request never charges twice.
func (s *subscription) validateRenewNow(ctx workflow.Context, req RenewNowRequest) error {
	if err := s.checkRenewable(); err != nil {
		return err
	}
	if req.PeriodStart.IsZero() {
		return s.checkCooldown(ctx)
	}
	return s.checkCurrentPeriod(req.PeriodStart)
}

// checkRenewable refuses a renewal of a subscription that is not billing
// periods of its own, or whose period is already being renewed.
func (s *subscription) checkRenewable() error {
	switch {
	case s.inCheckout():
		return errors.New("subscription has not started billing: its checkout is open")
	case s.in.DunningAttempt > 0 || s.phase == phasePastDue:
		return errors.New("subscription is in dunning: its renewal is already being collected")
	case s.in.CancelAtPeriodEnd:
		return errors.New("subscription is canceled at period end: resume it first")
	case s.renewNow || s.renewing:
		return fmt.Errorf("period %s is already being renewed", periodKey(s.in.PeriodStart))
	}
	return nil
}

// checkCooldown refuses a renewal that names no period when a renewal began
// the current period moments ago: it is most likely the same request again.
func (s *subscription) checkCooldown(ctx workflow.Context) error {
	if s.in.RenewedAt.IsZero() {
		return nil
	}
	if ago := workflow.Now(ctx).Sub(s.in.RenewedAt); ago < RenewCooldown {
		return fmt.Errorf("the current period %s began with a renewal %s ago; to renew it again, name it: period_start (--period) %s",
			periodKey(s.in.PeriodStart), ago.Round(time.Second), periodKey(s.in.PeriodStart))
	}
	return nil
}

// checkCurrentPeriod refuses a renewal naming any period but the current
// one.
func (s *subscription) checkCurrentPeriod(start time.Time) error {
	current := periodKey(s.in.PeriodStart)
	switch {
	case start.Truncate(time.Second).Before(s.in.PeriodStart.Truncate(time.Second)):
		return fmt.Errorf("period %s is already renewed; the current period began %s", periodKey(start), current)
	case periodKey(start) != current:
		return fmt.Errorf("period %s is not the current period %s", periodKey(start), current)
	}
	return nil
}

func (s *subscription) renewNowHandler(_ workflow.Context, _ RenewNowRequest) (RenewNowResult, error) {
	s.renewNow = true
	return RenewNowResult{PeriodStart: s.in.PeriodStart}, nil
}

func (s *subscription) validateChangePlan(req ChangePlanRequest) error {
	switch {
	case req.Plan.Slug == "" || req.Plan.PriceCents < 0 || req.Plan.Credits < 0:
		return errors.New("plan slug, price and credits are required")
	case s.inCheckout():
		return errors.New("subscription has not started billing: subscribe again to change the plan of a checkout")
	}
	if err := PlanChangeConflict(s.in.Plan.Slug, PlanSlug(s.in.PendingPlan), s.phase == phasePastDue, req.Plan); err != nil {
		return err
	}
	if s.upgrading || s.renewing {
		return errors.New("a plan change or renewal is in progress; retry shortly")
	}
	return nil
}

// PlanSlug is the slug of plan, "" for none (no change waiting).
func PlanSlug(plan *SubscriptionPlan) string {
	if plan == nil {
		return ""
	}
	return plan.Slug
}

// PlanChangeConflict says why a subscription on plan current, with a
// change to pending waiting for the period end ("" for none) and in
// dunning when pastDue, cannot change to plan, or nil when it can: the
// update's validator and the API's preview of a change refuse alike. A
// change back to the plan in effect withdraws the waiting change.
func PlanChangeConflict(current, pending string, pastDue bool, plan SubscriptionPlan) error {
	switch {
	case plan.Slug == current && pending == "":
		return fmt.Errorf("subscription is already on plan %s", plan.Slug)
	case plan.Slug == current:
		return nil
	case pastDue:
		return errors.New("subscription is in dunning: settle the payment first")
	}
	return nil
}

// changePlan upgrades now, charging the prorated price difference for the
// rest of the period; a downgrade (or any change during a trial, which has
// nothing to prorate against) waits for the period end; a change back to
// the plan in effect withdraws the one waiting.
func (s *subscription) changePlan(ctx workflow.Context, req ChangePlanRequest) (ChangePlanResult, error) {
	now := workflow.Now(ctx)
	if req.Plan.Slug == s.in.Plan.Slug {
		// Back to the plan in effect: the change waiting for the period end
		// is withdrawn; nothing is charged or granted. (The validator let
		// this through only with a change waiting.)
		s.in.PendingPlan = nil
		s.sync(ctx)
		return ChangePlanResult{EffectiveAt: now}, nil
	}
	quote := QuotePlanChange(s.in.Plan, req.Plan, s.phase == phaseTrialing, s.in.PeriodStart, s.in.PeriodEnd, now)
	if !quote.Upgrade {
		s.in.PendingPlan = &req.Plan
		s.sync(ctx)
		return ChangePlanResult{EffectiveAt: quote.EffectiveAt}, nil
	}
	s.upgrading = true
	defer func() { s.upgrading = false }()
	res, err := s.upgrade(ctx, req.Plan, quote)
	if err == nil {
		s.sync(ctx)
		err = s.searchable(ctx)
	}
	return res, err
}

// upgrade charges the quoted prorated difference, then switches plan and
// grants the prorated extra credits.
func (s *subscription) upgrade(ctx workflow.Context, plan SubscriptionPlan, quote PlanChangeQuote) (ChangePlanResult, error) {
	start := s.grantStart(quote.EffectiveAt)
	paid, err := s.chargeUpgrade(ctx, plan, start, quote.AmountCents)
	if err != nil {
		return ChangePlanResult{}, err
	}
	res := ChangePlanResult{EffectiveAt: quote.EffectiveAt, AmountCents: quote.AmountCents, Credits: quote.Credits,
		PaymentIntentID: paid.PaymentIntentID}
	s.in.Plan, s.in.PendingPlan = plan, nil
	return res, s.grantCredits(ctx, plan.Slug, quote.Credits, start, s.in.PeriodEnd, paid)
}

// chargeUpgrade charges an upgrade's prorated amount; nothing when it
// rounds to zero.
func (s *subscription) chargeUpgrade(ctx workflow.Context, plan SubscriptionPlan, start time.Time, amount int64) (activities.ChargeResult, error) {
	if amount <= 0 {
		return activities.ChargeResult{}, nil
	}
	key := s.in.SubscriptionID + "/upgrade/" + plan.Slug + "/" + periodKey(start)
	paid, err := s.charge(ctx, ChargeProration, start, amount, key, plan.Slug)
	if err != nil {
		return activities.ChargeResult{}, fmt.Errorf("upgrade to %s: %w", plan.Slug, err)
	}
	return paid, nil
}
