package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

// tenantTables are the tables row-level security guards.
var tenantTables = []string{"images", "generations", "credits", "credit_holds", "credit_transactions",
	"usage_records", "api_keys", "uploads", "webhook_endpoints", "webhook_secrets", "webhook_events",
	"webhook_deliveries", "webhook_attempts", "user_storage"}

// ownerAndAPIPools connects to a fresh database as its owner (as workers
// do) and as the API's role, under row-level security.
func ownerAndAPIPools(t *testing.T) (owner, api *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	owner, err := store.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	if api, err = store.ConnectScoped(ctx, url, store.APIRole); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	return owner, api
}

// Postgres itself keeps tenants apart for the API's role, even for a query
// with no user filter at all.
func TestRowLevelSecurity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	owner, api := ownerAndAPIPools(t)
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
	_, err := api.Exec(asAlice, `INSERT INTO credits (user_id, total_credits, source, valid_from, valid_until)
		VALUES ($1, 1000, 'forged', now(), now() + interval '1 day')`, bob.ID)
	if err == nil {
		t.Fatal("alice's scope inserted credits for bob")
	}
	// The API's store methods work through the same role, with the scope
	// set per acquire (New) or sent with each statement (NewScoped).
	for name, scoped := range map[string]*store.Store{"New": store.New(api), "NewScoped": store.NewScoped(api)} {
		storeKeepsTenantsApart(t, name, scoped, alice.ID, bob.ID)
	}
}

// storeKeepsTenantsApart checks the API store's statements, and its
// transactions, see the rows of the context's scope and no others, on
// connections that served other scopes just before.
func storeKeepsTenantsApart(t *testing.T, name string, s *store.Store, alice, bob string) {
	t.Helper()
	ctx := context.Background()
	asAlice := store.WithScope(ctx, store.Scope{UserID: alice})
	asBob := store.WithScope(ctx, store.Scope{UserID: bob})
	admin := store.WithScope(ctx, store.Scope{Admin: true})
	for i := range 20 { // more rounds than the pool has connections
		if b, err := s.Balance(asAlice, alice); err != nil || b.Available != 46 {
			t.Fatalf("%s round %d: alice's balance through the API role: %+v %v", name, i, b, err)
		}
		if b, err := s.Balance(asAlice, bob); err != nil || b.Granted != 0 {
			t.Fatalf("%s round %d: bob's balance seen from alice's scope: %+v %v", name, i, b, err)
		}
		if b, err := s.Balance(admin, bob); err != nil || b.Granted == 0 {
			t.Fatalf("%s round %d: bob's balance as admin: %+v %v", name, i, b, err)
		}
		if b, err := s.Balance(ctx, bob); err != nil || b.Granted != 0 {
			t.Fatalf("%s round %d: bob's balance with no scope: %+v %v", name, i, b, err)
		}
		if keys, err := s.ListAPIKeys(asBob, alice); err != nil || len(keys) != 0 {
			t.Fatalf("%s round %d: alice's keys seen from bob's scope: %d %v", name, i, len(keys), err)
		}
		if grants, err := s.Grants(asAlice, alice); err != nil || len(grants) != 1 || grants[0].Used != 4 {
			t.Fatalf("%s round %d: alice's grants: %+v %v", name, i, grants, err)
		}
		hour := time.Now().Add(-time.Hour)
		if u, err := s.UsageSince(asAlice, alice, hour); err != nil || u.Generations != 1 || u.Images != 1 ||
			u.Credits != 4 || u.StorageBytes == 0 {
			t.Fatalf("%s round %d: alice's usage: %+v %v", name, i, u, err)
		}
		if u, err := s.UsageSince(asBob, alice, hour); err != nil || u.Generations != 0 || u.StorageBytes != 0 {
			t.Fatalf("%s round %d: alice's usage from bob's scope: %+v %v", name, i, u, err)
		}
	}
	// A transaction (CreateAPIKey) works in the scope, and only in it.
	if _, _, err := s.CreateAPIKey(asAlice, alice, name, nil); err != nil {
		t.Fatalf("%s: alice creates a key in her scope: %v", name, err)
	}
	if _, _, err := s.CreateAPIKey(asAlice, bob, name, nil); err == nil {
		t.Fatalf("%s: alice's scope created a key for bob", name)
	}
	if keys, err := s.ListAPIKeys(asAlice, alice); err != nil || len(keys) == 0 {
		t.Fatalf("%s: alice's keys in her scope: %d %v", name, len(keys), err)
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
