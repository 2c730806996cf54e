package payments_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/payments"
	"github.com/easel/easel/internal/testenv"
)

func newGateway(t *testing.T) (*payments.Gateway, *testenv.StripeRecorder) {
	t.Helper()
	rec := &testenv.StripeRecorder{Base: http.DefaultTransport}
	g := payments.New(testenv.StripeMockKey, testenv.StripeMock(t), &http.Client{Transport: rec, Timeout: 10 * time.Second})
	return g, rec
}

func TestCreateCustomer(t *testing.T) {
	g, rec := newGateway(t)
	user := uuid.NewString()
	res, err := g.CreateCustomer(context.Background(), user, "a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.CustomerID, "cus_") || !strings.Contains(res.SetupIntentClientSecret, "_secret_") {
		t.Fatalf("result = %+v", res)
	}
	cust := rec.Requests(http.MethodPost, "/v1/customers")
	setup := rec.Requests(http.MethodPost, "/v1/setup_intents")
	if len(cust) != 1 || len(setup) != 1 {
		t.Fatalf("%d customer and %d setup intent requests", len(cust), len(setup))
	}
	if got := cust[0].Header.Get("Idempotency-Key"); got != "customer/"+user {
		t.Fatalf("customer Idempotency-Key = %q", got)
	}
	if err := setup[0].ParseForm(); err != nil {
		t.Fatal(err)
	}
	if setup[0].PostForm.Get("usage") != "off_session" || setup[0].PostForm.Get("customer") != res.CustomerID ||
		setup[0].Header.Get("Idempotency-Key") == "" {
		t.Fatalf("setup intent request = %v %v", setup[0].PostForm, setup[0].Header)
	}
}

// SaveCard attaches the card and makes it the default for renewals; a card
// Stripe refuses is a decline (the API answers 402).
func TestSaveCard(t *testing.T) {
	g, rec := newGateway(t)
	if err := g.SaveCard(context.Background(), "cus_easel", "pm_card_visa"); err != nil {
		t.Fatal(err)
	}
	attach := rec.Requests(http.MethodPost, "/v1/payment_methods/pm_card_visa/attach")
	update := rec.Requests(http.MethodPost, "/v1/customers/cus_easel")
	if len(attach) != 1 || len(update) != 1 {
		t.Fatalf("%d attach and %d customer update requests", len(attach), len(update))
	}
	for _, r := range append(attach, update...) {
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
	}
	if attach[0].PostForm.Get("customer") != "cus_easel" ||
		update[0].PostForm.Get("invoice_settings[default_payment_method]") != "pm_card_visa" {
		t.Fatalf("attach %v, update %v", attach[0].PostForm, update[0].PostForm)
	}
	rec.Fault = func(req *http.Request) (int, string) {
		if strings.HasSuffix(req.URL.Path, "/attach") {
			return http.StatusPaymentRequired, `{"error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}}`
		}
		return 0, ""
	}
	err := g.SaveCard(context.Background(), "cus_easel", "pm_card_chargeDeclined")
	var decline *payments.DeclineError
	if !errors.As(err, &decline) {
		t.Fatalf("declined card: %v", err)
	}
}
