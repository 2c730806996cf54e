package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/webhook"
)

// Webhooks emits events to the users' webhook endpoints and delivers them:
// EmitWebhookEvent records an event with one delivery per target and starts
// each delivery's workflow; AttemptWebhookDelivery makes one signed POST and
// records it; GiveUpWebhookDelivery marks a delivery failed for good.
type Webhooks struct {
	Store  *store.Store
	Sender webhook.Sender
	// Guard re-checks a URL before each attempt (the dialer checks the
	// address itself); a URL it refuses fails the delivery at once.
	Guard webhook.Guard
	// StartDelivery starts (or finds started) the workflow of a delivery;
	// the workers set it, since activities do not know the workflows.
	StartDelivery func(ctx context.Context, userID, deliveryID string) error
	Log           *slog.Logger
}

// eventNamespace and deliveryNamespace derive event and delivery ids
// (UUIDv5), so that emitting the same event again yields the same ids.
var (
	eventNamespace    = uuid.MustParse("3d0c8f5e-7a0b-4f55-9b1e-6c2a1f0d9e41")
	deliveryNamespace = uuid.MustParse("a5b7e2c4-1f3d-4e8a-b0c6-9d2e4f6a8b10")
)

// WebhookEventID is the id of the event of type that key (a job id, a
// subscription period, a notice id) identifies: the same on every retry and
// replay of the workflow that emits it.
func WebhookEventID(eventType, key string) string {
	return uuid.NewSHA1(eventNamespace, []byte(eventType+"/"+key)).String()
}

func webhookDeliveryID(eventID, target string) string {
	return uuid.NewSHA1(deliveryNamespace, []byte(eventID+"/"+target)).String()
}

// RequestWebhook is a generation request's own webhook: its URL and the
// event types it wants (empty: every generation event). It is signed with
// the account's secret.
type RequestWebhook struct {
	URL    string
	Events []string
}

// WebhookEventInput is one event to emit. Data is the event's data, already
// JSON (the workflow encodes it, deterministically).
type WebhookEventInput struct {
	ID      string // WebhookEventID
	UserID  string
	Type    string
	At      time.Time
	Data    json.RawMessage
	Request *RequestWebhook // nil: the user's endpoints only
}

// WebhookEventResult lists the deliveries the event got (none when nobody
// listens).
type WebhookEventResult struct {
	Deliveries []string
}

// EmitWebhookEvent records the event and a delivery for each endpoint of
// the user that takes its type (and for the request's own webhook_url),
// then starts their workflows. Every id is derived from the event's, so a
// retry records and starts nothing twice.
func (w *Webhooks) EmitWebhookEvent(ctx context.Context, in WebhookEventInput) (WebhookEventResult, error) {
	endpoints, err := w.Store.WebhookEndpointsFor(ctx, in.UserID, in.Type)
	if err != nil {
		return WebhookEventResult{}, err
	}
	var targets []store.NewWebhookDelivery
	for _, e := range endpoints {
		targets = append(targets, store.NewWebhookDelivery{ID: webhookDeliveryID(in.ID, e.ID), EndpointID: e.ID, URL: e.URL})
	}
	if r := in.Request; r != nil && r.URL != "" && webhook.Wants(r.Events, in.Type) {
		if err := w.ensureAccountSecret(ctx, in.UserID); err != nil {
			return WebhookEventResult{}, err
		}
		targets = append(targets, store.NewWebhookDelivery{ID: webhookDeliveryID(in.ID, "request"), URL: r.URL})
	}
	if len(targets) == 0 {
		return WebhookEventResult{}, nil
	}
	body, err := webhook.Encode(in.ID, in.Type, in.At, in.Data)
	if err != nil {
		return WebhookEventResult{}, err
	}
	ev := store.WebhookEvent{ID: in.ID, UserID: in.UserID, Type: in.Type, Payload: body}
	if err := w.Store.RecordWebhookEvent(ctx, ev, targets); err != nil {
		return WebhookEventResult{}, err
	}
	res := WebhookEventResult{Deliveries: make([]string, 0, len(targets))}
	for _, t := range targets {
		if err := w.StartDelivery(ctx, in.UserID, t.ID); err != nil {
			return WebhookEventResult{}, fmt.Errorf("start webhook delivery %s of %s: %w", t.ID, in.Type, err)
		}
		res.Deliveries = append(res.Deliveries, t.ID)
	}
	w.log().InfoContext(ctx, "webhook event emitted", "event_id", in.ID, "type", in.Type, "user_id", in.UserID,
		"deliveries", len(targets))
	return res, nil
}

