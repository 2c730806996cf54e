package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/webhook"
)

var (
	basicPlan = SubscriptionPlan{Slug: "basic", PriceCents: 1000, Credits: 100}
	proPlan   = SubscriptionPlan{Slug: "pro", PriceCents: 3000, Credits: 500}
	day       = 24 * time.Hour
)

// billingMock records charges and grants across runs; decline says whether
// the n-th charge (from 1) is declined.
type billingMock struct {
	testsuite.WorkflowTestSuite
	env     *testsuite.TestWorkflowEnvironment
	charges []activities.ChargeInput
	chargeT []time.Time
	paid    []string
	grants  []activities.GrantPeriodInput
	decline func(n int) bool

	syncs      []store.SubscriptionSync
	failures   []store.PaymentFailure
	notices    []string
	refunds    []string
	fallbacks  []activities.FallbackInput
	activated  []activities.ActivateInput
	stopped    []string
	successors []SubscriptionInput
	events     []activities.WebhookEventInput
}

func newBillingMock() *billingMock { return &billingMock{decline: func(int) bool { return false }} }

// newEnv starts a fresh environment for one run, at the given time.
func (b *billingMock) newEnv(start time.Time) *testsuite.TestWorkflowEnvironment {
	b.env = b.NewTestWorkflowEnvironment()
	b.env.SetStartTime(start)
	// The root runs under another name, so that only the successor a
	// fallback starts as a child ("Subscription") is mocked. The alias is
	// registered first: the last registration names the function.
	b.env.RegisterWorkflowWithOptions(Subscription, workflow.RegisterOptions{Name: "SubscriptionRoot"})
	b.env.RegisterWorkflow(Subscription)
	b.env.RegisterActivity(&activities.Billing{})
	b.env.RegisterActivity(&activities.Webhooks{})
	env := b.env
	env.OnActivity(webhookActivity.EmitWebhookEvent, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.WebhookEventInput) (activities.WebhookEventResult, error) {
			b.events = append(b.events, in)
			return activities.WebhookEventResult{}, nil
		})
	env.OnActivity(billingActivity.Charge, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ChargeInput) (activities.ChargeResult, error) {
			b.charges = append(b.charges, in)
			b.chargeT = append(b.chargeT, env.Now())
			n := len(b.charges)
			if b.decline(n) {
				return activities.ChargeResult{}, temporal.NewNonRetryableApplicationError("card declined",
					activities.TypeCardDeclined, nil, activities.DeclineDetails{PaymentIntentID: fmt.Sprintf("pi_d%d", n), Code: "card_declined"})
			}
			pi := fmt.Sprintf("pi_%d", n)
			b.paid = append(b.paid, pi)
			return activities.ChargeResult{PaymentIntentID: pi, AmountCents: in.AmountCents, Status: "succeeded"}, nil
		})
	env.OnActivity(billingActivity.SyncSubscription, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in store.SubscriptionSync) error {
			b.syncs = append(b.syncs, in)
			return nil
		})
	env.OnActivity(billingActivity.RecordPaymentFailure, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in store.PaymentFailure) error {
			b.failures = append(b.failures, in)
			return nil
		})
	env.OnActivity(billingActivity.Notify, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NoticeInput) error {
			b.notices = append(b.notices, in.Kind)
			return nil
		})
	env.OnActivity(billingActivity.Refund, mock.Anything, mock.Anything).Return(
		func(_ context.Context, pi string) (activities.RefundResult, error) {
			b.refunds = append(b.refunds, pi)
			return activities.RefundResult{ClawedBack: 10, First: true}, nil
		})
	env.OnActivity(billingActivity.RefundPart, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RefundInput) (activities.RefundResult, error) {
			b.refunds = append(b.refunds, fmt.Sprintf("%s/%d", in.PaymentIntentID, in.RefundedCents))
			return activities.RefundResult{ClawedBack: 5, First: true}, nil
		})
	env.OnActivity(billingActivity.Fallback, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FallbackInput) (string, error) {
			b.fallbacks = append(b.fallbacks, in)
			return "sub-free", nil
		})
	env.OnWorkflow("Subscription", mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in SubscriptionInput) (SubscriptionResult, error) {
			b.successors = append(b.successors, in)
			return SubscriptionResult{}, nil
		})
	env.OnRequestCancelExternalWorkflow(mock.Anything, mock.Anything, mock.Anything).Return(
		func(_, id, _ string) error {
			b.stopped = append(b.stopped, id)
			return nil
		})
	env.OnActivity(billingActivity.Activate, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ActivateInput) ([]string, error) {
			b.activated = append(b.activated, in)
			return []string{"sub-free"}, nil
		})
	env.OnActivity(billingActivity.GrantPeriod, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.GrantPeriodInput) (activities.GrantPeriodResult, error) {
			b.grants = append(b.grants, in)
			return activities.GrantPeriodResult{CreditID: "credit"}, nil
		})
	return env
}

