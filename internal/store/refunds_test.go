package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

// A refund claws back only what is unspent and not held by running jobs,
// once, and records it in the transaction log.
func TestRefundClawsBackUnspentOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	start := time.Now().Add(-time.Minute)
	sub := uuid.NewString()
	if _, err := s.GrantPeriod(ctx, store.PeriodGrant{SubscriptionID: sub, UserID: u.ID, PlanSlug: "pro", Credits: 100,
		PeriodStart: start, PeriodEnd: start.Add(time.Hour), PaymentIntentID: "pi_refund", AmountCents: 2999}); err != nil {
		t.Fatal(err)
	}
	// 30 spent, 50 held by a running job: 20 can be taken back.
	spent, held := uuid.NewString(), uuid.NewString()
	for _, h := range []struct {
		id     string
		amount int
	}{{spent, 30}, {held, 50}} {
		if _, err := s.Hold(ctx, store.HoldInput{JobID: h.id, UserID: u.ID, Amount: h.amount, TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Settle(ctx, spent, 30); err != nil {
		t.Fatal(err)
	}
	r, err := s.RefundPayment(ctx, "pi_refund", 0)
	if err != nil || !r.First || r.ClawedBack != 20 || r.UserID != u.ID {
		t.Fatalf("refund = %+v, %v", r, err)
	}
	again, err := s.RefundPayment(ctx, "pi_refund", 0)
	if err != nil || again.First || again.ClawedBack != 0 {
		t.Fatalf("second refund = %+v, %v", again, err)
	}
	b, err := s.Balance(ctx, u.ID)
	if err != nil || b.Available != 0 || b.Held != 50 {
		t.Fatalf("balance after refund = %+v, %v", b, err)
	}
	// The held job still settles in full.
	if _, err := s.Settle(ctx, held, 50); err != nil {
		t.Fatalf("settle after refund: %v", err)
	}
	if _, err := s.RefundPayment(ctx, "pi_unknown", 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown payment: %v", err)
	}
}

// A partial refund takes back the grant's share of it, once; a later
// refund of more takes the rest of its share, an earlier or repeated one
// nothing, and the whole refund what is left. The billing summary counts
// what was refunded, not whole payments.
func TestPartialRefundsClawBackTheirShare(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	start := time.Now().Add(-time.Minute)
	pi := "pi_partial_" + uuid.NewString()
	if _, err := s.GrantPeriod(ctx, store.PeriodGrant{SubscriptionID: uuid.NewString(), UserID: u.ID, PlanSlug: "basic",
		Credits: 500, PeriodStart: start, PeriodEnd: start.Add(time.Hour), PaymentIntentID: pi, AmountCents: 999}); err != nil {
		t.Fatal(err)
	}
	before, err := s.Billing(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	balance := func() int {
		t.Helper()
		b, err := s.Balance(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return b.Available
	}
	others := balance() - 500 // credits of grants other than the refunded one
	available := func() int { return balance() - others }
	steps := []struct {
		name          string
		refundedCents int64
		first, whole  bool
		clawed, left  int
		refundedInSum int64
	}{
		{"$1.00 of $9.99 refunded: 50 of 500 credits back", 100, true, false, 50, 450, 100},
		{"the same event again: nothing", 100, false, false, 0, 450, 100},
		{"$3.00 in all: 100 more (150 is 300/999 of 500)", 300, true, false, 100, 350, 300},
		{"an earlier refund arriving late: nothing", 200, false, false, 0, 350, 300},
		{"the whole of it: the rest", 999, true, true, 350, 0, 999},
		{"a whole refund again: nothing", 0, false, true, 0, 0, 999},
	}
	for _, st := range steps {
		r, err := s.RefundPayment(ctx, pi, st.refundedCents)
		if err != nil || r.First != st.first || r.Whole != st.whole || r.ClawedBack != st.clawed {
			t.Fatalf("%s: refund = %+v, %v", st.name, r, err)
		}
		if got := available(); got != st.left {
			t.Fatalf("%s: %d credits of the grant left, want %d", st.name, got, st.left)
		}
		sum, err := s.Billing(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := sum.Refunded30Days - before.Refunded30Days; got != st.refundedInSum {
			t.Fatalf("%s: refunded in the summary grew by %d, want %d", st.name, got, st.refundedInSum)
		}
		if got := before.Revenue30Days - sum.Revenue30Days; got != st.refundedInSum {
			t.Fatalf("%s: revenue fell by %d, want %d", st.name, got, st.refundedInSum)
		}
	}
}

// One subscription in effect per user; a fallback ends the paid one and
// opens a free one, once. A checkout lives beside the free subscription
// until it is activated, which ends the free one in the same transaction.
func TestSubscriptionFallback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	now := time.Now().UTC()
	paid, err := s.CreateSubscription(ctx, store.NewSubscription{UserID: u.ID, Plan: "pro", CustomerID: "cus_1",
		Status: catalog.SubActive, PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSubscription(ctx, store.NewSubscription{UserID: u.ID, Plan: "basic", CustomerID: "cus_1",
		Status: catalog.SubActive, PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0)}); !errors.Is(err, store.ErrLiveSubscription) {
		t.Fatalf("second subscription in effect: %v", err)
	}
	free, err := s.FallbackSubscription(ctx, paid.ID, "downgraded", store.FreePlan, now, now.AddDate(0, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.FallbackSubscription(ctx, paid.ID, "downgraded", store.FreePlan, now, now.AddDate(0, 1, 0))
	if err != nil || again != free {
		t.Fatalf("second fallback = %s, %v; want %s", again, err, free)
	}
	live, err := s.LiveSubscription(ctx, u.ID)
	if err != nil || live.ID != free || live.Plan != store.FreePlan {
		t.Fatalf("live = %+v, %v", live, err)
	}
	// The ended row is final: a late sync from its workflow changes nothing.
	if err := s.SyncSubscription(ctx, store.SubscriptionSync{ID: paid.ID, Plan: "pro", Status: catalog.SubActive,
		PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0)}); err != nil {
		t.Fatal(err)
	}
	ended, err := s.GetSubscription(ctx, paid.ID)
	if err != nil || ended.Status != "downgraded" || ended.EndedAt == nil {
		t.Fatalf("ended = %+v, %v", ended, err)
	}
	// A checkout opens beside the free subscription, which stays in effect;
	// a second open checkout is refused.
	checkout := store.NewSubscription{UserID: u.ID, Plan: "basic", CustomerID: "cus_1",
		Status: catalog.SubIncomplete, PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0)}
	co, err := s.CreateSubscription(ctx, checkout)
	if err != nil || co.Status != catalog.SubIncomplete {
		t.Fatalf("checkout = %+v, %v", co, err)
	}
	if _, err := s.CreateSubscription(ctx, checkout); !errors.Is(err, store.ErrLiveSubscription) {
		t.Fatalf("second checkout: %v", err)
	}
	if p, err := s.UserPlan(ctx, u.ID); err != nil || p.Slug != store.FreePlan {
		t.Fatalf("plan with a checkout open = %+v, %v", p, err)
	}
	if open, err := s.Checkout(ctx, u.ID); err != nil || open.ID != co.ID {
		t.Fatalf("open checkout = %+v, %v", open, err)
	}
	// Activation ends the free subscription, once.
	gone, err := s.ActivateSubscription(ctx, co.ID, catalog.SubActive)
	if err != nil || len(gone) != 1 || gone[0] != free {
		t.Fatalf("activate = %v, %v; want free %s ended", gone, err, free)
	}
	if gone, err := s.ActivateSubscription(ctx, co.ID, catalog.SubActive); err != nil || len(gone) != 0 {
		t.Fatalf("activate again = %v, %v", gone, err)
	}
	if old, err := s.GetSubscription(ctx, free); err != nil || old.Status != catalog.SubCanceled || old.EndedAt == nil {
		t.Fatalf("replaced free subscription = %+v, %v", old, err)
	}
	if p, err := s.UserPlan(ctx, u.ID); err != nil || p.Slug != "basic" {
		t.Fatalf("plan after activation = %+v, %v", p, err)
	}
	// An abandoned checkout ends; ending it again changes nothing.
	if _, err := s.EndCheckout(ctx, co.ID, catalog.SubCanceled); err != nil {
		t.Fatal(err)
	}
	if now, err := s.GetSubscription(ctx, co.ID); err != nil || now.Status != catalog.SubActive {
		t.Fatalf("ending an active subscription as a checkout changed it: %+v, %v", now, err)
	}
}
