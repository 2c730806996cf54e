package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/store"
)

// SubscriptionID is the workflow id of a subscription.
func SubscriptionID(subID string) string { return "subscription/" + subID }

// Subscription updates and queries.
const (
	CancelUpdate       = "cancel"
	ResumeUpdate       = "resume"
	RenewNowUpdate     = "renew_now"
	ChangePlanUpdate   = "change_plan"
	StateQuery         = "state"
	ChargesQuery       = "charges"
	subscriptionCharge = "usd"
)

// Subscription statuses, as stored in user_subscriptions.status.
const (
	SubIncomplete = "incomplete" // a checkout: not in effect until paid
	SubExpired    = "expired"    // a checkout that got no card in time
	SubTrialing   = "trialing"
	SubActive     = "active"
	SubPastDue    = "past_due"
	SubCanceled   = "canceled"
	SubDowngraded = "downgraded"
)

// Charge kinds and outcomes in the charge history.
const (
	ChargeRenewal   = "renewal"
	ChargeProration = "proration"
	ChargeSucceeded = "succeeded"
	ChargeDeclined  = "declined"
	ChargeFailed    = "failed"
)

// DunningSchedule is when a declined renewal is retried, counted from the
// first decline: Stripe's smart retries use similar spacing, and a week
// covers a payday.
var DunningSchedule = []time.Duration{24 * time.Hour, 3 * 24 * time.Hour, 7 * 24 * time.Hour}

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
// continue-as-new.
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
	// Synced says the workflow keeps user_subscriptions in step (always in
	// production; unit tests of the billing arithmetic leave it off).
	Synced bool

	// Checkout, when set, is a paid subscription not yet in effect: the free
	// subscription stays in effect until its first charge succeeds (or its
	// trial begins). Cleared once it is in effect.
	Checkout *Checkout
}

// Checkout is the state of a subscription waiting to start billing.
type Checkout struct {
	// Replaces is the free subscription that ends when this one starts.
	Replaces string
	// ExpiresAt ends a checkout that has no card by then.
	ExpiresAt time.Time
	// CardReady says a payment method is saved (CardReadySignal).
	CardReady bool
}

// CheckoutTTL is how long a checkout waits for its card.
const CheckoutTTL = 24 * time.Hour

// CardReadySignal tells a checkout that the customer's card is saved.
const CardReadySignal = "card_ready"

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

// subscription is the state of one run.
type subscription struct {
	in        SubscriptionInput
	lastGrant time.Time // the latest grant start: grants are keyed by it
	status    string
	renewNow  bool   // a renew_now was accepted for the current period
	renewing  bool   // the period has ended: the boundary is being billed
	changing  bool   // an upgrade is charging
	charging  bool   // a checkout's first charge is in flight
	endNow    bool   // the Stripe customer was deleted: end without charging
	endReason string // why endNow was set
	events    workflow.ReceiveChannel
	handling  int // Stripe events being applied
}

// Subscription bills one subscription, one period per run: it waits for the
// period end, charges the next period (with dunning), grants its credits
// and continues as new, so the history never grows past one period.
func Subscription(ctx workflow.Context, in SubscriptionInput) (SubscriptionResult, error) {
	s := &subscription{in: in, status: initialStatus(in)}
	if err := s.register(ctx); err != nil {
		return s.result(ctx, SubActive, ""), err
	}
	if err := s.searchable(ctx); err != nil {
		return s.result(ctx, SubActive, ""), err
	}
	s.listen(ctx)
	if s.in.Checkout != nil {
		if res, done, err := s.awaitCard(ctx); done || err != nil {
			return res, err
		}
	}
	if !s.in.Started {
		if res, done, err := s.start(ctx); done || err != nil {
			return res, err
		}
	}
	if s.in.DunningAttempt == 0 {
		if err := s.awaitPeriodEnd(ctx); err != nil {
			return s.result(ctx, s.status, ""), err
		}
	}
	if s.endNow {
		return s.end(ctx, SubCanceled, s.endReason)
	}
	if s.in.CancelAtPeriodEnd {
		return s.end(ctx, SubCanceled, "canceled at period end")
	}
	return s.renew(ctx)
}