// run executes one run; next is the continue-as-new input, or nil when the
// subscription ended with res.
func (b *billingMock) run(t *testing.T, in SubscriptionInput, start time.Time) (next *SubscriptionInput, res SubscriptionResult) {
	t.Helper()
	if b.env == nil {
		b.newEnv(start)
	}
	b.env.ExecuteWorkflow("SubscriptionRoot", in)
	defer func() { b.env = nil }()
	if !b.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	err := b.env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	if errors.As(err, &can) {
		var n SubscriptionInput
		if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &n); err != nil {
			t.Fatal(err)
		}
		return &n, res
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := b.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return nil, res
}

// checkMoney asserts every successful charge has exactly one grant with its
// payment intent, and no grant cites a payment that did not happen.
func (b *billingMock) checkMoney(t *testing.T) {
	t.Helper()
	seen := map[string]int{}
	for _, g := range b.grants {
		if g.PaymentIntentID != "" {
			seen[g.PaymentIntentID]++
		}
	}
	for _, pi := range b.paid {
		if seen[pi] != 1 {
			t.Errorf("payment %s has %d grants, want 1", pi, seen[pi])
		}
		delete(seen, pi)
	}
	if len(seen) != 0 {
		t.Errorf("grants cite unknown payments: %v", seen)
	}
}

func startedInput(start time.Time, plan SubscriptionPlan) SubscriptionInput {
	return SubscriptionInput{SubscriptionID: "sub-1", UserID: "user-1", CustomerID: "cus_1", Plan: plan,
		PeriodStart: start, PeriodEnd: addMonths(start, 1), Anchor: start, Started: true}
}

var updateSeq int

// update sends an update with a fresh id (the environment deduplicates ids,
// and these tests mean distinct requests) and stores its refusal or failure.
func update(env *testsuite.TestWorkflowEnvironment, name string, out *error, args ...any) {
	updateSeq++
	env.UpdateWorkflow(name, fmt.Sprintf("%s-%d", name, updateSeq), &testsuite.TestUpdateCallback{
		OnReject: func(err error) { *out = err }, OnAccept: func() {}, OnComplete: func(_ any, err error) {
			if err != nil {
				*out = err
			}
		}}, args...)
}

func TestSubscriptionThirteenMonths(t *testing.T) {
	b := newBillingMock()
	t0 := time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC)
	in := SubscriptionInput{SubscriptionID: "sub-1", UserID: "user-1", CustomerID: "cus_1", Plan: basicPlan,
		PeriodStart: t0, PeriodEnd: addMonths(t0, 1)}
	for i := range 12 {
		timers := 0
		b.newEnv(in.PeriodStart).SetOnTimerScheduledListener(func(string, time.Duration) { timers++ })
		next, _ := b.run(t, in, in.PeriodStart)
		if next == nil {
			t.Fatalf("run %d ended instead of continuing as new", i)
		}
		if timers != 1 || !next.PeriodStart.Equal(in.PeriodEnd) {
			t.Fatalf("run %d: %d timers, next period %v, want one timer and %v", i, timers, next.PeriodStart, in.PeriodEnd)
		}
		in = *next
	}
	if len(b.charges) != 13 || len(b.grants) != 13 {
		t.Fatalf("%d charges, %d grants, want 13 each (first period + 12 renewals)", len(b.charges), len(b.grants))
	}
	if want := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC); !in.PeriodStart.Equal(want) || !b.grants[1].PeriodEnd.Equal(time.Date(2025, 3, 31, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("period after 12 renewals starts %v, want %v; second period ends %v", in.PeriodStart, want, b.grants[1].PeriodEnd)
	}
	if key := b.charges[1].IdempotencyKey; key != "sub-1/2025-02-28T12:00:00Z" {
		t.Fatalf("renewal key %q", key)
	}
	b.checkMoney(t)
	// Each of the 12 renewals (not the first period) is one
	// subscription.renewed webhook, keyed by its period.
	ids := map[string]bool{}
	for i, ev := range b.events {
		d := subscriptionEvent(t, ev)
		if ev.Type != webhook.SubscriptionRenewed || ev.UserID != "user-1" || d.CreditsGranted != 100 ||
			d.AmountCents != 1000 || d.Subscription.Status != catalog.SubActive ||
			!d.Subscription.PeriodStart.Equal(b.grants[i+1].PeriodStart) {
			t.Fatalf("event %d: %+v %+v", i, ev, d)
		}
		ids[ev.ID] = true
	}
	if len(b.events) != 12 || len(ids) != 12 {
		t.Fatalf("%d renewal events, %d distinct ids; want 12", len(b.events), len(ids))
	}
}

