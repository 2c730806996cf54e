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
	// ChangeWithdraw is a change back to the plan in effect while another
	// waits for the period end: the waiting change is withdrawn, nothing is
	// charged, and the plan carries on.
	ChangeWithdraw = "withdraw"
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
	plan, open, sub, ok := s.planChangeTarget(c)
	if !ok {
		return
	}
	now := time.Now().UTC()
	preview := PlanChangePreview{NewPlan: plan.Slug, NewPriceCents: plan.PriceCents, NewMonthlyCredits: plan.Credits, QuotedAt: now}
	if open.ID != "" {
		preview.Plan, preview.When, preview.EffectiveAt = open.Plan, ChangeCheckout, now
		preview.ChargeCents, preview.CreditsAdded = plan.PriceCents, plan.Credits
		preview.PeriodStart, preview.PeriodEnd = open.PeriodStart, open.PeriodEnd
		c.JSON(http.StatusOK, preview)
		return
	}
	st, err := s.subscriptionState(c.Request.Context(), sub.ID)
	if err != nil {
		s.answerUpdateError(c, err)
		return
	}
	if err := workflows.PlanChangeConflict(st.Plan.Slug, workflows.PlanSlug(st.PendingPlan), st.Status == catalog.SubPastDue, plan); err != nil {
		problem(c, http.StatusConflict, "subscription-conflict", "Not possible now", err.Error(), nil)
		return
	}
	preview.PeriodStart, preview.PeriodEnd = st.PeriodStart, st.PeriodEnd
	if plan.Slug == st.Plan.Slug {
		// Staying: the waiting change is withdrawn, nothing is charged.
		preview.Plan, preview.When, preview.EffectiveAt = st.Plan.Slug, ChangeWithdraw, now
		c.JSON(http.StatusOK, preview)
		return
	}
	q := workflows.QuotePlanChange(st.Plan, plan, st.Status == catalog.SubTrialing, st.PeriodStart, st.PeriodEnd, now)
	preview.Plan, preview.EffectiveAt, preview.ChargeCents, preview.CreditsAdded = st.Plan.Slug, q.EffectiveAt, q.AmountCents, q.Credits
	preview.When = ChangeAtPeriodEnd
	if q.Upgrade {
		preview.When = ChangeNow
	}
	c.JSON(http.StatusOK, preview)
}

// planChangeTarget reads a plan change request and what it applies to: an
// open checkout that a paid plan replaces (open.ID set), else the live
// subscription. It answers the refusals the change and its preview share.
func (s *Server) planChangeTarget(c *gin.Context) (plan workflows.SubscriptionPlan, open, sub store.Subscription, ok bool) {
	var req ChangePlanRequest
	if !s.decodeJSON(c, &req) {
		return plan, open, sub, false
	}
	if plan, ok = s.planForRequest(c, req.Plan); !ok {
		return plan, open, sub, false
	}
	if open, ok = s.openCheckout(c); !ok {
		return plan, open, sub, false
	}
	if open.ID != "" && plan.PriceCents > 0 {
		return plan, open, sub, true
	}
	open = store.Subscription{}
	if sub, ok = s.liveSubscription(c); !ok || refuseFreeChange(c, sub) {
		return plan, open, sub, false
	}
	return plan, open, sub, true
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
