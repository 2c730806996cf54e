package payments

import (
	"context"
	"fmt"
	"time"

	"github.com/stripe/stripe-go/v76"
)

// ChargeInput asks Stripe to charge a subscription period, off-session, with
// the customer's saved payment method. IdempotencyKey is subscription id +
// period start, so a retried charge never charges twice.
type ChargeInput struct {
	SubscriptionID string
	UserID         string
	CustomerID     string
	PlanSlug       string
	AmountCents    int64
	Currency       string
	PeriodStart    time.Time
	IdempotencyKey string
	Description    string
	// PaymentMethodID, when set, is charged instead of the customer's
	// default payment method (invoice_settings.default_payment_method).
	PaymentMethodID string
}

// ChargeResult is a successful charge.
type ChargeResult struct {
	PaymentIntentID string
	AmountCents     int64
	Status          string
}

// Charge charges one period off-session, with in.PaymentMethodID or else the
// customer's default payment method. A charge the customer must act on is a
// *DeclineError; a Stripe outage, rate limit or network failure is a plain
// error, and a retry with the same idempotency key gets Stripe's first
// outcome.
func (g *Gateway) Charge(ctx context.Context, in ChargeInput) (ChargeResult, error) {
	if err := in.Validate(); err != nil {
		return ChargeResult{}, err
	}
	pm := in.PaymentMethodID
	if pm == "" {
		var err error
		if pm, err = g.defaultPaymentMethod(ctx, in.CustomerID); err != nil {
			return ChargeResult{}, err
		}
		if pm == "" {
			msg := fmt.Sprintf("customer %s has no default payment method", in.CustomerID)
			return ChargeResult{}, &DeclineError{Msg: msg, Details: DeclineDetails{Code: DeclineNoPaymentMethod, Message: msg}}
		}
	}
	pi, err := g.api.PaymentIntents.New(chargeParams(ctx, in, pm))
	if err != nil {
		return ChargeResult{}, ClassifyError("create payment intent", err)
	}
	if pi.Status == stripe.PaymentIntentStatusProcessing {
		// A replay of the idempotent create answers the first response,
		// "processing" forever; read the intent's current status instead.
		p := &stripe.PaymentIntentParams{}
		p.Context = ctx
		if pi, err = g.api.PaymentIntents.Get(pi.ID, p); err != nil {
			return ChargeResult{}, ClassifyError("read payment intent", err)
		}
	}
	return chargeOutcome(pi)
}

func chargeParams(ctx context.Context, in ChargeInput, pm string) *stripe.PaymentIntentParams {
	params := &stripe.PaymentIntentParams{
		Customer:      stripe.String(in.CustomerID),
		Amount:        stripe.Int64(in.AmountCents),
		Currency:      stripe.String(in.Currency),
		PaymentMethod: stripe.String(pm),
		Confirm:       stripe.Bool(true),
		OffSession:    stripe.Bool(true),
	}
	if in.Description != "" {
		params.Description = stripe.String(in.Description)
	}
	params.Context = ctx
	params.SetIdempotencyKey(in.IdempotencyKey)
	params.AddMetadata("subscription_id", in.SubscriptionID)
	params.AddMetadata("user_id", in.UserID)
	params.AddMetadata("period", periodLabel(in.PeriodStart))
	if in.PlanSlug != "" {
		params.AddMetadata("plan", in.PlanSlug)
	}
	return params
}

// Validate refuses a charge that must not be sent (ErrInvalidRequest).
func (in ChargeInput) Validate() error {
	var msg string
	switch {
	case in.IdempotencyKey == "":
		// Without a key a retry could charge twice: refuse outright.
		msg = "charge: idempotency key is required"
	case in.CustomerID == "":
		msg = "charge: customer is required"
	case in.AmountCents <= 0:
		msg = fmt.Sprintf("charge: amount %d cents must be positive", in.AmountCents)
	case in.Currency == "":
		msg = "charge: currency is required"
	default:
		return nil
	}
	return refused(msg, nil)
}

func (g *Gateway) defaultPaymentMethod(ctx context.Context, customerID string) (string, error) {
	p := &stripe.CustomerParams{}
	p.Context = ctx
	c, err := g.api.Customers.Get(customerID, p)
	if err != nil {
		return "", ClassifyError("read customer "+customerID, err)
	}
	if c.InvoiceSettings != nil && c.InvoiceSettings.DefaultPaymentMethod != nil {
		return c.InvoiceSettings.DefaultPaymentMethod.ID, nil
	}
	return "", nil
}

// chargeOutcome turns a confirmed PaymentIntent into a result or an error.
func chargeOutcome(pi *stripe.PaymentIntent) (ChargeResult, error) {
	res := ChargeResult{PaymentIntentID: pi.ID, AmountCents: pi.Amount, Status: string(pi.Status)}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		return res, nil
	case stripe.PaymentIntentStatusProcessing:
		// Still settling: retry later and the intent is read again.
		return ChargeResult{}, fmt.Errorf("payment intent %s still processing", pi.ID)
	case stripe.PaymentIntentStatusRequiresPaymentMethod, stripe.PaymentIntentStatusRequiresAction,
		stripe.PaymentIntentStatusRequiresConfirmation, stripe.PaymentIntentStatusCanceled:
		// Off-session, nobody is there to authenticate or pick another
		// card: the customer must act, which is dunning, not a retry.
		d := DeclineDetails{PaymentIntentID: pi.ID, Code: string(pi.Status),
			Message: "payment intent " + string(pi.Status)}
		if e := pi.LastPaymentError; e != nil && e.Type == stripe.ErrorTypeCard {
			d.Code, d.Message = declineCode(e), e.Msg
		}
		return ChargeResult{}, &DeclineError{Msg: fmt.Sprintf("charge %s: %s", pi.ID, d.Message), Details: d}
	}
	// requires_capture cannot happen with automatic capture; retrying will
	// not change it, so stop and let a person look.
	return ChargeResult{}, refused(fmt.Sprintf("payment intent %s in unexpected status %q", pi.ID, pi.Status), nil)
}
