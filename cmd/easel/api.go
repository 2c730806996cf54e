package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/authcache"
	"github.com/easel/easel/internal/config"
	"github.com/easel/easel/internal/gctune"
	"github.com/easel/easel/internal/objects"
	"github.com/easel/easel/internal/oidc"
	"github.com/easel/easel/internal/webhook"
)

type loggerT = *slog.Logger

func apiCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "api",
		Short: "Serve the HTTP API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(apiNeeds)
			if err != nil {
				return err
			}
			gctune.Apply(log)
			return runAPI(cmd.Context(), cfg, log)
		},
	}
}

// apiNeeds is what `easel api` must be given.
var apiNeeds = config.Needs{Database: true, API: true, Redis: true, Temporal: true, S3: true, OIDC: true}

// runAPI serves the API until ctx ends. It listens at once, waits for
// Postgres, Redis and Temporal (retrying with backoff; /readyz answers 503
// naming what it waits for), then serves the router, whose /readyz turns
// 200 once the OIDC key set has loaded.
func runAPI(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if err := checkConfig(cfg, apiNeeds); err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	st := newStartup(log)
	served, err := st.listen(ctx, cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	srv, closeDeps, err := startAPI(ctx, cfg, log, st)
	if err != nil {
		err = startErr(ctx, err)
		stop()
		return errors.Join(err, <-served)
	}
	defer closeDeps()
	h, err := srv.Handler()
	if err != nil {
		stop()
		return errors.Join(err, <-served)
	}
	st.ready(h)
	log.Info("api started; ready once the OIDC key set has loaded", "jwks", cfg.JWKSURL())
	return <-served
}

// startAPI connects (waiting for what is down) and builds the server.
func startAPI(ctx context.Context, cfg config.Config, log *slog.Logger, st *startup) (*api.Server, func(), error) {
	d, err := connectWaiting(ctx, cfg, apiNeeds, log, st)
	if err != nil {
		return nil, nil, err
	}
	verifier, err := oidc.NewVerifier(ctx, oidc.Config{Issuer: cfg.OIDCIssuer,
		Audience: cfg.OIDCAudience, JWKSURL: cfg.JWKSURL(), Log: log})
	if err != nil {
		d.close()
		return nil, nil, err
	}
	srv, err := newAPI(ctx, d, cfg, &api.Tokens{Verifier: verifier, Store: d.apiStore})
	if err != nil {
		d.close()
		return nil, nil, err
	}
	srv.ReadyChecks = map[string]func() error{"oidc_keys": verifier.Ready}
	srv.App = webApp(ctx, d, cfg, cfg.OIDCIssuer, cfg.OIDCAudience, cfg.TemporalUIURL)
	return srv, d.close, nil
}

// startErr is nil when the start was cut short by a shutdown (SIGTERM while
// waiting is a clean exit), else err.
func startErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func newAPI(ctx context.Context, d *deps, cfg config.Config, auth api.Authenticator) (*api.Server, error) {
	// Several API servers in one process (tests) share one registry.
	if err := prometheus.Register(&api.BusinessCollector{Store: d.apiStore}); err != nil {
		d.log.Warn("business metrics not registered", "err", err)
	}
	srv := &api.Server{Store: d.apiStore, Temporal: d.temporal, Progress: d.progress, Redis: d.redis, Objects: d.objects,
		ServedModels: d.served, Auth: auth, Log: d.log, Version: version, PresignTTL: cfg.PresignTTL, Limiter: redis_rate.NewLimiter(d.redis),
		StripeWebhookSecret: cfg.StripeWebhookSecret, TrialDays: cfg.TrialDays, Payments: paymentsGateway(d, cfg),
		WebhookGuard: webhook.Guard{AllowLocal: cfg.WebhookAllowLocal}, AuthCache: &authcache.Set{}, Stopping: ctx.Done()}
	// The caches stay off until the listener hears changes; it runs for
	// the process's life.
	go authcache.Listen(ctx, cfg.DatabaseURL, srv.AuthCache, d.log)
	if srv.Payments != nil {
		srv.Billing = &activities.Billing{Store: d.store, Log: d.log}
	}
	if cfg.CloudFrontDomain != "" {
		cf, err := objects.NewCloudFrontURLs(cfg.CloudFrontDomain, cfg.CloudFrontKeyID, cfg.CloudFrontPrivateKey)
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