func subscriptionEvent(t *testing.T, ev activities.WebhookEventInput) SubscriptionEventData {
	t.Helper()
	var d SubscriptionEventData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSubscriptionRecoversOnSecondDunningRetry(t *testing.T) {
	b := newBillingMock()
	b.decline = func(n int) bool { return n <= 2 }
	t0 := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	in := startedInput(t0, basicPlan)
	env := b.newEnv(t0)
	var renewErr error
	var mid SubscriptionState
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(StateQuery)
		if err != nil || v.Get(&mid) != nil {
			t.Errorf("state query: %v", err)
		}
		update(env, RenewNowUpdate, &renewErr, RenewNowRequest{PeriodStart: t0})
	}, 32*day)
	next, _ := b.run(t, in, t0)
	end := in.PeriodEnd
	if next == nil || !next.PeriodStart.Equal(end) || next.DunningAttempt != 0 {
		t.Fatalf("next = %+v, want the period from %v", next, end)
	}
	if len(b.charges) != 3 || !b.chargeT[0].Equal(end) || !b.chargeT[1].Equal(end.Add(day)) || !b.chargeT[2].Equal(end.Add(3*day)) {
		t.Fatalf("charges at %v, want period end +0, +1d, +3d", b.chargeT)
	}
	if b.charges[0].IdempotencyKey == b.charges[1].IdempotencyKey {
		t.Fatal("dunning retry reused the declined charge's idempotency key")
	}
	if mid.Status != catalog.SubPastDue || mid.DunningAttempt != 2 || !mid.NextChargeAt.Equal(end.Add(3*day)) || renewErr == nil {
		t.Fatalf("state during dunning = %+v, renew_now err %v", mid, renewErr)
	}
	if len(b.grants) != 1 || b.grants[0].PaymentIntentID != "pi_3" || !b.grants[0].PeriodStart.Equal(end) {
		t.Fatalf("grants = %+v", b.grants)
	}
	b.checkMoney(t)
}

func TestSubscriptionDowngradesAfterLastRetry(t *testing.T) {
	b := newBillingMock()
	b.decline = func(int) bool { return true }
	t0 := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	in := startedInput(t0, basicPlan)
	next, res := b.run(t, in, t0)
	if next != nil || res.Status != catalog.SubDowngraded || res.Reason == "" {
		t.Fatalf("next %v, result %+v, want downgraded", next, res)
	}
	if len(b.charges) != 4 || !b.chargeT[3].Equal(in.PeriodEnd.Add(7*day)) || len(b.grants) != 0 {
		t.Fatalf("%d charges (last at %v), %d grants", len(b.charges), b.chargeT, len(b.grants))
	}
	if len(res.Charges) != 4 || res.Charges[3].Status != ChargeDeclined || res.Charges[3].PaymentIntentID != "pi_d4" {
		t.Fatalf("charge history = %+v", res.Charges)
	}
	// Every declined attempt is a subscription.payment_failed webhook that
	// says when the next comes; the fourth is the last.
	if len(b.events) != 4 {
		t.Fatalf("events %+v, want 4 payment failures", b.events)
	}
	for i, ev := range b.events {
		d := subscriptionEvent(t, ev)
		last := i == 3
		if ev.Type != webhook.SubscriptionPaymentFailed || d.Attempt != i+1 || d.Code != "card_declined" ||
			d.AmountCents != 1000 || d.Final == nil || *d.Final != last || (d.NextRetryAt == nil) != last ||
			d.Subscription.Status != catalog.SubPastDue {
			t.Fatalf("event %d: %+v %+v", i+1, ev, d)
		}
		if !last && !d.NextRetryAt.Equal(in.PeriodEnd.Add(DunningSchedule[i])) {
			t.Fatalf("event %d: next retry at %v, want %v", i+1, d.NextRetryAt, in.PeriodEnd.Add(DunningSchedule[i]))
		}
	}
}

