package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/workflows"
)

// When a previewed plan change takes effect.
const (
	// ChangeNow is an upgrade: charged the prorated difference now.
	ChangeNow = "now"
	// ChangeAtPeriodEnd is a downgrade (or a change during a trial): nothing
	// is charged now, the new plan starts with the next period.
	ChangeAtPeriodEnd = "period_end"
	// ChangeCheckout replaces an open checkout: the new plan's first month
	// is charged when the card is saved, and nothing before.
	ChangeCheckout = "checkout"
)

// PlanChangePreview is what POST /v1/subscription/change would do if sent
// now: the same arithmetic as the subscription workflow
// (workflows.QuotePlanChange), on the period its state query reports.
type PlanChangePreview struct {
	Plan              string    `json:"plan"`
	NewPlan           string    `json:"new_plan"`
	When              string    `json:"when"`
	EffectiveAt       time.Time `json:"effective_at"`
	ChargeCents       int64     `json:"charge_cents"`
	CreditsAdded      int       `json:"credits_added"`
	NewPriceCents     int64     `json:"new_price_cents"`
	NewMonthlyCredits int       `json:"new_monthly_credits"`
	PeriodStart       time.Time `json:"current_period_start"`
	PeriodEnd         time.Time `json:"current_period_end"`
	QuotedAt          time.Time `json:"quoted_at"`
}

// previewPlanChange answers POST /v1/subscription/change/preview: the
// change's price, and when it takes effect, without changing anything. It
// refuses what the change itself would refuse, with the same problems.
func (s *Server) previewPlanChange(c *gin.Context) {
	var req ChangePlanRequest
	if !s.decodeJSON(c, &req) {
		return
	}
	plan, ok := s.planForRequest(c, req.Plan)
	if !ok {
		return
	}
	open, ok := s.openCheckout(c)
	if !ok {
		return
	}
	now := time.Now().UTC()
	preview := PlanChangePreview{NewPlan: plan.Slug, NewPriceCents: plan.PriceCents, NewMonthlyCredits: plan.Credits, QuotedAt: now}
	if open.ID != "" && plan.PriceCents > 0 {
		preview.Plan, preview.When, preview.EffectiveAt = open.Plan, ChangeCheckout, now
		preview.ChargeCents, preview.CreditsAdded = plan.PriceCents, plan.Credits
		preview.PeriodStart, preview.PeriodEnd = open.PeriodStart, open.PeriodEnd
		c.JSON(http.StatusOK, preview)
		return
	}
	sub, ok := s.liveSubscription(c)
	if !ok || refuseFreeChange(c, sub) {
		return
	}
	st, err := s.subscriptionState(c.Request.Context(), sub.ID)
	if err != nil {
		s.answerUpdateError(c, err)
		return
	}
	switch {
	case st.Plan.Slug == plan.Slug:
		problem(c, http.StatusConflict, "subscription-conflict", "Not possible now", "subscription is already on plan "+plan.Slug, nil)
		return
	case st.Status == catalog.SubPastDue:
		problem(c, http.StatusConflict, "subscription-conflict", "Not possible now", "subscription is in dunning: settle the payment first", nil)
		return
	}
	q := workflows.QuotePlanChange(st.Plan, plan, st.Status == catalog.SubTrialing, st.PeriodStart, st.PeriodEnd, now)
	preview.Plan, preview.EffectiveAt, preview.ChargeCents, preview.CreditsAdded = st.Plan.Slug, q.EffectiveAt, q.AmountCents, q.Credits
	preview.PeriodStart, preview.PeriodEnd = st.PeriodStart, st.PeriodEnd
	preview.When = ChangeAtPeriodEnd
	if q.Upgrade {
		preview.When = ChangeNow
	}
	c.JSON(http.StatusOK, preview)
}

// refuseFreeChange answers 409 for a plan change of the free plan, which
// has no card to charge: the person subscribes instead.
func refuseFreeChange(c *gin.Context, sub store.Subscription) bool {
	if sub.Plan != store.FreePlan {
		return false
	}
	problem(c, http.StatusConflict, "subscribe-first", "Subscribe first",
		"the free plan has no card on file; subscribe with POST /v1/subscriptions", nil)
	return true
}
