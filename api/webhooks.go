package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/workflows"
)

// maxWebhookBytes bounds a Stripe event body; real events are a few KiB.
const maxWebhookBytes = 512 << 10

// eventObject is the part of an event's data.object that routes it.
type eventObject struct {
	ID            string            `json:"id"`
	Object        string            `json:"object"`
	PaymentIntent string            `json:"payment_intent"`
	Customer      string            `json:"customer"`
	PaymentMethod string            `json:"payment_method"`
	Metadata      map[string]string `json:"metadata"`
	// A charge's refunds: the amount refunded so far, and whether that is
	// all of it.
	AmountRefunded int64 `json:"amount_refunded"`
	Refunded       bool  `json:"refunded"`
}

// refundedCents is how much of a refunded charge has been refunded in all,
// 0 for the whole of it (a charge fully refunded, or an event that does not
// say).
func (o eventObject) refundedCents() int64 {
	if o.Refunded || o.AmountRefunded <= 0 {
		return 0
	}
	return o.AmountRefunded
}

// stripeWebhook receives Stripe's events. The signature is checked with
// stripe-go's webhook package (HMAC over the timestamp and body, five
// minutes' tolerance); each event id is stored once, so a redelivery is
// answered 200 and changes nothing; the event then goes to the workflow of
// the subscription it concerns. A failure to deliver forgets the event and
// answers 503, so Stripe delivers it again.
func (s *Server) stripeWebhook(c *gin.Context) {
	if s.StripeWebhookSecret == "" {
		problem(c, http.StatusServiceUnavailable, "webhooks-unavailable", "Webhooks unavailable",
			"STRIPE_WEBHOOK_SECRET is not configured", nil)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxWebhookBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		bodyTooLarge(c, maxWebhookBytes)
		return
	}
	if err != nil {
		invalid(c, "the event body could not be read: "+err.Error())
		return
	}
	// The signature first, then the JSON: a signed body that is not an
	// event is Stripe's (or the secret holder's) mistake, not a forgery.
	if err := webhook.ValidatePayload(body, c.GetHeader("Stripe-Signature"), s.StripeWebhookSecret); err != nil {
		problem(c, http.StatusBadRequest, "invalid-signature", "Invalid signature",
			"the Stripe-Signature header does not match this body: "+err.Error(), nil)
		return
	}
	var ev stripe.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		invalid(c, "the event is not JSON: "+err.Error())
		return
	}
	var obj eventObject
	if ev.Data != nil {
		if err := json.Unmarshal(ev.Data.Raw, &obj); err != nil {
			invalid(c, "data.object is not an object: "+err.Error())
			return
		}
	}
	if errs := checkEvent(ev, obj); len(errs) > 0 {
		// Refused before it is stored: an id Postgres cannot hold would
		// otherwise fail every delivery with a 503 Stripe retries for days.
		invalid(c, "the event has invalid fields", errs...)
		return
	}
	ctx := c.Request.Context()
	sub, err := s.eventSubscription(ctx, ev.Type, obj)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		unavailable(c, err)
		return
	}
	first, err := s.Store.RecordStripeEvent(ctx, ev.ID, string(ev.Type), sub.ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	if !first || sub.ID == "" {
		c.JSON(http.StatusOK, gin.H{"received": true, "duplicate": !first, "applied": false})
		return
	}
	if err := s.deliverEvent(ctx, ev, obj, sub); err != nil {
		if ferr := s.Store.ForgetStripeEvent(context.WithoutCancel(ctx), ev.ID); ferr != nil {
			_ = c.Error(ferr)
		}
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"received": true, "duplicate": false, "applied": true, "subscription_id": sub.ID})
}

// eventSubscription finds the subscription an event concerns; ErrNotFound
// means none of ours (the event is recorded and ignored).
func (s *Server) eventSubscription(ctx context.Context, typ stripe.EventType, obj eventObject) (store.Subscription, error) {
	switch typ {
	case workflows.EventPaymentSucceeded, workflows.EventPaymentFailed:
		if id := obj.Metadata["subscription_id"]; id != "" {
			return s.Store.GetSubscription(ctx, id)
		}
		return s.Store.SubscriptionByPaymentIntent(ctx, obj.ID)
	case workflows.EventChargeRefunded, workflows.EventDisputeCreated:
		return s.Store.SubscriptionByPaymentIntent(ctx, obj.PaymentIntent)
	case workflows.EventCustomerDeleted:
		return s.Store.SubscriptionByCustomer(ctx, obj.ID)
	case "setup_intent.succeeded":
		return s.Store.SubscriptionByCustomer(ctx, obj.Customer)
	}
	return store.Subscription{}, store.ErrNotFound
}