func TestSubscriptionCancelAtPeriodEnd(t *testing.T) {
	b := newBillingMock()
	t0 := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	env := b.newEnv(t0)
	var first, second error
	env.RegisterDelayedCallback(func() {
		update(env, CancelUpdate, &first)
		update(env, CancelUpdate, &second)
	}, 10*day)
	next, res := b.run(t, startedInput(t0, basicPlan), t0)
	if next != nil || res.Status != catalog.SubCanceled || len(b.charges) != 0 || len(b.grants) != 0 {
		t.Fatalf("result %+v, %d charges, %d grants", res, len(b.charges), len(b.grants))
	}
	if first != nil || second == nil {
		t.Fatalf("cancel errors %v, %v: want the second refused", first, second)
	}
}

func TestSubscriptionUpgradeProrates(t *testing.T) {
	b := newBillingMock()
	t0 := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC) // a 30-day period
	env := b.newEnv(t0)
	var first, again error
	env.RegisterDelayedCallback(func() {
		update(env, ChangePlanUpdate, &first, ChangePlanRequest{Plan: proPlan})
	}, 10*day)
	env.RegisterDelayedCallback(func() {
		update(env, ChangePlanUpdate, &again, ChangePlanRequest{Plan: proPlan})
	}, 11*day)
	next, _ := b.run(t, startedInput(t0, basicPlan), t0)
	if first != nil || again == nil || next == nil || next.Plan != proPlan {
		t.Fatalf("upgrade err %v, repeat err %v, next %+v", first, again, next)
	}
	// 2000 cents and 400 credits for 20 of 30 days: 1333.33 -> 1333, 266.67 -> 267.
	if len(b.charges) != 2 || b.charges[0].AmountCents != 1333 || b.charges[1].AmountCents != 3000 {
		t.Fatalf("charges = %+v", b.charges)
	}
	if len(b.grants) != 2 || b.grants[0].Credits != 267 || b.grants[0].PaymentIntentID != "pi_1" || b.grants[1].Credits != 500 {
		t.Fatalf("grants = %+v", b.grants)
	}
	b.checkMoney(t)
}

func TestSubscriptionRenewNowOnce(t *testing.T) {
	b := newBillingMock()
	t0 := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	env := b.newEnv(t0)
	var first, second error
	env.RegisterDelayedCallback(func() {
		update(env, RenewNowUpdate, &first, RenewNowRequest{PeriodStart: t0})
		update(env, RenewNowUpdate, &second, RenewNowRequest{PeriodStart: t0})
	}, 5*day)
	next, _ := b.run(t, startedInput(t0, basicPlan), t0)
	if first != nil || second == nil {
		t.Fatalf("renew_now errors %v, %v: want the second refused", first, second)
	}
	renewed := t0.Add(5 * day)
	if len(b.charges) != 1 || next == nil || !next.PeriodStart.Equal(renewed) || !next.PeriodEnd.Equal(addMonths(renewed, 1)) {
		t.Fatalf("%d charges, next %+v", len(b.charges), next)
	}
	b.checkMoney(t)
}