// ensureAccountSecret creates the account's signing secret on first use.
func (w *Webhooks) ensureAccountSecret(ctx context.Context, userID string) error {
	candidate, err := webhook.NewSecret()
	if err != nil {
		return err
	}
	_, err = w.Store.WebhookSecret(ctx, userID, candidate)
	return err
}

// WebhookAttemptInput is one attempt of a delivery (Attempt counts from 1).
type WebhookAttemptInput struct {
	DeliveryID string
	Attempt    int
}

// WebhookAttemptResult is how an attempt went. Gone: the delivery no
// longer exists (its endpoint or user was deleted). Final: the URL is
// refused outright, so retrying cannot help.
type WebhookAttemptResult struct {
	Delivered  bool
	Gone       bool
	Final      bool
	StatusCode int
	Error      string
}

// AttemptWebhookDelivery makes one signed POST of a delivery and records
// it. A delivery already delivered (a retried activity) is not sent again.
// Only a failure to read or record is an error (and retried); whatever the
// receiver does is in the result.
func (w *Webhooks) AttemptWebhookDelivery(ctx context.Context, in WebhookAttemptInput) (WebhookAttemptResult, error) {
	send, err := w.Store.WebhookToSend(ctx, in.DeliveryID)
	if errors.Is(err, store.ErrNotFound) {
		return WebhookAttemptResult{Gone: true}, nil
	}
	if err != nil {
		return WebhookAttemptResult{}, err
	}
	if send.Status == store.WebhookDelivered {
		return WebhookAttemptResult{Delivered: true}, nil
	}
	res, final := w.send(ctx, send)
	err = w.Store.RecordWebhookAttempt(ctx, in.DeliveryID, store.WebhookAttempt{Attempt: in.Attempt,
		StartedAt: res.StartedAt, Duration: res.Duration, StatusCode: res.StatusCode, Excerpt: res.Excerpt,
		Error: res.Error}, res.Delivered)
	if errors.Is(err, store.ErrNotFound) {
		return WebhookAttemptResult{Gone: true}, nil
	}
	if err != nil {
		return WebhookAttemptResult{}, err
	}
	w.log().InfoContext(ctx, "webhook attempt", "delivery_id", in.DeliveryID, "event_id", send.EventID,
		"user_id", send.UserID, "attempt", in.Attempt, "delivered", res.Delivered, "status", res.StatusCode,
		"duration_ms", res.Duration.Milliseconds(), "err", res.Error)
	return WebhookAttemptResult{Delivered: res.Delivered, Final: final, StatusCode: res.StatusCode, Error: res.Error}, nil
}

// send checks the URL and sends; final says the URL itself is refused.
func (w *Webhooks) send(ctx context.Context, s store.WebhookSend) (webhook.Result, bool) {
	if err := w.Guard.CheckURL(s.URL); err != nil {
		return webhook.Result{StartedAt: time.Now(), Error: "refused: the URL " + err.Error()}, true
	}
	res, err := w.Sender.Send(ctx, webhook.Message{URL: s.URL, Secret: s.Secret, PreviousSecret: s.PreviousSecret, ID: s.EventID,
		Body: s.Payload})
	if err != nil {
		// The secret cannot sign: nothing a retry changes.
		return webhook.Result{StartedAt: time.Now(), Error: err.Error()}, true
	}
	return res, false
}

// GiveUpWebhookDelivery marks a delivery failed: its retries ran out.
func (w *Webhooks) GiveUpWebhookDelivery(ctx context.Context, deliveryID string) error {
	return w.Store.FailWebhookDelivery(ctx, deliveryID)
}

func (w *Webhooks) log() *slog.Logger {
	if w.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Log
}
