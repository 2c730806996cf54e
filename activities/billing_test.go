package activities

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stripe/stripe-go/v76"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/easel/easel/internal/devstack"
	"github.com/easel/easel/internal/payments"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

func newStripeBilling(t *testing.T) (*Billing, *testenv.StripeRecorder) {
	t.Helper()
	url := testenv.StripeMock(t)
	rec := &testenv.StripeRecorder{Base: http.DefaultTransport}
	gw := payments.New(testenv.StripeMockKey, url, &http.Client{Transport: rec, Timeout: 10 * time.Second})
	return &Billing{Payments: gw}, rec
}

func init() {
	// stripe-go logs every failed request at error level; the tests make
	// failures on purpose.
	stripe.DefaultLeveledLogger = &stripe.LeveledLogger{Level: stripe.LevelNull}
}

func activityEnv(b *Billing) *testsuite.TestActivityEnvironment {
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(b)
	return env
}

func chargeInput() ChargeInput {
	start := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	sub := uuid.NewString()
	return ChargeInput{SubscriptionID: sub, UserID: uuid.NewString(), CustomerID: "cus_easel", PlanSlug: "pro",
		AmountCents: 1999, Currency: "usd", PeriodStart: start, PaymentMethodID: "pm_card_visa",
		IdempotencyKey: sub + "/" + start.Format(time.RFC3339), Description: "Easel Pro, March 2025"}
}

func runCharge(t *testing.T, b *Billing, in ChargeInput) (ChargeResult, error) {
	t.Helper()
	val, err := activityEnv(b).ExecuteActivity(b.Charge, in)
	if err != nil {
		return ChargeResult{}, err
	}
	var res ChargeResult
	if err := val.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func appError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an application error", err, err)
	}
	return ae
}

func TestChargeSucceeds(t *testing.T) {
	b, rec := newStripeBilling(t)
	rec.Base = &devstack.StripeTransport{} // settles stripe-mock's payment intents
	in := chargeInput()
	for range 2 { // a retried activity sends the same key again
		res, err := runCharge(t, b, in)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(res.PaymentIntentID, "pi_") || res.AmountCents != 1999 || res.Status != "succeeded" {
			t.Fatalf("result = %+v", res)
		}
	}
	reqs := rec.Requests(http.MethodPost, "/v1/payment_intents")
	if len(reqs) != 2 {
		t.Fatalf("%d payment intent requests, want 2", len(reqs))
	}
	for _, r := range reqs {
		if got := r.Header.Get("Idempotency-Key"); got != in.IdempotencyKey {
			t.Fatalf("Idempotency-Key = %q, want %q", got, in.IdempotencyKey)
		}
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]string{"customer": "cus_easel", "amount": "1999", "currency": "usd",
			"confirm": "true", "off_session": "true", "payment_method": "pm_card_visa",
			"metadata[subscription_id]": in.SubscriptionID, "metadata[user_id]": in.UserID,
			"metadata[period]": "2025-03-01T00:00:00Z"} {
			if got := r.PostForm.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
	}
}

// Without a payment method in the input, Charge reads the customer's
// default; stripe-mock's customer has none, which the customer must fix.
func TestChargeWithoutPaymentMethodDeclines(t *testing.T) {
	b, rec := newStripeBilling(t)
	in := chargeInput()
	in.PaymentMethodID = ""
	_, err := runCharge(t, b, in)
	ae := appError(t, err)
	var d DeclineDetails
	if ae.Type() != TypeCardDeclined || !ae.NonRetryable() || ae.Details(&d) != nil || d.Code != payments.DeclineNoPaymentMethod {
		t.Fatalf("error = %v (details %+v)", err, d)
	}
	if n := len(rec.Requests(http.MethodPost, "/v1/payment_intents")); n != 0 {
		t.Fatalf("%d charges attempted without a payment method", n)
	}
}

// stripe-mock's unmodified payment intent is requires_payment_method: off
// session that is a decline.
func TestChargeRequiresPaymentMethodIsDecline(t *testing.T) {
	b, _ := newStripeBilling(t)
	_, err := runCharge(t, b, chargeInput())
	ae := appError(t, err)
	var d DeclineDetails
	if ae.Type() != TypeCardDeclined || !ae.NonRetryable() || ae.Details(&d) != nil ||
		d.Code != "requires_payment_method" || !strings.HasPrefix(d.PaymentIntentID, "pi_") {
		t.Fatalf("error = %v (details %+v)", err, d)
	}
}

// A request stripe-mock refuses (an unknown URL: a malformed customer id)
// is never retried.
func TestChargeInvalidRequestFromStripeMock(t *testing.T) {
	b, _ := newStripeBilling(t)
	in := chargeInput()
	in.CustomerID, in.PaymentMethodID = "cus bad/id", ""
	_, err := runCharge(t, b, in)
	if ae := appError(t, err); ae.Type() != TypeStripeInvalidRequest || !ae.NonRetryable() {
		t.Fatalf("error = %v", err)
	}
}

// Stripe's real decline and outage answers, injected in front of
// stripe-mock, go through stripe-go's parsing and the classification.
func TestChargeInjectedStripeErrors(t *testing.T) {
	b, rec := newStripeBilling(t)
	rec.Fault = func(*http.Request) (int, string) {
		return http.StatusPaymentRequired, `{"error": {"type": "card_error", "code": "card_declined",
			"decline_code": "insufficient_funds", "message": "Your card has insufficient funds.",
			"payment_intent": {"id": "pi_declined", "object": "payment_intent", "status": "requires_payment_method"}}}`
	}
	_, err := runCharge(t, b, chargeInput())
	ae := appError(t, err)
	var d DeclineDetails
	if ae.Type() != TypeCardDeclined || !ae.NonRetryable() || ae.Details(&d) != nil ||
		d != (DeclineDetails{PaymentIntentID: "pi_declined", Code: "insufficient_funds",
			Message: "Your card has insufficient funds."}) {
		t.Fatalf("decline = %v (details %+v)", err, d)
	}

	rec.Fault = func(*http.Request) (int, string) {
		return http.StatusInternalServerError, `{"error": {"type": "api_error", "message": "Stripe is down"}}`
	}
	_, err = runCharge(t, b, chargeInput())
	if ae := appError(t, err); ae.NonRetryable() || !strings.Contains(err.Error(), "Stripe is down") {
		t.Fatalf("outage = %v, want a retryable error", err)
	}
}