func initialStatus(in SubscriptionInput) string {
	switch {
	case in.Checkout != nil:
		return SubIncomplete
	case in.DunningAttempt > 0:
		return SubPastDue
	case in.TrialEnd.After(in.PeriodStart) && !in.TrialEnd.After(in.PeriodEnd):
		return SubTrialing
	}
	return SubActive
}

// start bills the first period: a trial grants its credits free until the
// trial end; otherwise the first period is charged like any renewal, so all
// money goes through this workflow.
func (s *subscription) start(ctx workflow.Context) (SubscriptionResult, bool, error) {
	s.in.Started = true
	if s.in.TrialEnd.After(s.in.PeriodStart) {
		s.in.PeriodEnd, s.in.Anchor, s.status = s.in.TrialEnd, s.in.TrialEnd, SubTrialing
		if err := s.activate(ctx); err != nil {
			return SubscriptionResult{}, false, err
		}
		if err := s.grant(ctx, s.in.Plan, s.in.PeriodStart, s.in.PeriodEnd, activities.ChargeResult{}); err != nil {
			return SubscriptionResult{}, false, err
		}
		s.sync(ctx)
		return SubscriptionResult{}, false, nil
	}
	if s.in.Anchor.IsZero() {
		s.in.Anchor = s.in.PeriodStart
	}
	paid, err := s.collect(ctx, s.in.PeriodStart, s.in.Plan)
	if err != nil || paid == nil {
		return s.unpaid(ctx, err)
	}
	s.status = SubActive
	if err := s.activate(ctx); err != nil {
		return SubscriptionResult{}, false, err
	}
	if err := s.grant(ctx, s.in.Plan, s.in.PeriodStart, s.in.PeriodEnd, *paid); err != nil {
		return SubscriptionResult{}, false, err
	}
	s.sync(ctx)
	return SubscriptionResult{}, false, nil
}

// awaitPeriodEnd sleeps until the period end or a renew_now update. An
// upgrade still charging finishes first, so it is billed on its own period.
func (s *subscription) awaitPeriodEnd(ctx workflow.Context) error {
	if d := s.in.PeriodEnd.Sub(workflow.Now(ctx)); d > 0 {
		if _, err := workflow.AwaitWithTimeout(ctx, d, func() bool { return s.renewNow || s.endNow }); err != nil {
			return err
		}
	}
	s.renewing = true
	return workflow.Await(ctx, func() bool { return !s.changing })
}

// renew charges the next period, grants it and continues as new.
func (s *subscription) renew(ctx workflow.Context) (SubscriptionResult, error) {
	start := s.nextStart(ctx)
	plan := s.in.Plan
	if s.in.PendingPlan != nil {
		plan = *s.in.PendingPlan
	}
	paid, err := s.collect(ctx, start, plan)
	if err != nil || paid == nil {
		res, _, err := s.unpaid(ctx, err)
		return res, err
	}
	s.advance(start, plan)
	s.in.RenewedAt = workflow.Now(ctx)
	if err := s.grant(ctx, plan, s.in.PeriodStart, s.in.PeriodEnd, *paid); err != nil {
		return s.result(ctx, s.status, ""), err
	}
	s.sync(ctx)
	if err := s.settle(ctx); err != nil {
		return s.result(ctx, s.status, ""), err
	}
	return SubscriptionResult{}, workflow.NewContinueAsNewError(ctx, Subscription, s.in)
}

