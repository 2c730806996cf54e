package activities

import (
	"time"

	"github.com/easel/easel/internal/payments"
)

// Billing error types (stable; the workflows branch on them).
const (
	// TypeCardDeclined is a business outcome of a charge, not a failure to
	// retry: the subscription goes into dunning.
	TypeCardDeclined = "CardDeclined"
)

// The charge's input, result and decline details are the gateway's.
type (
	ChargeInput    = payments.ChargeInput
	ChargeResult   = payments.ChargeResult
	DeclineDetails = payments.DeclineDetails
)

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