func TestPaymentErrorTypes(t *testing.T) {
	for _, tc := range []struct {
		name         string
		err          error
		wantType     string // "" means a plain, retryable error
		wantDecline  string
		nonRetryable bool
	}{
		{name: "card declined", err: &stripe.Error{Type: stripe.ErrorTypeCard, Code: stripe.ErrorCodeCardDeclined,
			HTTPStatusCode: 402, Msg: "declined", PaymentIntent: &stripe.PaymentIntent{ID: "pi_1"}},
			wantType: TypeCardDeclined, wantDecline: "card_declined", nonRetryable: true},
		{name: "decline code wins", err: &stripe.Error{Type: stripe.ErrorTypeCard, Code: stripe.ErrorCodeCardDeclined,
			DeclineCode: stripe.DeclineCodeInsufficientFunds, HTTPStatusCode: 402},
			wantType: TypeCardDeclined, wantDecline: "insufficient_funds", nonRetryable: true},
		{name: "authentication required", err: &stripe.Error{Type: stripe.ErrorTypeCard,
			Code: stripe.ErrorCodeAuthenticationRequired, HTTPStatusCode: 402},
			wantType: TypeCardDeclined, wantDecline: "authentication_required", nonRetryable: true},
		{name: "api error", err: &stripe.Error{Type: stripe.ErrorTypeAPI, HTTPStatusCode: 500}},
		{name: "bad gateway", err: &stripe.Error{HTTPStatusCode: 502}},
		{name: "rate limited", err: &stripe.Error{Type: stripe.ErrorTypeInvalidRequest, Code: stripe.ErrorCodeRateLimit,
			HTTPStatusCode: 429}},
		{name: "lock timeout", err: &stripe.Error{Type: stripe.ErrorTypeInvalidRequest,
			Code: stripe.ErrorCodeLockTimeout, HTTPStatusCode: 409}},
		{name: "key in use", err: &stripe.Error{Type: stripe.ErrorTypeIdempotency,
			Code: stripe.ErrorCodeIdempotencyKeyInUse, HTTPStatusCode: 409}},
		{name: "network", err: errors.New("dial tcp: connection refused")},
		{name: "invalid request", err: &stripe.Error{Type: stripe.ErrorTypeInvalidRequest,
			Code: stripe.ErrorCodeResourceMissing, HTTPStatusCode: 404},
			wantType: TypeStripeInvalidRequest, nonRetryable: true},
		{name: "key reused with other params", err: &stripe.Error{Type: stripe.ErrorTypeIdempotency,
			HTTPStatusCode: 400}, wantType: TypeStripeInvalidRequest, nonRetryable: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := paymentError(payments.ClassifyError("op", tc.err))
			if !errors.Is(got, tc.err) {
				t.Fatalf("%v does not wrap %v", got, tc.err)
			}
			var ae *temporal.ApplicationError
			if tc.wantType == "" {
				if errors.As(got, &ae) {
					t.Fatalf("want a plain retryable error, got %v", got)
				}
				return
			}
			if !errors.As(got, &ae) || ae.Type() != tc.wantType || ae.NonRetryable() != tc.nonRetryable {
				t.Fatalf("got %v", got)
			}
			if tc.wantDecline != "" {
				var d DeclineDetails
				if err := ae.Details(&d); err != nil || d.Code != tc.wantDecline {
					t.Fatalf("details = %+v, %v", d, err)
				}
			}
		})
	}
}

func TestBillingGrantPeriod(t *testing.T) {
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u, err := s.UpsertUser(ctx, uuid.NewString()+"@example.com", "Sub User", "sub-"+uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	b := &Billing{Store: s}
	env := activityEnv(b)
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	in := GrantPeriodInput{SubscriptionID: uuid.NewString(), UserID: u.ID, PlanSlug: "pro", Credits: 300,
		PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0), PaymentIntentID: "pi_" + uuid.NewString(),
		AmountCents: 1999, Currency: "usd"}
	var first string
	for i := range 3 {
		val, err := env.ExecuteActivity(b.GrantPeriod, in)
		if err != nil {
			t.Fatal(err)
		}
		var res GrantPeriodResult
		if err := val.Get(&res); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = res.CreditID
		} else if res.CreditID != first {
			t.Fatalf("replay granted %s, first %s", res.CreditID, first)
		}
	}
	bal, err := s.Balance(ctx, u.ID)
	if err != nil || bal.Available != 300 {
		t.Fatalf("balance = %+v, %v", bal, err)
	}
	pays, err := s.Payments(ctx, u.ID)
	if err != nil || len(pays) != 1 {
		t.Fatalf("payments = %+v, %v", pays, err)
	}

	// A free period with no credits can never be granted.
	in.Credits, in.PaymentIntentID = 0, ""
	_, err = env.ExecuteActivity(b.GrantPeriod, in)
	if ae := appError(t, err); ae.Type() != TypeInvalidRequest || !ae.NonRetryable() {
		t.Fatalf("zero credits: %v", err)
	}
}
