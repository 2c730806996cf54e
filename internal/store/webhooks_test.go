package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

// An event recorded twice (a retried activity) is one event with one
// delivery per target; each target is signed with its own secret; a
// repeated attempt number overwrites; a delivered delivery stays
// delivered when given up.
func TestWebhookEventsAndDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	e, err := s.CreateWebhookEndpoint(ctx, store.WebhookEndpoint{UserID: u.ID, URL: "https://example.com/a",
		Events: []string{"generation.completed"}}, "whsec_endpoint")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.WebhookSecret(ctx, u.ID, "whsec_first"); err != nil || got != "whsec_first" {
		t.Fatalf("account secret %q, %v", got, err)
	}
	if got, _ := s.WebhookSecret(ctx, u.ID, "whsec_second"); got != "whsec_first" {
		t.Fatalf("the account secret changed to %q", got)
	}
	for typ, want := range map[string]int{"generation.completed": 1, "credits.low": 0} {
		if es, err := s.WebhookEndpointsFor(ctx, u.ID, typ); err != nil || len(es) != want {
			t.Fatalf("endpoints for %s: %d, %v; want %d", typ, len(es), err, want)
		}
	}

	ev := store.WebhookEvent{ID: uuid.NewString(), UserID: u.ID, Type: "generation.completed",
		Payload: []byte(`{"id":"x","type":"generation.completed","data":{}}`)}
	toEndpoint, toURL := uuid.NewString(), uuid.NewString()
	targets := []store.NewWebhookDelivery{{ID: toEndpoint, EndpointID: e.ID, URL: e.URL}, {ID: toURL, URL: "https://example.com/job"}}
	for range 2 {
		if err := s.RecordWebhookEvent(ctx, ev, targets); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := s.ListWebhookDeliveries(ctx, u.ID, store.WebhookDeliveryFilter{EventID: ev.ID}, store.Page{})
	if err != nil || len(ds) != 2 {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
	for id, secret := range map[string]string{toEndpoint: "whsec_endpoint", toURL: "whsec_first"} {
		w, err := s.WebhookToSend(ctx, id)
		if err != nil || w.Secret != secret || string(w.Payload) != string(ev.Payload) || w.EventID != ev.ID {
			t.Fatalf("to send %s: %+v %v; want secret %s and the payload byte for byte", id, w, err, secret)
		}
	}

	at := time.Now()
	for _, a := range []store.WebhookAttempt{{Attempt: 1, StartedAt: at, Error: "first try"},
		{Attempt: 1, StartedAt: at, StatusCode: 500, Error: "the receiver answered 500", Excerpt: "bad \x00 \xff"}} {
		if err := s.RecordWebhookAttempt(ctx, toEndpoint, a, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordWebhookAttempt(ctx, toEndpoint, store.WebhookAttempt{Attempt: 2, StartedAt: at, StatusCode: 204}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.FailWebhookDelivery(ctx, toEndpoint); err != nil {
		t.Fatal(err)
	}
	d, err := s.GetWebhookDelivery(ctx, u.ID, toEndpoint)
	if err != nil || d.Status != store.WebhookDelivered || len(d.Attempts) != 2 || d.Attempts[0].StatusCode != 500 ||
		d.Attempts[0].Excerpt != "bad \uFFFD \uFFFD" || d.FinishedAt == nil {
		t.Fatalf("delivery %+v, %v", d, err)
	}
	if err := s.FailWebhookDelivery(ctx, toURL); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.GetWebhookDelivery(ctx, u.ID, toURL); d.Status != store.WebhookFailed {
		t.Fatalf("given up: %+v", d)
	}

	// Deleting the endpoint takes its deliveries; the next attempt finds
	// nothing to send.
	if err := s.DeleteWebhookEndpoint(ctx, u.ID, e.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WebhookToSend(ctx, toEndpoint); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted endpoint's delivery: %v", err)
	}
	other := newUser(t, s)
	if _, err := s.GetWebhookDelivery(ctx, other.ID, toURL); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another user's delivery: %v", err)
	}
	if _, err := s.ReplayWebhookDelivery(ctx, other.ID, toURL, uuid.NewString()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another user's replay: %v", err)
	}
	replay, err := s.ReplayWebhookDelivery(ctx, u.ID, toURL, uuid.NewString())
	if err != nil || replay.ReplayOf != toURL || replay.Status != store.WebhookPending || replay.EventID != ev.ID ||
		len(replay.Attempts) != 0 {
		t.Fatalf("replay %+v, %v", replay, err)
	}
}

// Ten endpoints at most, even when created concurrently.
func TestWebhookEndpointLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	errs := make(chan error, 15)
	for range 15 {
		go func() {
			_, err := s.CreateWebhookEndpoint(ctx, store.WebhookEndpoint{UserID: u.ID, URL: "https://example.com/"}, "whsec_x")
			errs <- err
		}()
	}
	refused := 0
	for range 15 {
		switch err := <-errs; {
		case errors.Is(err, store.ErrTooManyWebhookEndpoints):
			refused++
		case err != nil:
			t.Fatal(err)
		}
	}
	if es, _ := s.ListWebhookEndpoints(ctx, u.ID); len(es) != store.MaxWebhookEndpoints || refused != 5 {
		t.Fatalf("%d endpoints, %d refused", len(es), refused)
	}
}
