package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76/webhook"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/oidc"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/workflows"
)

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *stack) subscription(t *testing.T, token string) (api.SubscriptionView, int) {
	t.Helper()
	r := s.do(t, http.MethodGet, "/v1/subscription", token, nil)
	var v api.SubscriptionView
	if r.status == http.StatusOK {
		r.decode(t, &v)
	}
	return v, r.status
}

func (s *stack) available(t *testing.T, userID string) int {
	t.Helper()
	b, err := s.store.Balance(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return b.Available
}

// signedEvent builds a Stripe event and its Stripe-Signature header.
func signedEvent(t *testing.T, secret, id, typ string, object map[string]any, at time.Time) ([]byte, string) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "api_version": "2023-10-16",
		"created": at.Unix(), "data": map[string]any{"object": object}})
	if err != nil {
		t.Fatal(err)
	}
	sig := webhook.ComputeSignature(at, body, secret)
	return body, fmt.Sprintf("t=%d,v1=%x", at.Unix(), sig)
}

func (s *stack) webhook(t *testing.T, body []byte, sig string) response {
	t.Helper()
	return s.do(t, http.MethodPost, "/v1/webhooks/stripe", "", body, "Stripe-Signature", sig)
}

// checkMoney asserts the ledger balances: every credit the transaction log
// granted (less clawbacks) is available, consumed or held; and every
// payment bought exactly one grant.
func (s *stack) checkMoney(t *testing.T, userID string) {
	t.Helper()
	ctx := context.Background()
	var logged, consumed, held, available int
	err := s.store.Pool().QueryRow(ctx, `SELECT
		(SELECT COALESCE(sum(amount), 0) FROM credit_transactions WHERE user_id = $1 AND transaction_type IN ('grant', 'clawback')),
		(SELECT COALESCE(sum(used_credits), 0) FROM credits WHERE user_id = $1),
		(SELECT COALESCE(sum(amount), 0) FROM credit_holds WHERE user_id = $1 AND status = 'pending'),
		(SELECT COALESCE(sum(total_credits - used_credits), 0) FROM credits WHERE user_id = $1) -
		(SELECT COALESCE(sum(amount), 0) FROM credit_holds WHERE user_id = $1 AND status = 'pending')`,
		userID).Scan(&logged, &consumed, &held, &available)
	if err != nil {
		t.Fatal(err)
	}
	if logged != available+consumed+held {
		t.Errorf("ledger: granted %d != available %d + consumed %d + held %d", logged, available, consumed, held)
	}
	var payments, grants, distinct int
	err = s.store.Pool().QueryRow(ctx, `SELECT count(*), count(credit_id), count(DISTINCT credit_id)
		FROM payments WHERE user_id = $1`, userID).Scan(&payments, &grants, &distinct)
	if err != nil {
		t.Fatal(err)
	}
	if payments != grants || grants != distinct {
		t.Errorf("payments %d, with grants %d, distinct grants %d: want one grant per payment", payments, grants, distinct)
	}
}