// A renewal that names no period, sent twice at once and again after the
// continue-as-new (a CLI run twice), renews once: the second is refused in
// the same run, the third by the cooldown. Naming the period renews it; a
// period already renewed stays refused; past the cooldown the current period
// renews again.
func TestSubscriptionRenewNowUnnamedOncePerPeriod(t *testing.T) {
	b := newBillingMock()
	t0 := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	env := b.newEnv(t0)
	var first, second error
	env.RegisterDelayedCallback(func() {
		update(env, RenewNowUpdate, &first, RenewNowRequest{})
		update(env, RenewNowUpdate, &second, RenewNowRequest{})
	}, 5*day)
	next, _ := b.run(t, startedInput(t0, basicPlan), t0)
	if first != nil || second == nil || next == nil || len(b.charges) != 1 {
		t.Fatalf("renew_now errors %v, %v; %d charges; next %+v: want one renewal", first, second, len(b.charges), next)
	}
	renewed := next.PeriodStart

	// The CLI run again a minute later: refused, the current period named.
	var again, stale, named error
	env = b.newEnv(renewed.Add(time.Minute))
	env.RegisterDelayedCallback(func() {
		update(env, RenewNowUpdate, &again, RenewNowRequest{})
		update(env, RenewNowUpdate, &stale, RenewNowRequest{PeriodStart: t0})
	}, time.Second)
	env.RegisterDelayedCallback(func() {
		update(env, RenewNowUpdate, &named, RenewNowRequest{PeriodStart: renewed})
	}, time.Minute)
	next, _ = b.run(t, *next, renewed.Add(time.Minute))
	if again == nil || !strings.Contains(again.Error(), periodKey(renewed)) {
		t.Fatalf("a second unnamed renewal within the cooldown: %v", again)
	}
	if stale == nil || !strings.Contains(stale.Error(), "already renewed") {
		t.Fatalf("a renewal of the period already renewed: %v", stale)
	}
	if named != nil || next == nil || len(b.charges) != 2 {
		t.Fatalf("naming the current period: %v; %d charges", named, len(b.charges))
	}

	// Past the cooldown an unnamed renewal renews the current period.
	var late error
	later := next.PeriodStart.Add(RenewCooldown + time.Minute)
	env = b.newEnv(later)
	env.RegisterDelayedCallback(func() { update(env, RenewNowUpdate, &late, RenewNowRequest{}) }, time.Second)
	if next, _ = b.run(t, *next, later); late != nil || next == nil || len(b.charges) != 3 {
		t.Fatalf("renewal after the cooldown: %v; %d charges", late, len(b.charges))
	}
	keys := map[string]bool{}
	for _, c := range b.charges {
		keys[c.IdempotencyKey] = true
	}
	if len(keys) != 3 {
		t.Fatalf("charge keys %v: want one per period", keys)
	}
	b.checkMoney(t)
}

func TestSubscriptionTrialGrantsThenChargesAtTrialEnd(t *testing.T) {
	b := newBillingMock()
	t0 := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	trialEnd := t0.Add(14 * day)
	in := SubscriptionInput{SubscriptionID: "sub-1", UserID: "user-1", CustomerID: "cus_1", Plan: basicPlan,
		PeriodStart: t0, PeriodEnd: trialEnd, TrialEnd: trialEnd}
	next, _ := b.run(t, in, t0)
	if len(b.grants) != 2 || b.grants[0].PaymentIntentID != "" || !b.grants[0].PeriodEnd.Equal(trialEnd) {
		t.Fatalf("grants = %+v", b.grants)
	}
	if len(b.charges) != 1 || !b.chargeT[0].Equal(trialEnd) || next == nil || !next.PeriodEnd.Equal(addMonths(trialEnd, 1)) {
		t.Fatalf("charges at %v, next %+v", b.chargeT, next)
	}
	b.checkMoney(t)
}

var freePlan = SubscriptionPlan{Slug: "free", Credits: 50}

// A subscription whose card keeps failing is downgraded: every failed
// attempt is recorded, the user is told, and a free subscription takes over.
func TestDowngradeFallsBackToFree(t *testing.T) {
	b := newBillingMock()
	b.decline = func(int) bool { return true }
	start := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	in := startedInput(start, proPlan)
	in.FallbackPlan = &freePlan
	next, res := b.run(t, in, start)
	if next != nil || res.Status != catalog.SubDowngraded || res.Successor != "sub-free" {
		t.Fatalf("next %v, result %+v", next, res)
	}
	if len(b.failures) != 4 || b.failures[0].IdempotencyKey == b.failures[1].IdempotencyKey {
		t.Fatalf("failures = %+v", b.failures)
	}
	if fmt.Sprint(b.notices) != "[payment_failed downgraded]" {
		t.Fatalf("notices = %v", b.notices)
	}
	if len(b.fallbacks) != 1 || b.fallbacks[0].Status != catalog.SubDowngraded || b.fallbacks[0].FreePlan != "free" {
		t.Fatalf("fallbacks = %+v", b.fallbacks)
	}
	if len(b.successors) != 1 || b.successors[0].SubscriptionID != "sub-free" || b.successors[0].Plan != freePlan {
		t.Fatalf("successor = %+v", b.successors)
	}
	if last := b.syncs[len(b.syncs)-1]; last.Status != catalog.SubPastDue {
		t.Fatalf("last sync = %+v, want past_due before the fallback", last)
	}
	if len(b.grants) != 0 {
		t.Fatalf("grants without payment: %+v", b.grants)
	}
}

