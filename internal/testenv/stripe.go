package testenv

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/easel/easel/internal/devstack"
)

// StripeMockKey is a secret key stripe-mock accepts: it checks only that the
// key looks like a test-mode key.
const StripeMockKey = devstack.StripeMockKey

// StripeMock starts a stripe-mock server (Stripe's API answered from its
// OpenAPI spec and fixtures) for the test and returns its HTTP base URL. The
// server stops when the test ends. Without a stripe-mock binary
// ($EASEL_STRIPE_MOCK, <repo>/.bin/stripe-mock, or PATH) the test is skipped
// (failed under CI=true).
func StripeMock(t testing.TB) (baseURL string) {
	t.Helper()
	bin := devstack.FindStripeMock(RepoRoot(t))
	if bin == "" {
		Unavailable(t, "stripe-mock binary not found: install it with `make tools` (go install "+
			"github.com/stripe/stripe-mock@%s into .bin), set EASEL_STRIPE_MOCK, or put stripe-mock on PATH",
			devstack.StripeMockVersion)
	}
	url, stop, err := devstack.StartStripeMock(context.Background(), bin, filepath.Join(t.TempDir(), "stripe-mock.log"))
	if err != nil {
		t.Fatalf("start stripe-mock: %v", err)
	}
	t.Cleanup(stop)
	return url
}

// StripeRecorder is a Stripe client's transport in tests: it records
// every request and can answer one itself, because stripe-mock never
// declines or fails on its own. Its base is stripe-mock as is (a
// PaymentIntent is always requires_payment_method) unless a test puts a
// devstack.StripeTransport there to settle payments.
type StripeRecorder struct {
	Base http.RoundTripper
	mu   sync.Mutex
	reqs []*http.Request
	// Fault, when set and returning a status, answers the request itself.
	Fault func(req *http.Request) (status int, body string)
}

// RoundTrip records the request, then answers it.
func (r *StripeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	// Keep a copy with its own body: the transport consumes the original.
	rec := req.Clone(context.Background())
	if req.Body != nil {
		raw, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(raw))
		rec.Body = io.NopCloser(bytes.NewReader(raw))
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	fault := r.Fault
	r.mu.Unlock()
	if fault != nil {
		if status, body := fault(req); status != 0 {
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
		}
	}
	return r.Base.RoundTrip(req)
}

// Requests are the recorded requests of method to path.
func (r *StripeRecorder) Requests(method, path string) []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*http.Request
	for _, q := range r.reqs {
		if q.Method == method && q.URL.Path == path {
			out = append(out, q)
		}
	}
	return out
}
