package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"
	"go.temporal.io/sdk/temporal"

	"github.com/easel/easel/internal/balancecache"
	"github.com/easel/easel/internal/notify"
	"github.com/easel/easel/internal/store"
)

// errNoStripe fails a charge on a worker without STRIPE_SECRET_KEY. It
// retries: a worker with Stripe configured (after a deploy) picks it up.
var errNoStripe = errors.New("stripe is not configured on this worker (STRIPE_SECRET_KEY)")

// TypeStripeInvalidRequest is a charge or customer request Stripe refused as
// malformed (bad parameters, unknown customer, revoked key, an idempotency
// key reused with other parameters). Retrying sends the same request, so it
// is never retried; it needs a person.
const TypeStripeInvalidRequest = "StripeInvalidRequest"

// Decline codes Billing sets itself, when Stripe gave no card error but the
// customer still has to act before a charge can succeed.
const (
	DeclineNoPaymentMethod = "no_payment_method" // the customer has no default payment method
)

// Billing holds the activities that talk to Stripe. Each call carries an
// idempotency key derived from the workflow's input, so an activity retry
// (or a replayed workflow) never charges or creates twice.
type Billing struct {
	Stripe *client.API
	Store  *store.Store
	Log    *slog.Logger
	// Notices delivers billing notices; nil logs them.
	Notices notify.Sender
	// Balances, when set, is kept in step with grants and clawbacks.
	Balances *balancecache.Cache
}

// NewStripeAPI builds a Stripe client. baseURL "" means Stripe itself; tests
// point it at stripe-mock. httpClient nil means stripe-go's default client.
func NewStripeAPI(key, baseURL string, httpClient *http.Client) *client.API {
	cfg := &stripe.BackendConfig{HTTPClient: httpClient}
	if baseURL != "" {
		cfg.URL = stripe.String(baseURL)
	}
	backends := &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, cfg),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, cfg),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, cfg),
	}
	return client.New(key, backends)
}

// Charge charges one subscription period off-session, with in.PaymentMethodID
// or else the customer's default payment method. A charge the customer must
// act on (declined card, authentication required, no payment method) is a
// non-retryable CardDeclined error with DeclineDetails; a Stripe outage,
// rate limit or network failure is a plain error, so the activity retries
// with the same idempotency key and Stripe answers the first outcome.
func (b *Billing) Charge(ctx context.Context, in ChargeInput) (ChargeResult, error) {
	if b.Stripe == nil {
		return ChargeResult{}, errNoStripe
	}
	if err := in.validate(); err != nil {
		return ChargeResult{}, temporal.NewNonRetryableApplicationError(err.Error(), TypeInvalidRequest, err)
	}
	pm := in.PaymentMethodID
	if pm == "" {
		var err error
		if pm, err = b.defaultPaymentMethod(ctx, in.CustomerID); err != nil {
			return ChargeResult{}, err
		}
		if pm == "" {
			msg := fmt.Sprintf("customer %s has no default payment method", in.CustomerID)
			return ChargeResult{}, temporal.NewNonRetryableApplicationError(msg, TypeCardDeclined, nil,
				DeclineDetails{Code: DeclineNoPaymentMethod, Message: msg})
		}
	}
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
	params.AddMetadata("period", in.PeriodStart.UTC().Format(time.RFC3339))
	if in.PlanSlug != "" {
		params.AddMetadata("plan", in.PlanSlug)
	}
	pi, err := b.Stripe.PaymentIntents.New(params)
	if err != nil {
		return ChargeResult{}, classifyStripeError("create payment intent", err)
	}
	if pi.Status == stripe.PaymentIntentStatusProcessing {
		// A replay of the idempotent create answers the first response,
		// "processing" forever; read the intent's current status instead.
		p := &stripe.PaymentIntentParams{}
		p.Context = ctx
		if pi, err = b.Stripe.PaymentIntents.Get(pi.ID, p); err != nil {
			return ChargeResult{}, classifyStripeError("read payment intent", err)
		}
	}
	res, err := chargeOutcome(pi)
	if err == nil && b.Log != nil {
		b.Log.InfoContext(ctx, "subscription charged", "subscription_id", in.SubscriptionID,
			"user_id", in.UserID, "payment_intent", pi.ID, "amount_cents", pi.Amount)
	}
	return res, err
}

func (in ChargeInput) validate() error {
	switch {
	case in.IdempotencyKey == "":
		// Without a key a retry could charge twice: refuse outright.
		return errors.New("charge: idempotency key is required")
	case in.CustomerID == "":
		return errors.New("charge: customer is required")
	case in.AmountCents <= 0:
		return fmt.Errorf("charge: amount %d cents must be positive", in.AmountCents)
	case in.Currency == "":
		return errors.New("charge: currency is required")
	}
	return nil
}

func (b *Billing) defaultPaymentMethod(ctx context.Context, customerID string) (string, error) {
	p := &stripe.CustomerParams{}
	p.Context = ctx
	c, err := b.Stripe.Customers.Get(customerID, p)
	if err != nil {
		return "", classifyStripeError("read customer "+customerID, err)
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
		return ChargeResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("charge %s: %s", pi.ID, d.Message), TypeCardDeclined, nil, d)
	}
	// requires_capture cannot happen with automatic capture; retrying will
	// not change it, so stop and let a person look.
	msg := fmt.Sprintf("payment intent %s in unexpected status %q", pi.ID, pi.Status)
	return ChargeResult{}, temporal.NewNonRetryableApplicationError(msg, TypeStripeInvalidRequest, nil)
}