// Stripe events arrive while the workflow sleeps: a refund is applied at
// once, a deleted customer ends the subscription without another charge.
func TestStripeEventsApplied(t *testing.T) {
	b := newBillingMock()
	start := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	env := b.newEnv(start)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(StripeEventSignal, StripeEvent{ID: "evt_1", Type: EventChargeRefunded, PaymentIntentID: "pi_0"})
	}, day)
	env.RegisterDelayedCallback(func() {
		// A partial refund names how much of the charge is refunded in all.
		env.SignalWorkflow(StripeEventSignal, StripeEvent{ID: "evt_p", Type: EventChargeRefunded, PaymentIntentID: "pi_1", RefundedCents: 250})
	}, day+time.Hour)
	env.RegisterDelayedCallback(func() {
		if len(b.refunds) != 2 {
			t.Errorf("refunds not applied before the next event: %v", b.refunds)
		}
		env.SignalWorkflow(StripeEventSignal, StripeEvent{ID: "evt_2", Type: EventCustomerDeleted})
	}, 2*day)
	in := startedInput(start, proPlan)
	in.FallbackPlan = &freePlan
	next, res := b.run(t, in, start)
	if next != nil || res.Status != catalog.SubCanceled || res.Reason != "Stripe customer deleted" {
		t.Fatalf("next %v, result %+v", next, res)
	}
	if len(b.charges) != 0 || fmt.Sprint(b.refunds) != "[pi_0 pi_1/250]" {
		t.Fatalf("charges %v, refunds %v", b.charges, b.refunds)
	}
	if len(b.successors) != 1 || b.successors[0].CustomerID != "" {
		t.Fatalf("successor = %+v", b.successors)
	}
}

// Cancel on the free plan is refused: there is nothing to stop paying for.
func TestFreePlanCannotCancel(t *testing.T) {
	b := newBillingMock()
	start := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	env := b.newEnv(start)
	var refused error
	env.RegisterDelayedCallback(func() { update(env, CancelUpdate, &refused) }, time.Hour)
	in := startedInput(start, freePlan)
	in.FallbackPlan = &freePlan
	next, _ := b.run(t, in, start)
	if refused == nil || next == nil {
		t.Fatalf("cancel of free: %v (next %v)", refused, next)
	}
	if len(b.grants) != 1 || b.grants[0].Credits != 50 || b.grants[0].PaymentIntentID != "" {
		t.Fatalf("free renewal grants = %+v", b.grants)
	}
}

func checkoutInput(start time.Time) SubscriptionInput {
	return SubscriptionInput{SubscriptionID: "sub-1", UserID: "user-1", CustomerID: "cus_1", Plan: basicPlan,
		PeriodStart: start, PeriodEnd: addMonths(start, 1), FallbackPlan: &SubscriptionPlan{Slug: "free", Credits: 50},
		Checkout: &Checkout{Replaces: "sub-free", ExpiresAt: start.Add(CheckoutTTL)}}
}

// lastSync is the last state the workflow wrote to its row.
func (b *billingMock) lastSync(t *testing.T) store.SubscriptionSync {
	t.Helper()
	if len(b.syncs) == 0 {
		t.Fatal("the workflow never wrote its row")
	}
	return b.syncs[len(b.syncs)-1]
}

// A checkout without a card expires after CheckoutTTL: nothing charged, no
// free successor (the free subscription never stopped).
func TestCheckoutExpiresWithoutCard(t *testing.T) {
	b := newBillingMock()
	t0 := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	next, res := b.run(t, checkoutInput(t0), t0)
	if next != nil || res.Status != catalog.SubExpired || len(b.charges) != 0 || len(b.grants) != 0 || len(b.activated) != 0 {
		t.Fatalf("result %+v, next %+v, %d charges, %d grants, %d activations", res, next, len(b.charges), len(b.grants), len(b.activated))
	}
	if last := b.lastSync(t); last.Status != catalog.SubExpired || !last.Ended || len(b.fallbacks) != 0 || len(b.successors) != 0 {
		t.Fatalf("last sync %+v, fallbacks %v, successors %v", last, b.fallbacks, b.successors)
	}
	if !res.EndedAt.Equal(t0.Add(CheckoutTTL)) {
		t.Fatalf("expired at %v, want %v", res.EndedAt, t0.Add(CheckoutTTL))
	}
}