// deliverEvent signals the subscription's workflow; a saved card starts
// the billing of a subscription that was waiting for it.
func (s *Server) deliverEvent(ctx context.Context, ev stripe.Event, obj eventObject, sub store.Subscription) error {
	if ev.Type == "setup_intent.succeeded" {
		return s.cardSaved(ctx, obj, sub)
	}
	signal := workflows.StripeEvent{ID: ev.ID, Type: string(ev.Type), PaymentIntentID: obj.PaymentIntent}
	if ev.Type == workflows.EventChargeRefunded {
		signal.RefundedCents = obj.refundedCents()
	}
	if obj.Object == "payment_intent" {
		signal.PaymentIntentID = obj.ID
	}
	err := s.Temporal.SignalWorkflow(ctx, workflows.SubscriptionID(sub.ID), "", workflows.StripeEventSignal, signal)
	if isNotFound(err) {
		return s.applyAfterEnd(ctx, signal, sub.ID)
	}
	if err != nil {
		return fmt.Errorf("signal subscription %s with %s: %w", sub.ID, ev.ID, err)
	}
	return nil
}

func (s *Server) cardSaved(ctx context.Context, obj eventObject, sub store.Subscription) error {
	if sub.Status != catalog.SubIncomplete || obj.PaymentMethod == "" || s.Payments == nil {
		return nil
	}
	if err := s.Payments.SaveCard(ctx, sub.CustomerID, obj.PaymentMethod); err != nil {
		return err
	}
	plan, err := s.billingPlan(ctx, sub.Plan)
	if err != nil {
		return err
	}
	return s.startCheckout(ctx, sub, plan, true)
}

// applyAfterEnd applies an event whose subscription has ended: a refund or
// a dispute still moves money (a canceled customer can be refunded), so it
// is applied here, through the same idempotent activities the workflow
// uses; anything else has nothing left to change.
func (s *Server) applyAfterEnd(ctx context.Context, ev workflows.StripeEvent, subID string) error {
	log := s.Log.With("event", ev.ID, "type", ev.Type, "subscription_id", subID)
	switch {
	case s.Billing == nil:
	case ev.Type == workflows.EventChargeRefunded:
		res, err := s.Billing.RefundPart(ctx, activities.RefundInput{PaymentIntentID: ev.PaymentIntentID, RefundedCents: ev.RefundedCents})
		if err != nil {
			return fmt.Errorf("refund %s: %w", ev.PaymentIntentID, err)
		}
		log.InfoContext(ctx, "refund applied after the subscription ended", "clawed_back", res.ClawedBack)
		return nil
	case ev.Type == workflows.EventDisputeCreated:
		if err := s.Billing.Dispute(ctx, ev.PaymentIntentID); err != nil {
			return fmt.Errorf("dispute %s: %w", ev.PaymentIntentID, err)
		}
		return nil
	}
	log.InfoContext(ctx, "stripe event for an ended subscription: nothing to change")
	return nil
}

// maxStripeIDChars is what stripe_events.id holds; Stripe's ids are far
// shorter.
const maxStripeIDChars = 255

// checkEvent refuses an event whose id, type or routing ids are not
// Stripe-shaped: ids are printable ASCII without spaces (evt_..., pi_...),
// at most maxStripeIDChars; the id is required.
func checkEvent(ev stripe.Event, obj eventObject) []FieldError {
	var errs []FieldError
	check := func(field, v string, required bool) {
		switch {
		case v == "" && required:
			errs = append(errs, FieldError{Field: field, Message: "is required"})
		case len(v) > maxStripeIDChars:
			errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf("must be at most %d characters", maxStripeIDChars)})
		case v != "" && !printableToken(v):
			errs = append(errs, FieldError{Field: field, Message: "must be printable ASCII without spaces"})
		}
	}
	check("id", ev.ID, true)
	check("type", string(ev.Type), true)
	check("data.object.id", obj.ID, false)
	check("data.object.payment_intent", obj.PaymentIntent, false)
	check("data.object.customer", obj.Customer, false)
	check("data.object.payment_method", obj.PaymentMethod, false)
	check("data.object.metadata.subscription_id", obj.Metadata["subscription_id"], false)
	return errs
}
