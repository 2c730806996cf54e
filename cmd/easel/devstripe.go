package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/easel/easel/internal/config"
	"github.com/easel/easel/internal/devstack"
)

// devStripeWebhookSecret signs the webhooks a developer sends by hand to
// the dev server (docs/billing.md shows how).
const devStripeWebhookSecret = "whsec_easel_dev"

// startDevStripe runs stripe-mock for `easel dev` when no STRIPE_SECRET_KEY
// is set and the binary is installed (`make tools`), so subscriptions work
// end to end without a Stripe account. stripe-mock never confirms a payment,
// so its answers go through devstack.StripeTransport, which settles them.
func startDevStripe(ctx context.Context, d *deps, cfg *config.Config, stateDir string, log *slog.Logger) error {
	if cfg.StripeSecretKey != "" {
		return nil
	}
	root, _ := filepath.Abs(".")
	bin := devstack.FindStripeMock(root)
	if bin == "" {
		log.Warn("stripe-mock not found (run `make tools`): paid subscriptions are disabled in this dev server")
		return nil
	}
	url, stop, err := devstack.StartStripeMock(ctx, bin, filepath.Join(stateDir, "stripe-mock.log"))
	if err != nil {
		return fmt.Errorf("start stripe-mock: %w", err)
	}
	d.closers = append(d.closers, stop)
	cfg.StripeSecretKey, cfg.StripeAPIBase = devstack.StripeMockKey, url
	cfg.StripeWebhookSecret = cmp.Or(cfg.StripeWebhookSecret, devStripeWebhookSecret)
	d.stripeHTTP = &http.Client{Transport: &devstack.StripeTransport{}, Timeout: 30 * time.Second}
	log.Info("stripe-mock serving the Stripe API", "url", url)
	return nil
}