// A checkout abandoned before its card ends at once; one whose card comes
// is charged, then put in effect (ending the free subscription), then
// granted, and continues as an ordinary subscription.
func TestCheckoutAbandonedOrPaid(t *testing.T) {
	b := newBillingMock()
	t0 := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	env := b.newEnv(t0)
	var cancelErr, resumeErr, renewErr error
	env.RegisterDelayedCallback(func() {
		update(env, ResumeUpdate, &resumeErr)
		update(env, RenewNowUpdate, &renewErr, RenewNowRequest{})
		update(env, CancelUpdate, &cancelErr)
	}, time.Hour)
	next, res := b.run(t, checkoutInput(t0), t0)
	if cancelErr != nil || resumeErr == nil || renewErr == nil || next != nil || res.Status != catalog.SubCanceled || len(b.charges) != 0 {
		t.Fatalf("abandon: cancel %v, resume %v, renew %v; result %+v, %d charges", cancelErr, resumeErr, renewErr, res, len(b.charges))
	}
	if last := b.lastSync(t); last.Status != catalog.SubCanceled || !last.Ended || len(b.successors) != 0 {
		t.Fatalf("abandoned checkout: last sync %+v, successors %v", last, b.successors)
	}

	b = newBillingMock()
	env = b.newEnv(t0)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(CardReadySignal, nil) }, time.Hour)
	next, _ = b.run(t, checkoutInput(t0), t0)
	// The first period, then the renewal at its end.
	if len(b.charges) != 2 || len(b.activated) != 1 || b.activated[0].Status != catalog.SubActive || len(b.grants) != 2 {
		t.Fatalf("paid checkout: %d charges, activations %+v, %d grants", len(b.charges), b.activated, len(b.grants))
	}
	if next == nil || next.Checkout != nil || !next.Started {
		t.Fatalf("after the first charge the subscription is in effect: next %+v", next)
	}
	if len(b.stopped) != 1 || b.stopped[0] != SubscriptionID("sub-free") {
		t.Fatalf("stopped workflows %v: want the replaced free one", b.stopped)
	}
	b.checkMoney(t)
}

// A declined first charge leaves the checkout incomplete (the free plan in
// effect) through dunning; abandoning it then ends it without a charge more
// and without a downgrade.
func TestCheckoutDeclinedThenAbandoned(t *testing.T) {
	b := newBillingMock()
	b.decline = func(int) bool { return true }
	t0 := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	in := checkoutInput(t0)
	in.Checkout.CardReady = true
	env := b.newEnv(t0)
	var mid SubscriptionState
	var cancelErr error
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(StateQuery)
		if err == nil {
			err = v.Get(&mid)
		}
		if err != nil {
			t.Error(err)
		}
		update(env, CancelUpdate, &cancelErr)
	}, 2*day)
	next, res := b.run(t, in, t0)
	if mid.Status != catalog.SubIncomplete || mid.DunningAttempt != 2 { // declined at once and after a day
		t.Fatalf("state during the first charge's dunning = %+v", mid)
	}
	if cancelErr != nil || next != nil || res.Status != catalog.SubCanceled || len(b.charges) != 2 || len(b.activated) != 0 {
		t.Fatalf("cancel %v; result %+v; %d charges; activations %v", cancelErr, res, len(b.charges), b.activated)
	}
	for _, sy := range b.syncs {
		if sy.Status == catalog.SubPastDue {
			t.Fatalf("a checkout was written past due: %+v", sy)
		}
	}
	if len(b.notices) != 1 || b.notices[0] != store.NoticePaymentFailed || len(b.successors) != 0 {
		t.Fatalf("notices %v, successors %v: want one payment_failed and no downgrade", b.notices, b.successors)
	}
}

// A phase's String is the status the row and the state query show.
func TestSubscriptionPhaseStatus(t *testing.T) {
	want := map[subscriptionPhase]string{phaseIncomplete: catalog.SubIncomplete, phaseTrialing: catalog.SubTrialing,
		phaseActive: catalog.SubActive, phasePastDue: catalog.SubPastDue, phaseCanceled: catalog.SubCanceled,
		phaseExpired: catalog.SubExpired, phaseDowngraded: catalog.SubDowngraded}
	if len(want) != len(phaseStatuses) {
		t.Fatalf("%d phases tested, %d defined", len(want), len(phaseStatuses))
	}
	for p, status := range want {
		if p.String() != status {
			t.Errorf("phase %d is %q, want %q", int(p), p.String(), status)
		}
	}
	if got := subscriptionPhase(len(phaseStatuses)).String(); got != "subscriptionPhase(7)" {
		t.Errorf("an unknown phase is %q", got)
	}
}