// unpaid ends a subscription whose charge failed for good: a cancel during
// dunning ends it as canceled, otherwise it is downgraded.
func (s *subscription) unpaid(ctx workflow.Context, err error) (SubscriptionResult, bool, error) {
	if err != nil {
		return s.result(ctx, s.status, ""), true, err
	}
	if s.endNow {
		res, err := s.end(ctx, SubCanceled, s.endReason)
		return res, true, err
	}
	if s.in.CancelAtPeriodEnd {
		res, err := s.end(ctx, SubCanceled, "canceled during dunning")
		return res, true, err
	}
	if s.in.Checkout != nil {
		// Never in effect: the free plan simply stays.
		res, err := s.end(ctx, SubCanceled, fmt.Sprintf("first payment failed after %d retries", len(DunningSchedule)))
		return res, true, err
	}
	reason := fmt.Sprintf("payment failed after %d retries", len(DunningSchedule))
	s.notify(ctx, activities.NoticeInput{UserID: s.in.UserID, Kind: store.NoticeDowngraded,
		Subject: "Your Easel plan has changed",
		Body: fmt.Sprintf("We could not collect the payment for your %s plan after %d attempts, so your "+
			"account is now on the free plan. Subscribe again at any time to get your plan back.\n",
			s.in.Plan.Slug, len(DunningSchedule))})
	res, err := s.end(ctx, SubDowngraded, reason)
	return res, true, err
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
	if s.status == SubTrialing || s.in.Anchor.IsZero() {
		s.in.Anchor = s.in.PeriodEnd
	}
	return s.in.PeriodEnd
}

// advance moves the carried state to the paid period.
func (s *subscription) advance(start time.Time, plan SubscriptionPlan) {
	s.in.Plan, s.in.PendingPlan, s.in.TrialEnd = plan, nil, time.Time{}
	s.in.PeriodStart, s.in.PeriodEnd = start, periodEnd(s.in.Anchor, start)
	s.in.DunningAttempt, s.in.DunningSince = 0, time.Time{}
	s.status = SubActive
}

// periodEnd is the first monthly boundary after start, counted from the
// anchor so that a period starting Jan 31 ends Feb 28 and the next Mar 31.
func periodEnd(anchor, start time.Time) time.Time {
	for n := 1; ; n++ {
		if end := addMonths(anchor, n); end.After(start) {
			return end
		}
	}
}

// addMonths adds n months, clamping the day to the month's last day (Go's
// AddDate would turn Jan 31 + 1 month into Mar 3).
func addMonths(t time.Time, n int) time.Time {
	first := time.Date(t.Year(), t.Month()+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(t.Day(), last)-1)
}

// collect charges a period, retrying declines on the dunning schedule. It
// returns nil when every retry failed; a free plan is paid by definition.
func (s *subscription) collect(ctx workflow.Context, start time.Time, plan SubscriptionPlan) (*activities.ChargeResult, error) {
	if plan.PriceCents == 0 {
		return &activities.ChargeResult{}, nil
	}
	for {
		if s.in.DunningAttempt > 0 {
			if err := s.sleepUntilRetry(ctx); err != nil || s.in.CancelAtPeriodEnd || s.endNow {
				return nil, err
			}
		}
		key := s.renewalKey(start)
		s.charging = true
		res, err := s.charge(ctx, ChargeRenewal, start, plan.PriceCents, key, plan.Slug)
		s.charging = false
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
	if s.in.Checkout == nil {
		s.status = SubPastDue // a checkout stays incomplete: the free plan is in effect
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
	_, err := workflow.AwaitWithTimeout(ctx, d, func() bool { return s.in.CancelAtPeriodEnd || s.endNow })
	return err
}

func (s *subscription) nextRetryAt() time.Time {
	return s.in.DunningSince.Add(DunningSchedule[s.in.DunningAttempt-1])
}

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

func (s *subscription) record(ctx workflow.Context, kind string, start time.Time, amount int64, res activities.ChargeResult, err error) {
	rec := ChargeRecord{Kind: kind, PeriodStart: start, At: workflow.Now(ctx), AmountCents: amount,
		PaymentIntentID: res.PaymentIntentID, Status: ChargeSucceeded}
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
	case errors.As(err, &appErr) && appErr.Type() == activities.TypeCardDeclined:
		var d activities.DeclineDetails
		_ = appErr.Details(&d)
		rec.Status, rec.PaymentIntentID, rec.Code = ChargeDeclined, d.PaymentIntentID, d.Code
	default:
		// Not a decline (Stripe refused the request, or retries ran out): it
		// still goes through dunning, which gives support days to fix it.
		workflow.GetLogger(ctx).Error("subscription charge failed", "subscription_id", s.in.SubscriptionID, "error", err)
		rec.Status, rec.Code = ChargeFailed, err.Error()
	}
	s.in.Charges = append(s.in.Charges, rec)
	if n := len(s.in.Charges); n > maxChargeHistory {
		s.in.Charges = append([]ChargeRecord(nil), s.in.Charges[n-maxChargeHistory:]...)
	}
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

func (s *subscription) result(ctx workflow.Context, status, reason string) SubscriptionResult {
	s.status = status
	return SubscriptionResult{Status: status, Plan: s.in.Plan.Slug, PeriodEnd: s.in.PeriodEnd,
		EndedAt: workflow.Now(ctx), Reason: reason, Charges: s.in.Charges}
}

// chargeContext retries network failures; a decline or a request Stripe
// rejects would fail the same way again.
func chargeContext(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              ControlQueue,
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

// controlContext runs an activity on the control queue with exponential
// retries up to maxInterval apart; attempts 0 means no limit.
func controlContext(ctx workflow.Context, maxInterval time.Duration, attempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           ControlQueue,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    maxInterval,
			MaximumAttempts:    attempts,
		},
	})
}