// TestSubscriptionLifecycle subscribes a user to Pro through the API with
// stripe-mock, renews through the admin API, changes plans, applies refund,
// dispute and customer-deletion webhooks, and checks the money after each.
func TestSubscriptionLifecycle(t *testing.T) {
	s := newStackWith(t, time.Millisecond, stackOptions{billing: true})
	ctx := context.Background()
	u, token := s.newUser(t, store.FreePlan, 0)
	_, adminToken := s.newAdmin(t, "free")

	// Subscribing without a card answers what the web app needs to save one.
	r := s.do(t, http.MethodPost, "/v1/subscriptions", token, map[string]any{"plan": "pro"})
	if r.status != http.StatusCreated {
		t.Fatalf("subscribe: %d %s", r.status, r.body)
	}
	var created api.SubscriptionView
	r.decode(t, &created)
	if created.Status != catalog.SubIncomplete || created.SetupIntentClientSecret == "" || created.Plan != "pro" {
		t.Fatalf("subscribe answered %+v", created)
	}
	// The same request with the card starts billing: the first period is
	// charged and its 2,000 credits granted.
	r = s.do(t, http.MethodPost, "/v1/subscriptions", token, map[string]any{"plan": "pro", "payment_method": "pm_card_visa"})
	if r.status != http.StatusOK {
		t.Fatalf("subscribe with card: %d %s", r.status, r.body)
	}
	waitFor(t, "first period granted", func() bool { return s.available(t, u.ID) == 2000 })
	var sub api.SubscriptionView
	waitFor(t, "subscription active", func() bool {
		sub, _ = s.subscription(t, token)
		return sub.Status == catalog.SubActive
	})
	if sub.ID != created.ID || sub.Plan != "pro" || sub.NextChargeAt == nil || !sub.NextChargeAt.Equal(sub.PeriodEnd) {
		t.Fatalf("subscription = %+v", sub)
	}
	pays, err := s.store.Payments(ctx, u.ID)
	if err != nil || len(pays) != 1 || pays[0].Amount != "29.99" {
		t.Fatalf("payments after subscribe = %+v, %v", pays, err)
	}
	s.checkMoney(t, u.ID)
	if mrr := businessGauge(t, s, "easel_mrr_cents", ""); mrr != 2999 {
		t.Fatalf("easel_mrr_cents = %v, want 2999", mrr)
	}

	// The billing team renews now: a second charge and a second grant.
	firstPeriod := sub.PeriodStart
	if r := s.do(t, http.MethodPost, "/v1/admin/subscriptions/"+sub.ID+"/renew", token, nil); r.status != http.StatusForbidden {
		t.Fatalf("renew by a user: %d", r.status)
	}
	r = s.do(t, http.MethodPost, "/v1/admin/subscriptions/"+sub.ID+"/renew", adminToken, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("admin renew: %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.available(t, u.ID) != 4000 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := s.available(t, u.ID); got != 4000 {
		v, err := s.temporal.QueryWorkflow(ctx, workflows.SubscriptionID(sub.ID), "", workflows.ChargesQuery)
		var ch []workflows.ChargeRecord
		if err == nil {
			_ = v.Get(&ch)
		}
		st, _ := s.subscription(t, token)
		gs, _ := s.store.Grants(ctx, u.ID)
		t.Fatalf("available %d; charges %+v (%v); sub %+v; grants %+v", got, ch, err, st, gs)
	}
	waitFor(t, "renewed period synced", func() bool {
		sub, _ = s.subscription(t, token)
		return sub.PeriodStart.After(firstPeriod)
	})
	// A retried renewal of the period already renewed is refused.
	h, err := s.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflows.SubscriptionID(sub.ID),
		UpdateName: workflows.RenewNowUpdate, Args: []any{workflows.RenewNowRequest{PeriodStart: firstPeriod}},
		WaitForStage: client.WorkflowUpdateStageCompleted})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	if err == nil {
		t.Fatal("a second renewal of the same period was accepted")
	}
	if n := s.stripe.Charges(); n != 2 {
		t.Fatalf("stripe saw %d charges, want 2", n)
	}
	s.checkMoney(t, u.ID)

	// Cancel at period end, and undo it.
	r = s.do(t, http.MethodPost, "/v1/subscription/cancel", token, nil)
	var canceled api.SubscriptionView
	r.decode(t, &canceled)
	if r.status != http.StatusOK || !canceled.CancelAtPeriodEnd || canceled.NextChargeAt != nil {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	if r := s.do(t, http.MethodPost, "/v1/subscription/cancel", token, nil); r.status != http.StatusConflict {
		t.Fatalf("second cancel: %d %s", r.status, r.body)
	}
	if r := s.do(t, http.MethodPost, "/v1/subscription/resume", token, nil); r.status != http.StatusOK {
		t.Fatalf("resume: %d %s", r.status, r.body)
	}
	// A downgrade waits for the period end.
	r = s.do(t, http.MethodPost, "/v1/subscription/change", token, map[string]any{"plan": "basic"})
	var change map[string]any
	r.decode(t, &change)
	if r.status != http.StatusOK || change["pending_plan"] != "basic" || change["charged_cents"] != float64(0) {
		t.Fatalf("downgrade: %d %s", r.status, r.body)
	}
	if r := s.do(t, http.MethodPost, "/v1/subscription/change", token, map[string]any{"plan": "gold"}); r.status != http.StatusBadRequest {
		t.Fatalf("unknown plan: %d %s", r.status, r.body)
	}
	// Changing back to the plan in effect withdraws the waiting downgrade:
	// the preview says so, nothing is charged, and a second time is refused.
	var preview api.PlanChangePreview
	s.do(t, http.MethodPost, "/v1/subscription/change/preview", token, map[string]any{"plan": "pro"}).decode(t, &preview)
	if preview.When != api.ChangeWithdraw || preview.ChargeCents != 0 || preview.CreditsAdded != 0 || preview.Plan != "pro" {
		t.Fatalf("preview of staying: %+v", preview)
	}
	r = s.do(t, http.MethodPost, "/v1/subscription/change", token, map[string]any{"plan": "pro"})
	change = nil
	r.decode(t, &change)
	if r.status != http.StatusOK || change["pending_plan"] != "" || change["plan"] != "pro" || change["charged_cents"] != float64(0) {
		t.Fatalf("withdrawing the downgrade: %d %s", r.status, r.body)
	}
	expectProblem(t, s.do(t, http.MethodPost, "/v1/subscription/change", token, map[string]any{"plan": "pro"}), http.StatusConflict)

	// Webhooks: a partial refund of the first payment claws back the
	// refunded share of its grant; the whole refund, the rest of it, once,
	// however often Stripe delivers it.
	var paidCents int64
	var grantCredits int
	if err := s.store.Pool().QueryRow(ctx, `SELECT round(p.amount * 100)::bigint, c.total_credits
		FROM payments p JOIN credits c ON c.id = p.credit_id WHERE p.stripe_payment_intent_id = $1`,
		pays[0].PaymentIntentID).Scan(&paidCents, &grantCredits); err != nil {
		t.Fatal(err)
	}
	whole := s.available(t, u.ID)
	part, partSig := signedEvent(t, s.webhookSecret, "evt_refund_part", "charge.refunded",
		map[string]any{"id": "ch_1", "object": "charge", "payment_intent": pays[0].PaymentIntentID,
			"amount": paidCents, "amount_refunded": paidCents / 4, "refunded": false}, time.Now())
	if r := s.webhook(t, part, partSig); r.status != http.StatusOK {
		t.Fatalf("partial refund: %d %s", r.status, r.body)
	}
	share := (2*int64(grantCredits)*(paidCents/4) + paidCents) / (2 * paidCents)
	waitFor(t, "a quarter refunded", func() bool { return s.available(t, u.ID) == whole-int(share) })
	var status string
	var refundedCents int64
	if err := s.store.Pool().QueryRow(ctx, `SELECT status, refunded_cents FROM payments WHERE stripe_payment_intent_id = $1`,
		pays[0].PaymentIntentID).Scan(&status, &refundedCents); err != nil || status != "partially_refunded" || refundedCents != paidCents/4 {
		t.Fatalf("payment after a partial refund: %s, %d cents refunded, %v", status, refundedCents, err)
	}
	refund, sig := signedEvent(t, s.webhookSecret, "evt_refund_1", "charge.refunded",
		map[string]any{"id": "ch_1", "object": "charge", "payment_intent": pays[0].PaymentIntentID}, time.Now())
	for i := range 3 {
		r := s.webhook(t, refund, sig)
		var ack map[string]any
		r.decode(t, &ack)
		if r.status != http.StatusOK || ack["duplicate"] != (i > 0) {
			t.Fatalf("delivery %d: %d %s", i+1, r.status, r.body)
		}
	}
	waitFor(t, "refund clawed back", func() bool { return s.available(t, u.ID) == 2000 })
	before := s.available(t, u.ID)
	// Bad deliveries change nothing: a tampered body, an old timestamp, a
	// wrong secret.
	tampered := append([]byte(nil), refund...)
	tampered[len(tampered)-3] ^= 1
	old, oldSig := signedEvent(t, s.webhookSecret, "evt_old", "charge.refunded",
		map[string]any{"id": "ch_2", "object": "charge", "payment_intent": pays[0].PaymentIntentID}, time.Now().Add(-10*time.Minute))
	wrong, wrongSig := signedEvent(t, "whsec_wrong", "evt_wrong", "customer.deleted",
		map[string]any{"id": "cus_any", "object": "customer"}, time.Now())
	for name, d := range map[string][2]string{"tampered": {string(tampered), sig}, "old": {string(old), oldSig},
		"wrong secret": {string(wrong), wrongSig}, "unsigned": {string(refund), ""}} {
		if r := s.webhook(t, []byte(d[0]), d[1]); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	huge := append(append([]byte(`{"id":"evt_huge","pad":"`), bytes.Repeat([]byte("a"), 600<<10)...), `"}`...)
	expectProblem(t, s.webhook(t, huge, sig), http.StatusRequestEntityTooLarge)
	var events int
	if err := s.store.Pool().QueryRow(ctx, `SELECT count(*) FROM stripe_events`).Scan(&events); err != nil || events != 2 {
		t.Fatalf("stripe_events = %d, %v; want the two valid events", events, err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := s.available(t, u.ID); got != before {
		t.Fatalf("bad deliveries changed the balance: %d -> %d", before, got)
	}
	s.checkMoney(t, u.ID)

	// A dispute suspends the account and tells the user.
	pays, _ = s.store.Payments(ctx, u.ID)
	dispute, dsig := signedEvent(t, s.webhookSecret, "evt_dispute_1", "charge.dispute.created",
		map[string]any{"id": "dp_1", "object": "dispute", "payment_intent": pays[0].PaymentIntentID}, time.Now())
	if r := s.webhook(t, dispute, dsig); r.status != http.StatusOK {
		t.Fatalf("dispute: %d %s", r.status, r.body)
	}
	waitFor(t, "user suspended", func() bool {
		return s.do(t, http.MethodGet, "/v1/me", token, nil).status == http.StatusForbidden
	})
	// The suspension commits first, the notice right after it.
	waitFor(t, "suspension notice", func() bool {
		notices, err := s.store.Notices(ctx, u.ID)
		return err == nil && len(notices) > 0 && notices[0].Kind == store.NoticeSuspended
	})
	if _, err := s.store.SetUserActive(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}

	// Deleting the Stripe customer ends the subscription; the user falls
	// back to a Free subscription with its 50 credits.
	row, err := s.store.GetSubscription(ctx, sub.ID)
	if err != nil || row.CustomerID == "" {
		t.Fatalf("subscription row = %+v, %v", row, err)
	}
	del, delSig := signedEvent(t, s.webhookSecret, "evt_customer_deleted", "customer.deleted",
		map[string]any{"id": row.CustomerID, "object": "customer"}, time.Now())
	if r := s.webhook(t, del, delSig); r.status != http.StatusOK {
		t.Fatalf("customer deleted: %d %s", r.status, r.body)
	}
	var free api.SubscriptionView
	waitFor(t, "free fallback", func() bool {
		free, _ = s.subscription(t, token)
		return free.Plan == store.FreePlan && free.Status == catalog.SubActive
	})
	if free.ID == sub.ID {
		t.Fatal("the fallback reused the paid subscription")
	}
	waitFor(t, "free credits", func() bool { return s.available(t, u.ID) == before+50 })
	ended, err := s.store.GetSubscription(ctx, sub.ID)
	if err != nil || ended.Status != catalog.SubCanceled || ended.EndedAt == nil {
		t.Fatalf("paid subscription after deletion = %+v, %v", ended, err)
	}
	s.checkMoney(t, u.ID)

	// A refund after the subscription ended still claws back: the renewal's
	// 2,000 unspent credits go, the free 50 stay.
	late, lateSig := signedEvent(t, s.webhookSecret, "evt_refund_late", "charge.refunded",
		map[string]any{"id": "ch_3", "object": "charge", "payment_intent": pays[0].PaymentIntentID}, time.Now())
	if r := s.webhook(t, late, lateSig); r.status != http.StatusOK {
		t.Fatalf("late refund: %d %s", r.status, r.body)
	}
	if got := s.available(t, u.ID); got != before+50-2000 {
		t.Fatalf("after the late refund: available %d, want %d", got, before+50-2000)
	}
	s.checkMoney(t, u.ID)

	// Subscribing again replaces the free subscription.
	r = s.do(t, http.MethodPost, "/v1/subscriptions", token, map[string]any{"plan": "basic", "payment_method": "pm_card_visa"})
	if r.status != http.StatusCreated {
		t.Fatalf("subscribe from free: %d %s", r.status, r.body)
	}
	var basic api.SubscriptionView
	waitFor(t, "basic active", func() bool {
		basic, _ = s.subscription(t, token)
		return basic.Plan == "basic" && basic.Status == catalog.SubActive
	})
	waitFor(t, "free workflow stopped", func() bool {
		d, err := s.temporal.DescribeWorkflowExecution(ctx, workflows.SubscriptionID(free.ID), "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	})
	waitFor(t, "basic credits", func() bool { return s.available(t, u.ID) == before+50-2000+500 })
	s.checkMoney(t, u.ID)

	// The billing summary shows the free subscription and the failed nothing.
	r = s.do(t, http.MethodGet, "/v1/admin/billing", adminToken, nil)
	var summary store.BillingSummary
	r.decode(t, &summary)
	if r.status != http.StatusOK || summary.ActiveByPlan["basic"] != 1 || summary.ActiveByPlan["free"] != 0 ||
		summary.MRRCents != 999 || summary.Refunded30Days != 2*2999 {
		t.Fatalf("billing summary: %d %s", r.status, r.body)
	}
	if mrr, n := businessGauge(t, s, "easel_mrr_cents", ""), businessGauge(t, s, "easel_subscriptions", "basic"); mrr != 999 || n != 1 {
		t.Fatalf("after subscribing to basic: easel_mrr_cents %v, basic subscriptions %v", mrr, n)
	}
}

// businessGauge reads one gauge of a fresh BusinessCollector; plan selects
// the easel_subscriptions series.
func businessGauge(t *testing.T, s *stack, name, plan string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(&api.BusinessCollector{Store: s.store})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if plan == "" || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == plan) {
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// A subscription waiting for its card starts billing when Stripe reports
// the SetupIntent succeeded; a declined first charge leaves it past due.
func TestSubscriptionStartsOnSetupIntentWebhook(t *testing.T) {
	s := newStackWith(t, time.Millisecond, stackOptions{billing: true})
	ctx := context.Background()
	u, token := s.newUser(t, store.FreePlan, 0)
	r := s.do(t, http.MethodPost, "/v1/subscriptions", token, map[string]any{"plan": "basic"})
	if r.status != http.StatusCreated {
		t.Fatalf("subscribe: %d %s", r.status, r.body)
	}
	var created api.SubscriptionView
	r.decode(t, &created)
	row, err := s.store.GetSubscription(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	s.stripe.SetDecline(true)
	ev, sig := signedEvent(t, s.webhookSecret, "evt_setup_1", "setup_intent.succeeded",
		map[string]any{"id": "seti_1", "object": "setup_intent", "customer": row.CustomerID, "payment_method": "pm_card_visa"}, time.Now())
	if r := s.webhook(t, ev, sig); r.status != http.StatusOK {
		t.Fatalf("setup_intent.succeeded: %d %s", r.status, r.body)
	}
	// The first charge is declined: the checkout stays incomplete (not in
	// effect) through dunning.
	var sub api.SubscriptionView
	// The state may show the attempt a moment before the failure is
	// recorded for the billing team: wait for both.
	var summary store.BillingSummary
	waitFor(t, "dunning after a decline", func() bool {
		sub, _ = s.subscription(t, token)
		summary, err = s.store.Billing(ctx, 10)
		return sub.Status == catalog.SubIncomplete && sub.DunningAttempt == 1 && err == nil &&
			len(summary.FailedPayments) > 0
	})
	if sub.DunningAttempt != 1 || sub.NextChargeAt == nil || s.available(t, u.ID) != 0 {
		t.Fatalf("past-due subscription = %+v, balance %d", sub, s.available(t, u.ID))
	}
	if err != nil || summary.PastDue != 0 || len(summary.FailedPayments) != 1 || summary.FailedPayments[0].Code != "insufficient_funds" {
		t.Fatalf("billing summary = %+v, %v", summary, err)
	}
	// The notice follows the subscription's state by a moment.
	var notices []store.UserNotice
	waitFor(t, "the payment-failed notice", func() bool {
		notices, err = s.store.Notices(ctx, u.ID)
		return err == nil && len(notices) > 0
	})
	if err != nil || len(notices) != 1 || notices[0].Kind != store.NoticePaymentFailed {
		t.Fatalf("notices = %+v, %v", notices, err)
	}
	s.checkMoney(t, u.ID)
}

// renewAll sends n renewals of a subscription at once and counts the
// answers by status.
func (s *stack) renewAll(t *testing.T, n int, adminToken, subID string, body any) map[int]int {
	t.Helper()
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- s.do(t, http.MethodPost, "/v1/admin/subscriptions/"+subID+"/renew", adminToken, body).status
		}()
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	return got
}

// subscriptionMoney counts a user's Stripe-paid payments rows and
// subscription grants.
func (s *stack) subscriptionMoney(t *testing.T, userID string) (payments, grants int) {
	t.Helper()
	err := s.store.Pool().QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM payments WHERE user_id = $1),
		(SELECT count(*) FROM credits WHERE user_id = $1 AND source = 'subscription')`, userID).Scan(&payments, &grants)
	if err != nil {
		t.Fatal(err)
	}
	return payments, grants
}

// Twenty renewals at once renew once; the same request again is refused;
// naming a period already renewed is refused; naming the current period
// renews it, once however often it is sent.
func TestAdminRenewOncePerPeriod(t *testing.T) {
	s := newStackWith(t, time.Millisecond, stackOptions{billing: true})
	u, token := s.newUser(t, store.FreePlan, 0)
	_, adminToken := s.newAdmin(t, "free")
	r := s.do(t, http.MethodPost, "/v1/subscriptions", token, map[string]any{"plan": "pro", "payment_method": "pm_card_visa"})
	if r.status != http.StatusCreated {
		t.Fatalf("subscribe: %d %s", r.status, r.body)
	}
	var sub api.SubscriptionView
	waitFor(t, "subscription active", func() bool {
		sub, _ = s.subscription(t, token)
		return sub.Status == catalog.SubActive && s.available(t, u.ID) == 2000
	})
	first := sub.PeriodStart

	if got := s.renewAll(t, 20, adminToken, sub.ID, nil); got[http.StatusAccepted] != 1 || got[http.StatusConflict] != 19 {
		t.Fatalf("20 renewals at once answered %v: want one 202 and 19 409", got)
	}
	waitFor(t, "renewed period", func() bool {
		sub, _ = s.subscription(t, token)
		return sub.PeriodStart.After(first) && s.available(t, u.ID) == 4000
	})
	if r := s.do(t, http.MethodPost, "/v1/admin/subscriptions/"+sub.ID+"/renew", adminToken, nil); r.status != http.StatusConflict {
		t.Fatalf("the same renewal again: %d %s", r.status, r.body)
	}
	stale := map[string]any{"period_start": first}
	if r := s.do(t, http.MethodPost, "/v1/admin/subscriptions/"+sub.ID+"/renew", adminToken, stale); r.status != http.StatusConflict ||
		!strings.Contains(string(r.body), "already renewed") {
		t.Fatalf("renewing the renewed period: %d %s", r.status, r.body)
	}
	if r := s.do(t, http.MethodPost, "/v1/admin/subscriptions/"+sub.ID+"/renew", adminToken,
		map[string]any{"period_start": "yesterday"}); r.status != http.StatusBadRequest || strings.Contains(string(r.body), "2006") {
		t.Fatalf("a period that is not a time: %d %s", r.status, r.body)
	}
	time.Sleep(time.Second) // nothing refused is still on its way
	if n := s.stripe.Charges(); n != 2 {
		t.Fatalf("stripe saw %d charges after the refused renewals, want 2", n)
	}

	current := map[string]any{"period_start": sub.PeriodStart}
	if got := s.renewAll(t, 20, adminToken, sub.ID, current); got[http.StatusAccepted] != 1 || got[http.StatusConflict] != 19 {
		t.Fatalf("20 renewals naming the current period answered %v: want one 202 and 19 409", got)
	}
	waitFor(t, "third period", func() bool { return s.available(t, u.ID) == 6000 })
	time.Sleep(time.Second)
	payments, grants := s.subscriptionMoney(t, u.ID)
	if n := s.stripe.Charges(); n != 3 || payments != 3 || grants != 3 {
		t.Fatalf("%d charges, %d payments, %d grants: want 3 each", n, payments, grants)
	}
	s.checkMoney(t, u.ID)
}

// signIn signs a brand-new user in, who starts on the free plan.
func (s *stack) signIn(t *testing.T) (userID, token string) {
	t.Helper()
	sub := "sub-" + uuid.NewString()
	token, err := s.issuer.Sign(oidc.Identity{Subject: sub, Email: sub + "@example.com", Name: "New " + sub[4:12]}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var me struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	r := s.do(t, http.MethodGet, "/v1/me", token, nil)
	if r.status != http.StatusOK {
		t.Fatalf("me: %d %s", r.status, r.body)
	}
	r.decode(t, &me)
	return me.User.ID, token
}

// An unfinished checkout leaves the free plan in effect: it can be
// abandoned, replaced by another plan (also through change) and finished
// with a card, which only then ends the free subscription.
func TestCheckoutKeepsFreePlan(t *testing.T) {
	s := newStackWith(t, time.Millisecond, stackOptions{billing: true})
	ctx := context.Background()
	uid, token := s.signIn(t)
	free, _ := s.subscription(t, token)
	if free.Plan != store.FreePlan || s.available(t, uid) != 50 {
		t.Fatalf("new user: %+v, %d credits", free, s.available(t, uid))
	}
	checkout := func(plan string, want int) api.SubscriptionView {
		t.Helper()
		r := s.do(t, http.MethodPost, "/v1/subscriptions", token, map[string]any{"plan": plan})
		var v api.SubscriptionView
		r.decode(t, &v)
		if r.status != want || v.Status != catalog.SubIncomplete || v.Plan != plan || v.SetupIntentClientSecret == "" {
			t.Fatalf("checkout %s: %d %s", plan, r.status, r.body)
		}
		return v
	}
	inEffect := func(what, plan string) api.SubscriptionView {
		t.Helper()
		v, code := s.subscription(t, token)
		if code != http.StatusOK || v.ID != free.ID || v.Plan != store.FreePlan || v.Status != catalog.SubActive {
			t.Fatalf("%s: the free plan is no longer in effect: %d %+v", what, code, v)
		}
		if p, err := s.store.UserPlan(ctx, uid); err != nil || p.Slug != plan {
			t.Fatalf("%s: plan %+v, %v", what, p, err)
		}
		return v
	}

	basic := checkout("basic", http.StatusCreated)
	if v := inEffect("checkout open", store.FreePlan); v.Checkout == nil || v.Checkout.ID != basic.ID {
		t.Fatalf("checkout not shown: %+v", v)
	}
	// Cancel abandons the checkout; the free plan stays.
	r := s.do(t, http.MethodPost, "/v1/subscription/cancel", token, nil)
	var abandoned api.SubscriptionView
	r.decode(t, &abandoned)
	if r.status != http.StatusOK || abandoned.ID != basic.ID || abandoned.Status != catalog.SubCanceled || abandoned.EndedAt == nil {
		t.Fatalf("cancel a checkout: %d %s", r.status, r.body)
	}
	if v := inEffect("checkout abandoned", store.FreePlan); v.Checkout != nil {
		t.Fatalf("an abandoned checkout is still shown: %+v", v.Checkout)
	}
	// Another checkout, then another plan replaces it, through subscribe
	// and through change; the same request again is a retry.
	basic = checkout("basic", http.StatusCreated)
	pro := checkout("pro", http.StatusCreated)
	if old, err := s.store.GetSubscription(ctx, basic.ID); err != nil || old.Status != catalog.SubCanceled {
		t.Fatalf("replaced checkout = %+v, %v", old, err)
	}
	r = s.do(t, http.MethodPost, "/v1/subscription/change", token, map[string]any{"plan": "basic"})
	var changed api.SubscriptionView
	r.decode(t, &changed)
	if r.status != http.StatusOK || changed.Plan != "basic" || changed.ID == pro.ID {
		t.Fatalf("change a checkout: %d %s", r.status, r.body)
	}
	if again := checkout("basic", http.StatusOK); again.ID != changed.ID {
		t.Fatalf("retry opened another checkout: %s != %s", again.ID, changed.ID)
	}
	if r := s.do(t, http.MethodPost, "/v1/subscription/resume", token, nil); r.status != http.StatusConflict ||
		strings.Contains(string(r.body), "not running") {
		t.Fatalf("resume with a checkout open: %d %s", r.status, r.body)
	}
	inEffect("checkouts replaced", store.FreePlan)
	if s.stripe.Charges() != 0 || s.available(t, uid) != 50 {
		t.Fatalf("%d charges, %d credits before any card", s.stripe.Charges(), s.available(t, uid))
	}

	// The card comes: the first charge succeeds, and only now the free
	// subscription ends and its workflow stops.
	r = s.do(t, http.MethodPost, "/v1/subscriptions", token, map[string]any{"plan": "basic", "payment_method": "pm_card_visa"})
	if r.status != http.StatusOK {
		t.Fatalf("finish with a card: %d %s", r.status, r.body)
	}
	var paid api.SubscriptionView
	waitFor(t, "basic in effect", func() bool {
		paid, _ = s.subscription(t, token)
		return paid.ID == changed.ID && paid.Status == catalog.SubActive && s.available(t, uid) == 550
	})
	if old, err := s.store.GetSubscription(ctx, free.ID); err != nil || old.Status != catalog.SubCanceled || old.EndedAt == nil {
		t.Fatalf("free subscription after the first charge = %+v, %v", old, err)
	}
	waitFor(t, "free workflow stopped", func() bool {
		d, err := s.temporal.DescribeWorkflowExecution(ctx, workflows.SubscriptionID(free.ID), "")
		return err == nil && d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
	})
	for _, id := range []string{basic.ID, pro.ID} {
		d, err := s.temporal.DescribeWorkflowExecution(ctx, workflows.SubscriptionID(id), "")
		if err != nil || d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Fatalf("abandoned checkout %s still running: %v", id, err)
		}
	}
	if n := s.stripe.Charges(); n != 1 {
		t.Fatalf("stripe saw %d charges, want 1", n)
	}
	s.checkMoney(t, uid)
}