// A run's first phase follows from its input: a checkout, then dunning,
// then a trial covering the period.
func TestSubscriptionInitialPhase(t *testing.T) {
	t0 := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	trial := SubscriptionInput{PeriodStart: t0, PeriodEnd: t0.Add(14 * day), TrialEnd: t0.Add(14 * day)}
	tests := []struct {
		name string
		in   SubscriptionInput
		want subscriptionPhase
	}{
		{"a new subscription", startedInput(t0, basicPlan), phaseActive},
		{"a checkout", checkoutInput(t0), phaseIncomplete},
		{"in dunning", SubscriptionInput{PeriodStart: t0, PeriodEnd: addMonths(t0, 1), DunningAttempt: 1}, phasePastDue},
		{"a trial", trial, phaseTrialing},
		{"a trial longer than the period", SubscriptionInput{PeriodStart: t0, PeriodEnd: t0.Add(day), TrialEnd: t0.Add(14 * day)}, phaseActive},
		{"a checkout with a trial", SubscriptionInput{PeriodStart: t0, PeriodEnd: trial.PeriodEnd, TrialEnd: trial.TrialEnd, Checkout: &Checkout{}}, phaseIncomplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := initialPhase(tt.in); got != tt.want {
				t.Fatalf("initialPhase = %v, want %v", got, tt.want)
			}
		})
	}
}

// A payload written while SubscriptionInput had a Synced field (always
// true in production) still decodes, so running subscriptions continue.
func TestSubscriptionInputDecodesOldPayload(t *testing.T) {
	dc := converter.GetDefaultDataConverter()
	p, err := dc.ToPayload(map[string]any{"SubscriptionID": "sub-1", "Plan": basicPlan, "Started": true, "Synced": true})
	if err != nil {
		t.Fatal(err)
	}
	var in SubscriptionInput
	if err := dc.FromPayload(p, &in); err != nil {
		t.Fatal(err)
	}
	if in.SubscriptionID != "sub-1" || in.Plan != basicPlan || !in.Started {
		t.Fatalf("decoded %+v", in)
	}
}

// A downgrade waits for the period end; changing back to the plan in
// effect before then withdraws it, charging and granting nothing, and the
// next period renews the plan kept. With no change waiting, the plan in
// effect is refused.
func TestSubscriptionDowngradeWithdrawn(t *testing.T) {
	b := newBillingMock()
	t0 := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	env := b.newEnv(t0)
	var down, stay, again error
	var pendingAfterDown, pendingAfterStay string
	env.RegisterDelayedCallback(func() {
		update(env, ChangePlanUpdate, &down, ChangePlanRequest{Plan: basicPlan})
	}, 10*day)
	env.RegisterDelayedCallback(func() {
		pendingAfterDown = pendingPlan(t, env)
		update(env, ChangePlanUpdate, &stay, ChangePlanRequest{Plan: proPlan})
	}, 11*day)
	env.RegisterDelayedCallback(func() {
		pendingAfterStay = pendingPlan(t, env)
		update(env, ChangePlanUpdate, &again, ChangePlanRequest{Plan: proPlan})
	}, 12*day)
	next, _ := b.run(t, startedInput(t0, proPlan), t0)
	if down != nil || stay != nil || again == nil || pendingAfterDown != "basic" || pendingAfterStay != "" {
		t.Fatalf("downgrade %v, back %v, repeat %v; pending after the downgrade %q, after going back %q",
			down, stay, again, pendingAfterDown, pendingAfterStay)
	}
	if next == nil || next.Plan != proPlan || next.PendingPlan != nil {
		t.Fatalf("next period %+v, want pro with nothing waiting", next)
	}
	if len(b.charges) != 1 || b.charges[0].AmountCents != proPlan.PriceCents {
		t.Fatalf("charges = %+v, want only the renewal at the pro price", b.charges)
	}
	b.checkMoney(t)
}

// pendingPlan is the slug of the change waiting, by the state query.
func pendingPlan(t *testing.T, env *testsuite.TestWorkflowEnvironment) string {
	var st SubscriptionState
	v, err := env.QueryWorkflow(StateQuery)
	if err != nil || v.Get(&st) != nil {
		t.Errorf("state query: %v", err)
	}
	return PlanSlug(st.PendingPlan)
}
