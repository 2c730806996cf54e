package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
)

// WebhookDeliveryWorkflow is the webhook delivery workflow's type name.
const WebhookDeliveryWorkflow = "WebhookDelivery"

// WebhookDeliveryID is the workflow id of a delivery.
func WebhookDeliveryID(deliveryID string) string { return "webhook-delivery/" + deliveryID }

// The retry schedule of a delivery: the first retry DefaultWebhookFirstRetry
// after the first failure, each wait twice the one before, at most
// WebhookMaxInterval apart, for WebhookRetryWindow from the first attempt.
const (
	DefaultWebhookFirstRetry = 30 * time.Second
	WebhookMaxInterval       = 6 * time.Hour
	WebhookRetryWindow       = 72 * time.Hour
)

// WebhookDeliveryInput starts the delivery of one event to one target.
type WebhookDeliveryInput struct {
	DeliveryID string
	// FirstRetry is the wait after the first failed attempt (0:
	// DefaultWebhookFirstRetry); tests shorten it.
	FirstRetry time.Duration
}

// WebhookDeliveryResult is how a delivery ended: store.WebhookDelivered,
// store.WebhookFailed, or "gone" when its endpoint was deleted meanwhile.
type WebhookDeliveryResult struct {
	Status   string
	Attempts int
}

// WebhookGone is the result status of a delivery whose endpoint (or user)
// was deleted while it was retrying.
const WebhookGone = "gone"

// WebhookDeliveryOptions starts a delivery's workflow on the control queue.
// A delivery id is used once: a second start of the same id (a retried
// emit) finds the first run, running or closed, and starts nothing.
func WebhookDeliveryOptions(userID, deliveryID string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       WebhookDeliveryID(deliveryID),
		TaskQueue:                catalog.ControlQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes:    temporal.NewSearchAttributes(SearchUserID.ValueSet(userID)),
	}
}

// StartWebhookDelivery starts a delivery's workflow through c; one already
// started (running or closed) is success.
func StartWebhookDelivery(ctx context.Context, c client.Client, userID string, in WebhookDeliveryInput) error {
	_, err := c.ExecuteWorkflow(ctx, WebhookDeliveryOptions(userID, in.DeliveryID), WebhookDeliveryWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		return fmt.Errorf("start webhook delivery %s: %w", in.DeliveryID, err)
	}
	return nil
}

// WebhookRetryDelay is the wait after the n-th failed attempt (n >= 1).
func WebhookRetryDelay(first time.Duration, n int) time.Duration {
	if first <= 0 {
		first = DefaultWebhookFirstRetry
	}
	d := first
	for i := 1; i < n && d < WebhookMaxInterval; i++ {
		d *= 2
	}
	return min(d, WebhookMaxInterval)
}

// WebhookDelivery POSTs one event to one target until the receiver answers
// 2xx, retrying on WebhookRetryDelay's schedule for WebhookRetryWindow,
// then gives up. Every attempt carries the same webhook-id (the event's),
// so a receiver that got an attempt whose answer was lost can drop the
// repeat. Waits are durable timers: a delivery survives restarts.
func WebhookDelivery(ctx workflow.Context, in WebhookDeliveryInput) (WebhookDeliveryResult, error) {
	started := workflow.Now(ctx)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           catalog.ControlQueue,
		StartToCloseTimeout: time.Minute, // the POST itself is bounded at 15 s
		RetryPolicy: &temporal.RetryPolicy{ // the database, not the receiver
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 5},
	})
	for attempt := 1; ; attempt++ {
		var r activities.WebhookAttemptResult
		err := workflow.ExecuteActivity(actx, webhookActivity.AttemptWebhookDelivery, activities.WebhookAttemptInput{
			DeliveryID: in.DeliveryID, Attempt: attempt}).Get(ctx, &r)
		switch {
		case err != nil:
			workflow.GetLogger(ctx).Warn("webhook attempt not recorded", "delivery_id", in.DeliveryID, "attempt", attempt, "error", err)
		case r.Delivered:
			return WebhookDeliveryResult{Status: store.WebhookDelivered, Attempts: attempt}, nil
		case r.Gone:
			return WebhookDeliveryResult{Status: WebhookGone, Attempts: attempt - 1}, nil
		case r.Final:
			return giveUp(ctx, actx, in, attempt)
		}
		wait := WebhookRetryDelay(in.FirstRetry, attempt)
		if workflow.Now(ctx).Add(wait).Sub(started) > WebhookRetryWindow {
			return giveUp(ctx, actx, in, attempt)
		}
		if err := workflow.Sleep(ctx, wait); err != nil {
			return WebhookDeliveryResult{Status: store.WebhookPending, Attempts: attempt}, err
		}
	}
}

func giveUp(ctx, actx workflow.Context, in WebhookDeliveryInput, attempts int) (WebhookDeliveryResult, error) {
	if err := workflow.ExecuteActivity(actx, webhookActivity.GiveUpWebhookDelivery, in.DeliveryID).Get(ctx, nil); err != nil {
		return WebhookDeliveryResult{Status: store.WebhookPending, Attempts: attempts},
			fmt.Errorf("mark webhook delivery %s failed: %w", in.DeliveryID, err)
	}
	return WebhookDeliveryResult{Status: store.WebhookFailed, Attempts: attempts}, nil
}

// emit sends an event to the user's webhooks: EmitWebhookEvent records it
// with its deliveries and starts their workflows, as a local activity (a
// short database write beside the control worker). The event id comes from
// what happened, so a replayed or retried emit adds nothing. It runs on a
// disconnected context (a canceled job still reports its end) and never
// fails the caller: the money has moved by then, and a lost event is
// logged.
func emit(ctx workflow.Context, eventType, key, userID string, data any, request *activities.RequestWebhook) {
	raw, err := json.Marshal(data)
	if err != nil {
		workflow.GetLogger(ctx).Error("encode webhook event", "type", eventType, "error", err)
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	lctx := workflow.WithLocalActivityOptions(dctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: time.Hour,
		StartToCloseTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2,
			MaximumInterval: time.Minute},
	})
	in := activities.WebhookEventInput{ID: activities.WebhookEventID(eventType, key), UserID: userID, Type: eventType,
		At: workflow.Now(ctx), Data: raw, Request: request}
	if err := workflow.ExecuteLocalActivity(lctx, webhookActivity.EmitWebhookEvent, in).Get(dctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("emit webhook event", "type", eventType, "event_id", in.ID, "error", err)
	}
}

// webhookActivity names the webhook activities; the worker registers the
// real one.
var webhookActivity *activities.Webhooks
