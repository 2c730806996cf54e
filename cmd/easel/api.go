package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/easel/easel/api"
	"github.com/easel/easel/config"
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
			d, err := connect(cmd.Context(), cfg, config.Needs{Database: true, Redis: true, Temporal: true, S3: true}, log)
			if err != nil {
				return err
			}
			defer d.close()
			auth, err := devAuth(cmd.Context(), d, cfg)
			if err != nil {
				return err
			}
			return serveHTTP(cmd.Context(), cfg.HTTPAddr, newAPI(d, cfg, auth).Router(), log)
		},
	}
}

// devAuth maps EASEL_DEV_TOKEN to the user EASEL_DEV_USER (an email). Real
// sign-in (OIDC and API keys) replaces it behind the same interface.
func devAuth(ctx context.Context, d *deps, cfg config.Config) (api.Authenticator, error) {
	email := os.Getenv("EASEL_DEV_USER")
	if cfg.DevToken == "" || email == "" {
		return nil, errors.New("configuration:\nEASEL_DEV_TOKEN and EASEL_DEV_USER must be set: the API authenticates one development token until OIDC sign-in is configured")
	}
	u, err := d.store.UpsertUser(ctx, email, email, "dev:"+email)
	if err != nil {
		return nil, err
	}
	return &api.DevTokens{Store: d.store, Tokens: map[string]string{cfg.DevToken: u.ID}}, nil
}

func newAPI(d *deps, cfg config.Config, auth api.Authenticator) *api.Server {
	return &api.Server{Store: d.store, Temporal: d.temporal, Progress: d.progress, Redis: d.redis, Objects: d.objects,
		Auth: auth, Log: d.log, Version: version, PresignTTL: cfg.PresignTTL}
}

// serveHTTP serves h until ctx ends, then drains connections for 10 s.
func serveHTTP(ctx context.Context, addr string, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
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
