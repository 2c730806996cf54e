package payments

import (
	"context"

	"github.com/stripe/stripe-go/v76"
)

// Customer is a user's Stripe customer and the client secret of a
// SetupIntent the browser confirms to save a card for off-session charges.
type Customer struct {
	CustomerID              string
	SetupIntentID           string
	SetupIntentClientSecret string
}

// CreateCustomer creates the user's Stripe customer and a SetupIntent for
// off-session card use. Both requests are keyed by the user id, so a retry
// within Stripe's idempotency window (24 hours) returns the same objects.
func (g *Gateway) CreateCustomer(ctx context.Context, userID, email string) (Customer, error) {
	if userID == "" {
		return Customer{}, refused("create customer: user id is required", nil)
	}
	cp := &stripe.CustomerParams{}
	if email != "" {
		cp.Email = stripe.String(email)
	}
	cp.Context = ctx
	cp.SetIdempotencyKey("customer/" + userID)
	cp.AddMetadata("user_id", userID)
	c, err := g.api.Customers.New(cp)
	if err != nil {
		return Customer{}, ClassifyError("create customer for "+userID, err)
	}
	sp := &stripe.SetupIntentParams{
		Customer:           stripe.String(c.ID),
		Usage:              stripe.String(string(stripe.SetupIntentUsageOffSession)),
		PaymentMethodTypes: stripe.StringSlice([]string{"card"}),
	}
	sp.Context = ctx
	sp.SetIdempotencyKey("customer/" + userID + "/setup-intent")
	sp.AddMetadata("user_id", userID)
	si, err := g.api.SetupIntents.New(sp)
	if err != nil {
		return Customer{}, ClassifyError("create setup intent for "+c.ID, err)
	}
	return Customer{CustomerID: c.ID, SetupIntentID: si.ID, SetupIntentClientSecret: si.ClientSecret}, nil
}

// SaveCard attaches a payment method the browser collected to the customer
// and makes it the default for off-session renewals.
func (g *Gateway) SaveCard(ctx context.Context, customerID, paymentMethodID string) error {
	ap := &stripe.PaymentMethodAttachParams{Customer: stripe.String(customerID)}
	ap.Context = ctx
	if _, err := g.api.PaymentMethods.Attach(paymentMethodID, ap); err != nil {
		return ClassifyError("attach payment method to "+customerID, err)
	}
	cp := &stripe.CustomerParams{InvoiceSettings: &stripe.CustomerInvoiceSettingsParams{
		DefaultPaymentMethod: stripe.String(paymentMethodID)}}
	cp.Context = ctx
	if _, err := g.api.Customers.Update(customerID, cp); err != nil {
		return ClassifyError("set default payment method of "+customerID, err)
	}
	return nil
}
