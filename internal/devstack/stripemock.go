package devstack

import (
	"context"
	"strconv"
)

// StripeMockKey is a secret key stripe-mock accepts: it checks only that the
// key looks like a test-mode key.
const StripeMockKey = "sk_test_easel"

// FindStripeMock locates the stripe-mock binary: $EASEL_STRIPE_MOCK,
// <root>/.bin/stripe-mock, or PATH; "" when there is none.
func FindStripeMock(root string) string {
	return FindBinary("EASEL_STRIPE_MOCK", root, "stripe-mock")
}

// StartStripeMock runs stripe-mock (Stripe's API answered from its OpenAPI
// spec and fixtures) on free ports and returns its HTTP base URL and a stop
// function. Its answers need StripeTransport to settle payments.
func StartStripeMock(ctx context.Context, bin, logPath string) (url string, stop func(), err error) {
	p, err := Launch{Name: "stripe-mock", Binary: bin, Free: 2, LogPath: logPath,
		// stripe-mock serves HTTPS too unless given a port for it; pin that
		// to a free port as well so it never collides with a fixed default.
		Args: func(_ string, ports []int) []string {
			return []string{"-http-port", strconv.Itoa(ports[0]), "-https-port", strconv.Itoa(ports[1])}
		}}.Start(ctx)
	if err != nil {
		return "", nil, err
	}
	return p.URL(), p.Stop, nil
}
