package main

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/easel/easel/config"
	"github.com/easel/easel/stripemock"
)

// devStripeWebhookSecret signs the webhooks a developer sends by hand to
// the dev server (docs/billing.md shows how).
const devStripeWebhookSecret = "whsec_easel_dev"

// startDevStripe runs stripe-mock for `easel dev` when no STRIPE_SECRET_KEY
// is set and the binary is installed (`make tools`), so subscriptions work
// end to end without a Stripe account. stripe-mock never confirms a payment,
// so its answers go through stripemock.Transport, which settles them.
func startDevStripe(d *deps, cfg *config.Config, stateDir string, log *slog.Logger) error {
	if cfg.StripeSecretKey != "" {
		return nil
	}
	root, _ := filepath.Abs(".")
	bin := stripemock.Find(root)
	if bin == "" {
		log.Warn("stripe-mock not found (run `make tools`): paid subscriptions are disabled in this dev server")
		return nil
	}
	url, stop, err := stripemock.Start(bin, filepath.Join(stateDir, "stripe-mock.log"))
	if err != nil {
		return fmt.Errorf("start stripe-mock: %w", err)
	}
	d.closers = append(d.closers, stop)
	cfg.StripeSecretKey, cfg.StripeAPIBase = stripemock.Key, url
	cfg.StripeWebhookSecret = cmp.Or(cfg.StripeWebhookSecret, devStripeWebhookSecret)
	d.stripeHTTP = &http.Client{Transport: &stripemock.Transport{}, Timeout: 30 * time.Second}
	log.Info("stripe-mock serving the Stripe API", "url", url)
	return nil
}
