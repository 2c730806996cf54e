package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

// tenantTables are the tables row-level security guards.
var tenantTables = []string{"images", "generations", "credits", "credit_holds", "credit_transactions",
	"usage_records", "api_keys", "uploads", "webhook_endpoints", "webhook_secrets", "webhook_events",
	"webhook_deliveries", "webhook_attempts"}

// Postgres itself keeps tenants apart for the API's role, even for a query
// with no user filter at all.
func TestRowLevelSecurity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	owner, err := store.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close()
	s := store.New(owner)
	alice, bob := newUser(t, s), newUser(t, s)
	for _, u := range []store.User{alice, bob} {
		grant(t, s, u.ID, 50, time.Hour)
		g := admitJob(t, s, u.ID, 4, 1)
		if _, err := s.Finalize(ctx, store.FinalizeInput{JobID: g.ID, UserID: u.ID, Credits: 4, Model: "sdxl",
			GPUTier: "a10g", Steps: 30, Width: 64, Height: 64, BatchSize: 1,
			Images: []store.ImageRecord{{Name: g.ID + "_0", Key: "k", ThumbnailKey: "t", Width: 64, Height: 64}}}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.CreateAPIKey(ctx, u.ID, "ci", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateUpload(ctx, store.Upload{ID: uuid.NewString(), UserID: u.ID, Key: "k", Width: 8, Height: 8,
			Bytes: 10, SourceFormat: "png"}); err != nil {
			t.Fatal(err)
		}
		webhookRows(t, s, u.ID)
	}
	api, err := store.ConnectScoped(ctx, url, store.APIRole)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()

	count := func(ctx context.Context, table string) (all, bobs int) {
		t.Helper()
		err := api.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE user_id = $1) FROM `+table, bob.ID).Scan(&all, &bobs)
		if err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		return all, bobs
	}
	asAlice := store.WithScope(ctx, store.Scope{UserID: alice.ID})
	for _, table := range tenantTables {
		if all, bobs := count(asAlice, table); all == 0 || bobs != 0 {
			t.Errorf("%s as alice: %d rows, %d of them bob's; want alice's only", table, all, bobs)
		}
		if all, _ := count(ctx, table); all != 0 {
			t.Errorf("%s with no scope: %d rows visible, want none", table, all)
		}
		if _, bobs := count(store.WithScope(ctx, store.Scope{Admin: true}), table); bobs == 0 {
			t.Errorf("%s as admin: bob's rows hidden", table)
		}
	}
	// Writing a row for another user is refused by the policy's check.
	_, err = api.Exec(asAlice, `INSERT INTO credits (user_id, total_credits, source, valid_from, valid_until)
		VALUES ($1, 1000, 'forged', now(), now() + interval '1 day')`, bob.ID)
	if err == nil {
		t.Fatal("alice's scope inserted credits for bob")
	}
	// The API's store methods work through the same role.
	scoped := store.New(api)
	if b, err := scoped.Balance(asAlice, alice.ID); err != nil || b.Available != 46 {
		t.Fatalf("alice's balance through the API role: %+v %v", b, err)
	}
	if b, err := scoped.Balance(asAlice, bob.ID); err != nil || b.Granted != 0 {
		t.Fatalf("bob's balance seen from alice's scope: %+v %v", b, err)
	}
}

// webhookRows gives the user a row in each webhook table: an endpoint, the
// account secret, an event delivered to the endpoint, and its attempt.
func webhookRows(t *testing.T, s *store.Store, userID string) {
	t.Helper()
	ctx := context.Background()
	e, err := s.CreateWebhookEndpoint(ctx, store.WebhookEndpoint{UserID: userID, URL: "https://example.com/h"}, "whsec_a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WebhookSecret(ctx, userID, "whsec_b"); err != nil {
		t.Fatal(err)
	}
	ev, d := uuid.NewString(), uuid.NewString()
	if err := s.RecordWebhookEvent(ctx, store.WebhookEvent{ID: ev, UserID: userID, Type: "credits.low",
		Payload: []byte(`{"type":"credits.low"}`)}, []store.NewWebhookDelivery{{ID: d, EndpointID: e.ID, URL: e.URL}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordWebhookAttempt(ctx, d, store.WebhookAttempt{Attempt: 1, StartedAt: time.Now(), StatusCode: 200},
		true); err != nil {
		t.Fatal(err)
	}
}
