package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/devstack"
	"github.com/easel/easel/internal/devstack/temporalserver"
	"github.com/easel/easel/internal/payments"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
	"github.com/easel/easel/workers"
	"github.com/easel/easel/workflows"
)

// `easel billing renew --subscription ID` run twice against a Pro
// subscription (embedded Temporal, Postgres, stripe-mock) charges once and
// refuses the second run, naming the period.
func TestBillingRenewTwiceChargesOnce(t *testing.T) {
	ctx := context.Background()
	dbURL := testenv.PostgresURL(t)
	pool, err := store.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	st := store.New(pool)
	srv, err := temporalserver.Start(ctx, temporalserver.Options{SearchAttributes: workflows.SearchAttributes})
	if err != nil {
		testenv.Unavailable(t, "embedded temporal: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	tc, err := client.DialContext(ctx, client.Options{HostPort: srv.HostPort(), Namespace: srv.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	stripe := &devstack.StripeTransport{}
	gateway := payments.New(testenv.StripeMockKey, testenv.StripeMock(t), &http.Client{Transport: stripe, Timeout: 10 * time.Second})
	w := workers.NewControl(workers.Deps{Temporal: tc, Store: st, Payments: gateway})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)

	u, err := st.UpsertUser(ctx, "renew@example.com", "Renew", "sub-renew")
	if err != nil {
		t.Fatal(err)
	}
	cus, err := gateway.CreateCustomer(ctx, u.ID, u.Email)
	if err == nil {
		err = gateway.SaveCard(ctx, cus.CustomerID, "pm_card_visa")
	}
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	sub, err := st.CreateSubscription(ctx, store.NewSubscription{UserID: u.ID, Plan: "pro", CustomerID: cus.CustomerID,
		Status: catalog.SubActive, PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	pro := workflows.SubscriptionPlan{Slug: "pro", PriceCents: 2999, Credits: 2000}
	if _, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.SubscriptionID(sub.ID), TaskQueue: catalog.ControlQueue},
		workflows.Subscription, workflows.SubscriptionInput{SubscriptionID: sub.ID, UserID: u.ID, CustomerID: cus.CustomerID,
			Plan: pro, PeriodStart: sub.PeriodStart, PeriodEnd: sub.PeriodEnd}); err != nil {
		t.Fatal(err)
	}
	waitBalance(t, st, u.ID, 2000)

	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("TEMPORAL_ADDRESS", srv.HostPort())
	t.Setenv("TEMPORAL_NAMESPACE", srv.Namespace())
	renew := func() string {
		t.Helper()
		var out bytes.Buffer
		cmd := billingCommand()
		cmd.SetArgs([]string{"renew", "--subscription", sub.ID})
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		if err := cmd.ExecuteContext(ctx); err != nil {
			t.Fatalf("easel billing renew: %v\n%s", err, out.String())
		}
		return out.String()
	}
	if out := renew(); !strings.Contains(out, "renewed "+sub.ID) || !strings.Contains(out, "1 renewed, 0 refused, 0 failed") {
		t.Fatalf("first run: %s", out)
	}
	waitBalance(t, st, u.ID, 4000)
	if out := renew(); !strings.Contains(out, "refused "+sub.ID) || !strings.Contains(out, "name it") ||
		!strings.Contains(out, "0 renewed, 1 refused, 0 failed") {
		t.Fatalf("second run: %s", out)
	}
	time.Sleep(time.Second)
	var payments, grants int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM payments WHERE user_id = $1),
		(SELECT count(*) FROM credits WHERE user_id = $1)`, u.ID).Scan(&payments, &grants); err != nil {
		t.Fatal(err)
	}
	if n := stripe.Charges(); n != 2 || payments != 2 || grants != 2 {
		t.Fatalf("%d charges, %d payments, %d grants: want 2 each (the first period and one renewal)", n, payments, grants)
	}
}

func waitBalance(t *testing.T, st *store.Store, userID string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := st.Balance(context.Background(), userID)
		if err == nil && b.Available == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("balance %+v (%v), want %d available", b, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
