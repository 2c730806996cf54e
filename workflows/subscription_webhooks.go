package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/webhook"
)

// SubscriptionEventData is the data of subscription.renewed and
// subscription.payment_failed.
type SubscriptionEventData struct {
	Subscription SubscriptionEventView `json:"subscription"`
	// Renewed: the period's credits granted, and what was charged for it.
	CreditsGranted int    `json:"credits_granted,omitempty"`
	AmountCents    int64  `json:"amount_cents"`
	Currency       string `json:"currency"`
	// Payment failed: which attempt at the period this was, the card's
	// decline code, when the next attempt comes (null: none will, the
	// subscription ends), and whether this was the last.
	Attempt     int        `json:"attempt,omitempty"`
	Code        string     `json:"code,omitempty"`
	NextRetryAt *time.Time `json:"next_retry_at,omitempty"`
	Final       *bool      `json:"final,omitempty"`
}

// SubscriptionEventView is the subscription an event is about.
type SubscriptionEventView struct {
	ID          string    `json:"id"`
	Plan        string    `json:"plan"`
	Status      string    `json:"status"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
}

// webhooksVersion marks where the subscription workflow began emitting
// webhooks: a run already waiting in dunning when this code was deployed
// replays its history without them (workflow.GetVersion), so the change
// never breaks a run in flight.
const webhooksVersion = "subscription-webhooks"

// emitsWebhooks says whether this run emits webhooks.
func emitsWebhooks(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, webhooksVersion, workflow.DefaultVersion, 1) >= 1
}

func (s *subscription) eventView() SubscriptionEventView {
	return SubscriptionEventView{ID: s.in.SubscriptionID, Plan: s.in.Plan.Slug, Status: s.phase.String(),
		PeriodStart: s.in.PeriodStart.UTC(), PeriodEnd: s.in.PeriodEnd.UTC()}
}

// emitRenewed tells the user's webhooks that a period was paid (or, on a
// free plan, began) and its credits granted. The period's start keys it.
func (s *subscription) emitRenewed(ctx workflow.Context, plan SubscriptionPlan, paid activities.ChargeResult) {
	if !emitsWebhooks(ctx) {
		return
	}
	data := SubscriptionEventData{Subscription: s.eventView(), CreditsGranted: plan.Credits,
		AmountCents: paid.AmountCents, Currency: subscriptionCharge}
	emit(ctx, webhook.SubscriptionRenewed, s.in.SubscriptionID+"/"+s.in.PeriodStart.UTC().Format(time.RFC3339),
		s.in.UserID, data, nil)
}

// emitPaymentFailed tells the user's webhooks about a failed charge; the
// attempt's idempotency key keys it, so each attempt is one event.
func (s *subscription) emitPaymentFailed(ctx workflow.Context, key string, last ChargeRecord) {
	if !emitsWebhooks(ctx) {
		return
	}
	final := s.in.DunningAttempt > len(DunningSchedule)
	data := SubscriptionEventData{Subscription: s.eventView(), AmountCents: last.AmountCents,
		Currency: subscriptionCharge, Attempt: s.in.DunningAttempt, Code: last.Code, Final: &final}
	if !final {
		next := s.nextRetryAt().UTC()
		data.NextRetryAt = &next
	}
	emit(ctx, webhook.SubscriptionPaymentFailed, key, s.in.UserID, data, nil)
}