// Nil receiver names the billing activities; the worker registers the real one.
var billingActivity *activities.Billing

// register installs the queries and the updates with their validators. A
// validator refuses before anything is written to history, so a refused
// request costs nothing and changes nothing.
func (s *subscription) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, StateQuery, s.state); err != nil {
		return fmt.Errorf("register state query: %w", err)
	}
	if err := workflow.SetQueryHandler(ctx, ChargesQuery, func() ([]ChargeRecord, error) {
		return s.in.Charges, nil
	}); err != nil {
		return fmt.Errorf("register charges query: %w", err)
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

func (s *subscription) state() (SubscriptionState, error) {
	return SubscriptionState{Plan: s.in.Plan, PendingPlan: s.in.PendingPlan, PeriodStart: s.in.PeriodStart,
		PeriodEnd: s.in.PeriodEnd, TrialEnd: s.in.TrialEnd, Status: s.status,
		CancelAtPeriodEnd: s.in.CancelAtPeriodEnd, NextChargeAt: s.nextChargeAt(),
		DunningAttempt: s.in.DunningAttempt}, nil
}

// nextChargeAt is zero when no charge is due: canceled, or a free plan.
func (s *subscription) nextChargeAt() time.Time {
	plan := s.in.Plan
	if s.in.PendingPlan != nil {
		plan = *s.in.PendingPlan
	}
	switch {
	case s.in.CancelAtPeriodEnd || plan.PriceCents == 0:
		return time.Time{}
	case s.in.DunningAttempt > 0 && s.in.DunningAttempt <= len(DunningSchedule):
		return s.nextRetryAt()
	}
	return s.in.PeriodEnd
}

func (s *subscription) validateCancel() error {
	switch {
	case s.in.Checkout != nil && s.charging:
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
	if s.in.Checkout != nil {
		s.status = SubCanceled
		s.syncEnded(ctx, true)
		return s.state()
	}
	s.sync(ctx)
	return s.state()
}

func (s *subscription) validateResume() error {
	if s.in.Checkout != nil {
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
	current := periodKey(s.in.PeriodStart)
	switch {
	case s.in.Checkout != nil:
		return errors.New("subscription has not started billing: its checkout is open")
	case s.in.DunningAttempt > 0 || s.status == SubPastDue:
		return errors.New("subscription is in dunning: its renewal is already being collected")
	case s.in.CancelAtPeriodEnd:
		return errors.New("subscription is canceled at period end: resume it first")
	case s.renewNow || s.renewing:
		return fmt.Errorf("period %s is already being renewed", current)
	case req.PeriodStart.IsZero():
		return s.checkCooldown(ctx)
	case req.PeriodStart.Truncate(time.Second).Before(s.in.PeriodStart.Truncate(time.Second)):
		return fmt.Errorf("period %s is already renewed; the current period began %s", periodKey(req.PeriodStart), current)
	case periodKey(req.PeriodStart) != current:
		return fmt.Errorf("period %s is not the current period %s", periodKey(req.PeriodStart), current)
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

func (s *subscription) renewNowHandler(_ workflow.Context, _ RenewNowRequest) (RenewNowResult, error) {
	s.renewNow = true
	return RenewNowResult{PeriodStart: s.in.PeriodStart}, nil
}

func periodKey(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (s *subscription) validateChangePlan(req ChangePlanRequest) error {
	switch {
	case req.Plan.Slug == "" || req.Plan.PriceCents < 0 || req.Plan.Credits < 0:
		return errors.New("plan slug, price and credits are required")
	case s.in.Checkout != nil:
		return errors.New("subscription has not started billing: subscribe again to change the plan of a checkout")
	case req.Plan.Slug == s.in.Plan.Slug:
		return fmt.Errorf("subscription is already on plan %s", req.Plan.Slug)
	case s.status == SubPastDue:
		return errors.New("subscription is in dunning: settle the payment first")
	case s.changing || s.renewing:
		return errors.New("a plan change or renewal is in progress; retry shortly")
	}
	return nil
}

// changePlan upgrades now, charging the prorated price difference for the
// rest of the period; a downgrade (or any change during a trial, which has
// nothing to prorate against) waits for the period end.
func (s *subscription) changePlan(ctx workflow.Context, req ChangePlanRequest) (ChangePlanResult, error) {
	if req.Plan.PriceCents <= s.in.Plan.PriceCents || s.status == SubTrialing {
		s.in.PendingPlan = &req.Plan
		s.sync(ctx)
		return ChangePlanResult{EffectiveAt: s.in.PeriodEnd}, nil
	}
	s.changing = true
	defer func() { s.changing = false }()
	res, err := s.upgrade(ctx, req.Plan)
	if err == nil {
		s.sync(ctx)
		err = s.searchable(ctx)
	}
	return res, err
}

func (s *subscription) upgrade(ctx workflow.Context, plan SubscriptionPlan) (ChangePlanResult, error) {
	now := workflow.Now(ctx)
	start := s.grantStart(now)
	remaining, total := s.in.PeriodEnd.Sub(now), s.in.PeriodEnd.Sub(s.in.PeriodStart)
	res := ChangePlanResult{EffectiveAt: now,
		AmountCents: prorate(plan.PriceCents-s.in.Plan.PriceCents, remaining, total),
		Credits:     int(prorate(int64(plan.Credits-s.in.Plan.Credits), remaining, total))}
	var paid activities.ChargeResult
	if res.AmountCents > 0 {
		key := s.in.SubscriptionID + "/upgrade/" + plan.Slug + "/" + periodKey(start)
		var err error
		if paid, err = s.charge(ctx, ChargeProration, start, res.AmountCents, key, plan.Slug); err != nil {
			return ChangePlanResult{}, fmt.Errorf("upgrade to %s: %w", plan.Slug, err)
		}
		res.PaymentIntentID = paid.PaymentIntentID
	}
	s.in.Plan, s.in.PendingPlan = plan, nil
	return res, s.grantCredits(ctx, plan.Slug, res.Credits, start, s.in.PeriodEnd, paid)
}

// grantStart keys a grant made now (an upgrade, a renewal by the billing
// team). Grants are unique per subscription and start second
// (store.PeriodReference), so the start must differ from every earlier
// grant of this run, the period's included.
func (s *subscription) grantStart(now time.Time) time.Time {
	start := now.Truncate(time.Second)
	floor := s.in.PeriodStart
	if s.lastGrant.After(floor) {
		floor = s.lastGrant
	}
	if !start.After(floor) {
		start = floor.Truncate(time.Second).Add(time.Second)
	}
	return start
}

// prorate scales an amount by remaining/total, rounded half up, at
// millisecond precision (int64 holds cents times a month of milliseconds).
func prorate(amount int64, remaining, total time.Duration) int64 {
	if amount <= 0 || remaining <= 0 || total <= 0 {
		return 0
	}
	r, t := min(remaining, total).Milliseconds(), total.Milliseconds()
	return (2*amount*r + t) / (2 * t)
}
