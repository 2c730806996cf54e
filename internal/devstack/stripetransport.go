package devstack

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// StripeTransport sends requests to stripe-mock and makes its payment intents
// succeed: stripe-mock never confirms a payment (every PaymentIntent comes
// back requires_payment_method). It makes them
// succeed, or decline when Decline says so, as a real card would.
type StripeTransport struct {
	Base http.RoundTripper // nil: http.DefaultTransport

	mu      sync.Mutex
	decline bool
	charges int
	// cards remembers each customer's default payment method: stripe-mock
	// keeps no state, so a saved card would otherwise be forgotten.
	cards map[string]string
}

// SetDecline makes later payment intents decline (true) or succeed.
func (t *StripeTransport) SetDecline(decline bool) {
	t.mu.Lock()
	t.decline = decline
	t.mu.Unlock()
}

// Charges counts the payment intents created through the transport.
func (t *StripeTransport) Charges() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.charges
}

// RoundTrip forwards the request and rewrites a payment intent's status.
func (t *StripeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	var form string
	if req.Body != nil {
		raw, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		form = string(raw)
		req.Body = io.NopCloser(strings.NewReader(form))
	}
	resp, err := base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	body = t.rewrite(req, form, body)
	resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// rewrite gives each object its own id (stripe-mock answers one fixed id
// per kind): an object created with an idempotency key gets an id derived
// from the key, so a replay answers the same id as Stripe would; an object
// read or updated by id keeps that id. A payment intent also succeeds (or
// declines) and echoes the amount requested.
func (t *StripeTransport) rewrite(req *http.Request, form string, body []byte) []byte {
	var obj map[string]any
	if json.Unmarshal(body, &obj) != nil {
		return body
	}
	id, _ := obj["id"].(string)
	prefix, _, _ := strings.Cut(id, "_")
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	created := req.Method == http.MethodPost && len(parts) == 2
	switch key := req.Header.Get("Idempotency-Key"); {
	case created && key != "" && prefix != "":
		sum := sha256.Sum256([]byte(key))
		obj["id"] = prefix + "_mock" + hex.EncodeToString(sum[:10])
	case len(parts) >= 3 && prefix != "":
		obj["id"] = parts[2]
	}
	switch obj["object"] {
	case "payment_intent":
		t.settle(obj, created, form)
	case "customer":
		t.rememberCard(obj, form)
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return body
	}
	return out
}

// rememberCard keeps a customer's default payment method from an update and
// answers it on every read.
func (t *StripeTransport) rememberCard(cus map[string]any, form string) {
	id, _ := cus["id"].(string)
	t.mu.Lock()
	defer t.mu.Unlock()
	if pm := formValue(form, "invoice_settings[default_payment_method]"); pm != "" {
		if t.cards == nil {
			t.cards = map[string]string{}
		}
		t.cards[id] = pm
	}
	if pm, ok := t.cards[id]; ok {
		settings, _ := cus["invoice_settings"].(map[string]any)
		if settings == nil {
			settings = map[string]any{}
		}
		settings["default_payment_method"] = pm
		cus["invoice_settings"] = settings
	}
}

func (t *StripeTransport) settle(pi map[string]any, created bool, form string) {
	t.mu.Lock()
	decline := t.decline
	if created {
		t.charges++
	}
	t.mu.Unlock()
	pi["status"] = "succeeded"
	pi["last_payment_error"] = nil
	if decline {
		pi["status"] = "requires_payment_method"
		pi["last_payment_error"] = map[string]any{"type": "card_error", "code": "card_declined",
			"decline_code": "insufficient_funds", "message": "Your card has insufficient funds."}
	}
	if v := formValue(form, "amount"); created && v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			pi["amount"] = n
		}
	}
}

// formValue reads one field of a form body; stripe-go leaves the brackets
// of nested keys unescaped.
func formValue(form, key string) string {
	values, err := url.ParseQuery(form)
	if err != nil {
		return ""
	}
	return values.Get(key)
}
