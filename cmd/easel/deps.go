package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/easel/easel/internal/config"
	"github.com/easel/easel/internal/objects"
	"github.com/easel/easel/internal/progress"
	"github.com/easel/easel/internal/servedmodels"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/temporalprom"
	"github.com/easel/easel/workers"
)

// deps are the connections a subcommand opened; close releases them.
type deps struct {
	log      *slog.Logger
	store    *store.Store
	apiStore *store.Store // the API's, under row-level security
	redis    *redis.Client
	progress *progress.Hub
	objects  *objects.Bucket
	// served is where GPU workers report their model families, scoped by
	// the Temporal namespace.
	served   *servedmodels.Registry
	temporal client.Client
	// stripeHTTP, when set, is the Stripe client's HTTP client (easel dev
	// uses it to make stripe-mock's payments succeed).
	stripeHTTP *http.Client
	// wait, when set, retries each service until it answers and reports
	// what it waits for (easel api and worker); nil tries once.
	wait    *startup
	closers []func()
}

// dial runs op once, or with d.wait until it succeeds.
func (d *deps) dial(ctx context.Context, what string, op func(context.Context) error) error {
	if d.wait == nil {
		return op(ctx)
	}
	return d.wait.retry(ctx, what, op)
}

func (d *deps) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

// connect opens what needs names, failing with a message per missing setting.
func connect(ctx context.Context, cfg config.Config, needs config.Needs, log *slog.Logger) (*deps, error) {
	return connectWaiting(ctx, cfg, needs, log, nil)
}

// connectWaiting is connect for long-running processes: with st set, a
// service that is down is waited for (with backoff, logged, reported on
// st's /readyz) until it answers or ctx ends. Bad settings still fail at once.
func connectWaiting(ctx context.Context, cfg config.Config, needs config.Needs, log *slog.Logger, st *startup) (*deps, error) {
	if err := checkConfig(cfg, needs); err != nil {
		return nil, err
	}
	d := &deps{log: log, wait: st}
	err := d.open(ctx, cfg, needs)
	if err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// redactedURL is a URL fit for a log: its password masked, or nothing of it
// when it does not parse (it may hold a password anywhere).
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// checkConfig validates the settings needs names and parses the connection
// URLs among them, reporting every problem at once (with more, a caller's
// own checks), before anything listens or dials.
func checkConfig(cfg config.Config, needs config.Needs, more ...error) error {
	errs := append([]error{cfg.Validate(needs)}, more...)
	if needs.Database && cfg.DatabaseURL != "" {
		if _, err := pgxpool.ParseConfig(cfg.DatabaseURL); err != nil {
			errs = append(errs, fmt.Errorf("DATABASE_URL: %w", err))
		}
	}
	if needs.Redis && cfg.RedisURL != "" {
		if _, err := redis.ParseURL(cfg.RedisURL); err != nil {
			errs = append(errs, fmt.Errorf("REDIS_URL=%q: %w", redactedURL(cfg.RedisURL), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	return nil
}

func (d *deps) open(ctx context.Context, cfg config.Config, needs config.Needs) error {
	if needs.Database {
		var pool *pgxpool.Pool
		err := d.dial(ctx, "postgres", func(ctx context.Context) (err error) {
			pool, err = store.Connect(ctx, cfg.DatabaseURL)
			return err
		})
		if err != nil {
			return err
		}
		d.closers = append(d.closers, pool.Close)
		d.store = store.New(pool)
	}
	if needs.API {
		if err := d.openAPIStore(ctx, cfg); err != nil {
			return err
		}
	}
	if needs.Redis {
		opts, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("parse REDIS_URL: %w", err)
		}
		d.redis = redis.NewClient(opts)
		d.closers = append(d.closers, func() { _ = d.redis.Close() })
		err = d.dial(ctx, "redis", func(ctx context.Context) error {
			if err := d.redis.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("ping redis: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		d.progress = progress.NewHub(d.redis)
		d.served = &servedmodels.Registry{Redis: d.redis, Scope: cfg.TemporalNamespace}
	}
	if needs.S3 {
		bucket, err := objects.New(ctx, objects.Config{Bucket: cfg.S3Bucket, Region: cfg.AWSRegion,
			Endpoint: cfg.S3Endpoint, PathStyle: cfg.S3PathStyle})
		if err != nil {
			return err
		}
		d.objects = bucket
	}
	if needs.Temporal {
		var c client.Client
		err := d.dial(ctx, "temporal", func(ctx context.Context) (err error) {
			c, err = client.DialContext(ctx, client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace,
				Logger: sdklog.NewStructuredLogger(d.log), MetricsHandler: temporalprom.New(prometheus.DefaultRegisterer),
				WorkerHeartbeatInterval: workers.HeartbeatEvery})
			if err != nil {
				return fmt.Errorf("connect to temporal at %s: %w", cfg.TemporalAddress, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		d.temporal = c
		d.closers = append(d.closers, c.Close)
	}
	return nil
}

// openAPIStore opens the API's pool, working as DATABASE_ROLE so that
// Postgres row-level security applies; an empty DATABASE_ROLE makes the API
// share the owner's pool (not recommended).
func (d *deps) openAPIStore(ctx context.Context, cfg config.Config) error {
	if cfg.DatabaseRole == "" {
		d.log.Warn("DATABASE_ROLE is empty: the API runs without row-level security")
		d.apiStore = d.store
		return nil
	}
	var pool *pgxpool.Pool
	err := d.dial(ctx, "postgres as "+cfg.DatabaseRole, func(ctx context.Context) (err error) {
		pool, err = store.ConnectScoped(ctx, cfg.DatabaseURL, cfg.DatabaseRole)
		if err != nil {
			return fmt.Errorf("connect as %s (grant it to the API's database user): %w", cfg.DatabaseRole, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.closers = append(d.closers, pool.Close)
	d.apiStore = store.NewScoped(pool)
	return nil
}

// loadConfig reads and checks the environment for a subcommand: values
// that do not parse, malformed ones and the missing ones needs names are
// reported together.
func loadConfig(needs config.Needs) (config.Config, *slog.Logger, error) {
	cfg, parseErr := config.Load()
	if err := checkConfig(cfg, needs, parseErr); err != nil {
		return config.Config{}, nil, err
	}
	return cfg, processLogger(cfg), nil
}
