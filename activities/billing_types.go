package activities

import "time"

// Billing error types (stable; the workflows branch on them).
const (
	// TypeCardDeclined is a business outcome of a charge, not a failure to
	// retry: the subscription goes into dunning.
	TypeCardDeclined = "CardDeclined"
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

// DeclineDetails travel with a CardDeclined error.
type DeclineDetails struct {
	PaymentIntentID string `json:"payment_intent_id"`
	Code            string `json:"code"`
	Message         string `json:"message"`
}

// GrantPeriodInput grants a plan's monthly credits for one period, once
// (ReferenceID = subscription id + period start), and records the payment.
type GrantPeriodInput struct {
	SubscriptionID  string
	UserID          string
	PlanSlug        string
	Credits         int
	PeriodStart     time.Time
	PeriodEnd       time.Time
	PaymentIntentID string // empty for free periods
	AmountCents     int64
	Currency        string // ISO code of the payment; "" means USD
}

// GrantPeriodResult is the grant made (or found).
type GrantPeriodResult struct {
	CreditID string
}
