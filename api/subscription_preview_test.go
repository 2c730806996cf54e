package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
)

// TestPlanChangePreview: before confirming a plan change a person sees its
// price, computed as the subscription workflow computes it: an upgrade is
// charged the prorated difference now (and the change then charges no
// more than the preview said, a moment later), a downgrade costs nothing
// until the period end, an open checkout is replaced at the full price;
// what the change would refuse the preview refuses the same way, and it
// changes nothing.
func TestPlanChangePreview(t *testing.T) {
	s := newStackWith(t, time.Millisecond, stackOptions{billing: true})
	uid, token := s.signIn(t)
	preview := func(plan string) (api.PlanChangePreview, response) {
		t.Helper()
		r := s.do(t, http.MethodPost, "/v1/subscription/change/preview", token, map[string]any{"plan": plan})
		var p api.PlanChangePreview
		if r.status == http.StatusOK {
			r.decode(t, &p)
		}
		return p, r
	}

	// The free plan has no card: subscribe first, as the change says.
	if _, r := preview("pro"); r.status != http.StatusConflict {
		t.Fatalf("preview on the free plan: %d %s", r.status, r.body)
	}
	// With a checkout open, a paid plan replaces it: its full first month.
	if r := s.do(t, http.MethodPost, "/v1/subscriptions", token, map[string]any{"plan": "basic"}); r.status != http.StatusCreated {
		t.Fatalf("checkout: %d %s", r.status, r.body)
	}
	if p, r := preview("pro"); r.status != http.StatusOK || p.When != api.ChangeCheckout || p.ChargeCents != 2999 ||
		p.CreditsAdded != 2000 || p.Plan != "basic" || p.NewPlan != "pro" {
		t.Fatalf("preview with a checkout open: %d %s", r.status, r.body)
	}

	// Basic, paid with the test card.
	if r := s.do(t, http.MethodPost, "/v1/subscriptions", token, map[string]any{"plan": "basic", "payment_method": "pm_card_visa"}); r.status != http.StatusOK {
		t.Fatalf("subscribe with card: %d %s", r.status, r.body)
	}
	var sub api.SubscriptionView
	waitFor(t, "basic active", func() bool {
		sub, _ = s.subscription(t, token)
		return sub.Plan == "basic" && sub.Status == catalog.SubActive
	})
	waitFor(t, "basic's credits (and the free month's 50)", func() bool { return s.available(t, uid) == 550 })
	charges := s.stripe.Charges()

	// An upgrade: the price difference (29.99 - 9.99) and the extra credits
	// (2000 - 500), prorated over what is left of the period.
	up, r := preview("pro")
	left := float64(sub.PeriodEnd.Sub(up.QuotedAt)) / float64(sub.PeriodEnd.Sub(sub.PeriodStart))
	if r.status != http.StatusOK || up.When != api.ChangeNow || up.Plan != "basic" || up.NewPlan != "pro" ||
		up.NewPriceCents != 2999 || up.NewMonthlyCredits != 2000 || !up.PeriodEnd.Equal(sub.PeriodEnd) ||
		!up.EffectiveAt.Equal(up.QuotedAt) {
		t.Fatalf("upgrade preview: %d %s", r.status, r.body)
	}
	if want := int64(2000*left + 0.5); up.ChargeCents < want-1 || up.ChargeCents > want+1 {
		t.Fatalf("upgrade preview charges %d cents, want about %d (%.4f of the period left)", up.ChargeCents, want, left)
	}
	if want := int(1500*left + 0.5); up.CreditsAdded < want-1 || up.CreditsAdded > want+1 {
		t.Fatalf("upgrade preview adds %d credits, want about %d", up.CreditsAdded, want)
	}
	// A preview changes nothing.
	if now, _ := s.subscription(t, token); now.Plan != "basic" || s.stripe.Charges() != charges || s.available(t, uid) != 550 {
		t.Fatalf("after a preview: plan %s, %d charges, %d credits", now.Plan, s.stripe.Charges(), s.available(t, uid))
	}
	// The change itself, a moment later, charges at most what was shown.
	r = s.do(t, http.MethodPost, "/v1/subscription/change", token, map[string]any{"plan": "pro"})
	var change struct {
		Charged int64 `json:"charged_cents"`
		Credits int   `json:"credits_added"`
	}
	r.decode(t, &change)
	if r.status != http.StatusOK || change.Charged > up.ChargeCents || change.Charged < up.ChargeCents-1 ||
		change.Credits > up.CreditsAdded || change.Credits < up.CreditsAdded-1 {
		t.Fatalf("upgrade after a preview of %d cents, %d credits: %d %s", up.ChargeCents, up.CreditsAdded, r.status, r.body)
	}

	// A downgrade waits for the period end and costs nothing now.
	down, r := preview("basic")
	if r.status != http.StatusOK || down.When != api.ChangeAtPeriodEnd || down.ChargeCents != 0 || down.CreditsAdded != 0 ||
		!down.EffectiveAt.Equal(sub.PeriodEnd) || down.Plan != "pro" {
		t.Fatalf("downgrade preview: %d %s", r.status, r.body)
	}
	// Refused like the change: the plan in effect, an unknown plan.
	if _, r := preview("pro"); r.status != http.StatusConflict {
		t.Fatalf("preview of the plan in effect: %d %s", r.status, r.body)
	}
	if p := expectProblem(t, s.do(t, http.MethodPost, "/v1/subscription/change/preview", token, map[string]any{"plan": "gold"}),
		http.StatusBadRequest); len(p.Errors) == 0 || p.Errors[0].Field != "plan" {
		t.Fatalf("unknown plan: %+v", p)
	}
	s.checkMoney(t, uid)
}
