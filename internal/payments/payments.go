// Package payments is Easel's Stripe gateway: customers, saved cards and
// off-session charges, each request keyed for idempotency. It knows nothing
// of Temporal: errors say what the caller should do (a *DeclineError needs
// the customer, ErrInvalidRequest a person, anything else may be retried),
// and the billing activities and the API map them to their own terms.
package payments

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
)

// ErrInvalidRequest is a request Stripe refused as malformed (bad
// parameters, unknown customer, revoked key, an idempotency key reused with
// other parameters), or one that was invalid before it was sent. Sending it
// again gets the same answer.
var ErrInvalidRequest = errors.New("payments: invalid request")

// DeclineNoPaymentMethod is the decline code a charge gets when Stripe gave
// no card error but the customer has no default payment method.
const DeclineNoPaymentMethod = "no_payment_method"

// DeclineDetails say why a card was refused.
type DeclineDetails struct {
	PaymentIntentID string `json:"payment_intent_id"`
	Code            string `json:"code"`
	Message         string `json:"message"`
}

// DeclineError is a charge or a card the customer must act on: a declined
// card, authentication required, no payment method. Retrying will not help.
type DeclineError struct {
	Msg     string
	Details DeclineDetails
	Err     error // the Stripe error, when there was one
}

func (e *DeclineError) Error() string { return e.Msg }

func (e *DeclineError) Unwrap() error { return e.Err }

// Gateway talks to Stripe.
type Gateway struct {
	api *client.API
}

// New builds a gateway. baseURL "" means Stripe itself; tests and `easel dev`
// point it at stripe-mock. httpClient nil means stripe-go's default client.
func New(key, baseURL string, httpClient *http.Client) *Gateway {
	cfg := &stripe.BackendConfig{HTTPClient: httpClient}
	if baseURL != "" {
		cfg.URL = stripe.String(baseURL)
	}
	backends := &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, cfg),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, cfg),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, cfg),
	}
	return &Gateway{api: client.New(key, backends)}
}

// ClassifyError decides what a failed Stripe call means. Transport failures,
// Stripe outages (5xx, api_error), rate limits (429) and lock or
// idempotency-key contention are transient: a plain wrapped error. A card
// error is a *DeclineError. Anything else Stripe refused will be refused
// again: it wraps ErrInvalidRequest. Every result wraps err.
func ClassifyError(op string, err error) error {
	var se *stripe.Error
	if !errors.As(err, &se) {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch {
	case se.HTTPStatusCode == http.StatusTooManyRequests || se.HTTPStatusCode >= 500,
		se.Type == stripe.ErrorTypeAPI,
		se.Code == stripe.ErrorCodeRateLimit, se.Code == stripe.ErrorCodeLockTimeout,
		se.Code == stripe.ErrorCodeIdempotencyKeyInUse:
		return fmt.Errorf("%s: stripe %d %s: %w", op, se.HTTPStatusCode, se.Type, err)
	case se.Type == stripe.ErrorTypeCard:
		d := DeclineDetails{Code: declineCode(se), Message: se.Msg}
		if se.PaymentIntent != nil {
			d.PaymentIntentID = se.PaymentIntent.ID
		}
		return &DeclineError{Msg: fmt.Sprintf("%s: card declined: %s", op, se.Msg), Details: d, Err: err}
	}
	return refused(fmt.Sprintf("%s: stripe %s: %s", op, se.Type, se.Msg), err)
}

// refusedError is a request that will be refused again: it is
// ErrInvalidRequest and wraps the cause, with its own message.
type refusedError struct {
	msg   string
	cause error
}

func refused(msg string, cause error) error { return &refusedError{msg: msg, cause: cause} }

func (e *refusedError) Error() string { return e.msg }

func (e *refusedError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrInvalidRequest}
	}
	return []error{ErrInvalidRequest, e.cause}
}

// declineCode is the most specific reason Stripe gave: the issuer's decline
// code (insufficient_funds, ...) when present, else the error code.
func declineCode(e *stripe.Error) string {
	if e.DeclineCode != "" {
		return string(e.DeclineCode)
	}
	return string(e.Code)
}

// periodLabel is how a charge's metadata names its period.
func periodLabel(t time.Time) string { return t.UTC().Format(time.RFC3339) }
