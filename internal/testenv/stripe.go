package testenv

import (
	"context"
	"path/filepath"
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