// classifyStripeError decides whether a failed Stripe call is retried.
// Transport failures, Stripe outages (5xx, api_error), rate limits (429) and
// lock or idempotency-key contention are transient: a plain error, so the
// activity retries. A card error is a CardDeclined business outcome. Anything
// else Stripe refused will be refused again: StripeInvalidRequest.
func classifyStripeError(op string, err error) error {
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
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: card declined: %s", op, se.Msg),
			TypeCardDeclined, err, d)
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: stripe %s: %s", op, se.Type, se.Msg),
		TypeStripeInvalidRequest, err)
}

// declineCode is the most specific reason Stripe gave: the issuer's decline
// code (insufficient_funds, ...) when present, else the error code.
func declineCode(e *stripe.Error) string {
	if e.DeclineCode != "" {
		return string(e.DeclineCode)
	}
	return string(e.Code)
}

// CreateCustomerInput names the Easel user a Stripe customer is made for.
type CreateCustomerInput struct {
	UserID string
	Email  string
}

// CreateCustomerResult is the customer and the client secret of a
// SetupIntent the browser confirms to save a card for off-session charges.
type CreateCustomerResult struct {
	CustomerID              string
	SetupIntentID           string
	SetupIntentClientSecret string
}

// CreateCustomer creates the user's Stripe customer and a SetupIntent for
// off-session card use. Both requests are keyed by the user id, so a retry
// within Stripe's idempotency window (24 hours) returns the same objects.
func (b *Billing) CreateCustomer(ctx context.Context, in CreateCustomerInput) (CreateCustomerResult, error) {
	if in.UserID == "" {
		err := errors.New("create customer: user id is required")
		return CreateCustomerResult{}, temporal.NewNonRetryableApplicationError(err.Error(), TypeInvalidRequest, err)
	}
	cp := &stripe.CustomerParams{}
	if in.Email != "" {
		cp.Email = stripe.String(in.Email)
	}
	cp.Context = ctx
	cp.SetIdempotencyKey("customer/" + in.UserID)
	cp.AddMetadata("user_id", in.UserID)
	c, err := b.Stripe.Customers.New(cp)
	if err != nil {
		return CreateCustomerResult{}, classifyStripeError("create customer for "+in.UserID, err)
	}
	sp := &stripe.SetupIntentParams{
		Customer:           stripe.String(c.ID),
		Usage:              stripe.String(string(stripe.SetupIntentUsageOffSession)),
		PaymentMethodTypes: stripe.StringSlice([]string{"card"}),
	}
	sp.Context = ctx
	sp.SetIdempotencyKey("customer/" + in.UserID + "/setup-intent")
	sp.AddMetadata("user_id", in.UserID)
	si, err := b.Stripe.SetupIntents.New(sp)
	if err != nil {
		return CreateCustomerResult{}, classifyStripeError("create setup intent for "+c.ID, err)
	}
	return CreateCustomerResult{CustomerID: c.ID, SetupIntentID: si.ID, SetupIntentClientSecret: si.ClientSecret}, nil
}

// GrantPeriod grants a period's credits and records its payment, once.
func (b *Billing) GrantPeriod(ctx context.Context, in GrantPeriodInput) (GrantPeriodResult, error) {
	end := balanceChange(ctx, b.Balances, b.Log, in.UserID)
	id, err := b.Store.GrantPeriod(ctx, store.PeriodGrant{
		SubscriptionID: in.SubscriptionID, UserID: in.UserID, PlanSlug: in.PlanSlug, Credits: in.Credits,
		PeriodStart: in.PeriodStart, PeriodEnd: in.PeriodEnd, PaymentIntentID: in.PaymentIntentID,
		AmountCents: in.AmountCents, Currency: in.Currency,
	})
	end()
	if errors.Is(err, store.ErrInvalidPeriod) || errors.Is(err, store.ErrNotFound) {
		// The same input will fail the same way: do not retry.
		return GrantPeriodResult{}, temporal.NewNonRetryableApplicationError(err.Error(), TypeInvalidRequest, err)
	}
	if err != nil {
		return GrantPeriodResult{}, err
	}
	return GrantPeriodResult{CreditID: id}, nil
}

// SaveCard attaches a payment method the browser collected to the customer
// and makes it the default for off-session renewals.
func (b *Billing) SaveCard(ctx context.Context, customerID, paymentMethodID string) error {
	ap := &stripe.PaymentMethodAttachParams{Customer: stripe.String(customerID)}
	ap.Context = ctx
	if _, err := b.Stripe.PaymentMethods.Attach(paymentMethodID, ap); err != nil {
		return classifyStripeError("attach payment method to "+customerID, err)
	}
	cp := &stripe.CustomerParams{InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{
		DefaultPaymentMethod: stripe.String(paymentMethodID)}}
	cp.Context = ctx
	if _, err := b.Stripe.Customers.Update(customerID, cp); err != nil {
		return classifyStripeError("set default payment method of "+customerID, err)
	}
	return nil
}

// ActivateInput puts a paid checkout in effect.
type ActivateInput struct {
	SubscriptionID string
	Status         string // active, or trialing
}

// Activate puts a checkout whose first period is paid (or whose trial
// began) in effect and ends the free subscription it replaces, in one
// transaction; it returns the free subscriptions it ended, whose workflows
// the caller stops.
func (b *Billing) Activate(ctx context.Context, in ActivateInput) ([]string, error) {
	ended, err := b.Store.ActivateSubscription(ctx, in.SubscriptionID, in.Status)
	if errors.Is(err, store.ErrNotFound) {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), TypeInvalidRequest, err)
	}
	return ended, err
}
