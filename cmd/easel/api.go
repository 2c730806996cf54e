package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/easel/easel/api"
	"github.com/easel/easel/config"
	"github.com/easel/easel/oidc"
	"github.com/easel/easel/storage"
)

type loggerT = *slog.Logger

func apiCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "api",
		Short: "Serve the HTTP API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig()
			if err != nil {
				return err
			}
			d, err := connect(cmd.Context(), cfg, config.Needs{Database: true, API: true, Redis: true, Temporal: true, S3: true, OIDC: true}, log)
			if err != nil {
				return err
			}
			defer d.close()
			verifier, err := oidc.NewVerifier(cmd.Context(), oidc.Config{Issuer: cfg.OIDCIssuer,
				Audience: cfg.OIDCAudience, JWKSURL: cfg.OIDCJWKSURL})
			if err != nil {
				return err
			}
			auth := &api.Tokens{Verifier: verifier, Store: d.apiStore}
			srv, err := newAPI(d, cfg, auth)
			if err != nil {
				return err
			}
			return serveHTTP(cmd.Context(), cfg.HTTPAddr, srv.Router(), log)
		},
	}
}

func newAPI(d *deps, cfg config.Config, auth api.Authenticator) (*api.Server, error) {
	// Several API servers in one process (tests) share one registry.
	if err := prometheus.Register(&api.BusinessCollector{Store: d.apiStore}); err != nil {
		d.log.Warn("business metrics not registered", "err", err)
	}
	srv := &api.Server{Store: d.apiStore, Temporal: d.temporal, Progress: d.progress, Redis: d.redis, Objects: d.objects,
		Auth: auth, Log: d.log, Version: version, PresignTTL: cfg.PresignTTL, Limiter: redis_rate.NewLimiter(d.redis),
		StripeWebhookSecret: cfg.StripeWebhookSecret, TrialDays: cfg.TrialDays, Billing: stripeClient(d, cfg)}
	if cfg.CloudFrontDomain != "" {
		cf, err := storage.NewCloudFrontURLs(cfg.CloudFrontDomain, cfg.CloudFrontKeyID, cfg.CloudFrontPrivateKey)
		if err != nil {
			return nil, fmt.Errorf("CLOUDFRONT_*: %w", err)
		}
		srv.ImageURLs = cf
	}
	return srv, nil
}

// serveHTTP serves h until ctx ends, then drains connections for 10 s.
func serveHTTP(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	srv := api.NewHTTPServer(addr, h)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("listening", "addr", addr)
	select {
	case err := <-errc:
		return fmt.Errorf("serve http on %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down http server: %w", err)
	}
	return nil
}
