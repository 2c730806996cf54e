package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/autoscale"
	"github.com/easel/easel/internal/balancecache"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/config"
	"github.com/easel/easel/internal/devstack"
	"github.com/easel/easel/internal/devstack/temporalserver"
	"github.com/easel/easel/internal/engine/sim"
	"github.com/easel/easel/internal/gctune"
	"github.com/easel/easel/internal/objects"
	"github.com/easel/easel/internal/oidc"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/schema"
	"github.com/easel/easel/workers"
)

// Development defaults: the local Postgres and Redis (variables so tests
// can point them elsewhere), fixed ports, and a token for the seeded
// development user.
var (
	devDatabaseURL = "postgres://postgres:postgres@127.0.0.1:5432/easel?sslmode=disable"
	devRedisURL    = "redis://127.0.0.1:6379/0"
)

const (
	devEmail    = "dev@easel.local"
	devAudience = "easel-dev"
	devBucket   = "easel-images"
	devS3Key    = "easel-dev"
	devS3Secret = "easel-dev-secret"
	devCredits  = 2000
)

type devOptions struct {
	stateDir     string
	httpAddr     string
	temporalPort int
	uiPort       int
	s3Addr       string
	stepDelay    time.Duration
	tokenTTL     time.Duration
	temporalDB   string
}

func devCommand() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole product in one process: Temporal + UI, API, workers on the sim engine, local S3",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runDev(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.stateDir, "state-dir", ".state", "folder for the Temporal database, S3 objects and logs")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8080", "API listen address")
	f.IntVar(&o.temporalPort, "temporal-port", 7233, "Temporal frontend gRPC port")
	f.IntVar(&o.uiPort, "ui-port", 8233, "Temporal Web UI port")
	f.StringVar(&o.s3Addr, "s3-addr", "127.0.0.1:7070", "local S3 listen address")
	f.DurationVar(&o.stepDelay, "step-delay", 20*time.Millisecond, "simulated GPU time per diffusion step")
	f.DurationVar(&o.tokenTTL, "token-ttl", oidc.LoginTTL, "lifetime of the ID tokens the development issuer's sign-in and refresh give the web app")
	temporalDBFlag(f, &o.temporalDB)
	return cmd
}

// devConfig starts from the environment and fills development defaults.
func devConfig(o devOptions) (config.Config, error) {
	cfg, err := config.Load()
	if err != nil {
		return cfg, err
	}
	if os.Getenv("LOG_FORMAT") == "" {
		cfg.LogFormat = "text"
	}
	cfg.DeploymentMode = "dev"
	// Webhooks to a receiver on this machine (http://127.0.0.1:...) work
	// in development; every other private address stays refused.
	cfg.WebhookAllowLocal = true
	cfg.DatabaseURL = cmp.Or(cfg.DatabaseURL, devDatabaseURL)
	cfg.RedisURL = cmp.Or(cfg.RedisURL, devRedisURL)
	cfg.S3Bucket, cfg.S3PathStyle = devBucket, true
	cfg.HTTPAddr = o.httpAddr
	cfg.SimStepDelay = o.stepDelay
	cfg.TemporalDB = cmp.Or(o.temporalDB, cfg.TemporalDB)
	return cfg, cfg.Validate(config.Needs{Database: true, Redis: true, EmbeddedTemporal: true})
}

func runDev(ctx context.Context, o devOptions) error {
	cfg, err := devConfig(o)
	if err != nil {
		return err
	}
	log := processLogger(cfg)
	gctune.Apply(log)
	if err := os.MkdirAll(o.stateDir, 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	if err := ensureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	d, err := connect(ctx, cfg, config.Needs{Database: true, Redis: true}, log)
	if err != nil {
		return err
	}
	defer d.close()
	if _, err := schema.Up(ctx, d.store.Pool()); err != nil {
		return err
	}
	if err := d.openAPIStore(ctx, cfg); err != nil {
		return err
	}
	if err := startDevS3(ctx, d, o, cfg); err != nil {
		return err
	}
	if err := startDevStripe(ctx, d, &cfg, o.stateDir, log); err != nil {
		return err
	}
	temporalSrv, err := startDevTemporal(ctx, d, o, cfg, log)
	if err != nil {
		return err
	}
	defer func() { _ = temporalSrv.Stop() }()
	u, err := seedDevUser(ctx, d.store)
	if err != nil {
		return err
	}
	if err := balancecache.New(d.redis).Invalidate(ctx, u.ID); err != nil {
		return err
	}
	stopWorkers, err := startDevWorkers(ctx, d, cfg)
	if err != nil {
		return err
	}
	defer stopWorkers()
	issuer, verifier, err := devAuth(ctx, o, log)
	if err != nil {
		return err
	}
	token, err := issuer.Sign(oidc.Identity{Subject: u.CognitoSub, Email: u.Email, Name: u.Name}, oidc.LoginTTL)
	if err != nil {
		return err
	}
	srv, err := newAPI(ctx, d, cfg, &api.Tokens{Verifier: verifier, Store: d.apiStore})
	if err != nil {
		return err
	}
	srv.DevIssuer = issuer.Handler()
	srv.App = webApp(ctx, d, cfg, issuer.Config().Issuer, devAudience, temporalSrv.UIAddress())
	srv.App.OIDCMetadata = issuer.Endpoints()
	srv.ReadyChecks = map[string]func() error{"oidc_keys": verifier.Ready}
	h, err := srv.Handler()
	if err != nil {
		return err
	}
	printBanner(o, cfg, temporalSrv, token)
	return serveHTTP(ctx, cfg.HTTPAddr, h, log)
}

// devAuth runs the development OIDC issuer on the API's own address and
// verifies its tokens exactly as production verifies Cognito's.
func devAuth(ctx context.Context, o devOptions, log *slog.Logger) (*oidc.DevIssuer, *oidc.Verifier, error) {
	key, err := oidc.LoadOrCreateKey(filepath.Join(o.stateDir, "dev-issuer.pem"))
	if err != nil {
		return nil, nil, err
	}
	issuer, err := oidc.NewDevIssuer("http://"+o.httpAddr+"/dev/oidc", devAudience, key)
	if err != nil {
		return nil, nil, err
	}
	issuer.TokenTTL = o.tokenTTL
	cfg := issuer.Config()
	cfg.Log = log
	verifier, err := oidc.NewVerifier(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return issuer, verifier, nil
}

// ensureDatabase creates the development database when it is missing.
func ensureDatabase(ctx context.Context, dbURL string) error {
	u, err := url.Parse(dbURL)
	if err != nil {
		return fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("connect to postgres at %s (is it running? `make services` starts it): %w", u.Host, err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

func startDevS3(ctx context.Context, d *deps, o devOptions, cfg config.Config) error {
	root, _ := os.Getwd()
	bin, err := devstack.FindVersityGW(root)
	if err != nil {
		return err
	}
	srv, err := devstack.StartS3(ctx, devstack.S3Options{Binary: bin, Dir: filepath.Join(o.stateDir, "s3"), Addr: o.s3Addr,
		AccessKey: devS3Key, SecretKey: devS3Secret, LogPath: filepath.Join(o.stateDir, "versitygw.log")})
	if err != nil {
		return err
	}
	d.closers = append(d.closers, srv.Stop)
	bucket, err := objects.New(ctx, objects.Config{Bucket: cfg.S3Bucket, Region: cfg.AWSRegion, Endpoint: srv.Endpoint(),
		PathStyle: true, AccessKeyID: devS3Key, SecretAccessKey: devS3Secret})
	if err != nil {
		return err
	}
	if err := bucket.EnsureBucket(ctx); err != nil {
		return err
	}
	d.objects = bucket
	return nil
}

func startDevTemporal(ctx context.Context, d *deps, o devOptions, cfg config.Config, log *slog.Logger) (*temporalserver.Server, error) {
	opts, where, err := embeddedTemporal(cfg, o.stateDir)
	if err != nil {
		return nil, err
	}
	opts.Port, opts.UIPort = o.temporalPort, o.uiPort
	log.Info("starting embedded Temporal", "db", where)
	srv, err := temporalserver.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("start embedded temporal: %w", err)
	}
	cfg.TemporalAddress = srv.HostPort()
	if err := d.open(ctx, cfg, config.Needs{Temporal: true}); err != nil {
		_ = srv.Stop()
		return nil, err
	}
	return srv, nil
}

// seedDevUser makes sure the development user exists on the Pro plan with
// this month's development credits (granted once per month), and is an
// administrator, so that the web app's Admin pages work out of the box.
func seedDevUser(ctx context.Context, s *store.Store) (store.User, error) {
	u, err := s.UpsertUser(ctx, devEmail, "dev", "dev|"+devEmail)
	if err != nil {
		return u, err
	}
	if u.Role != store.RoleAdmin {
		if _, err := s.SetUserRole(ctx, u.ID, store.RoleAdmin); err != nil {
			return u, fmt.Errorf("make the development user an administrator: %w", err)
		}
	}
	plan, err := s.UserPlan(ctx, u.ID)
	if err != nil {
		return u, err
	}
	now := time.Now().UTC()
	if plan.Slug == store.FreePlan {
		if err := s.Subscribe(ctx, u.ID, "pro", "cus_dev", now.AddDate(0, 1, 0)); err != nil {
			return u, err
		}
	}
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	_, err = s.Grant(ctx, store.GrantInput{UserID: u.ID, Amount: devCredits, Source: "dev", ValidFrom: month,
		ValidUntil: month.AddDate(0, 1, 0), ReferenceID: "dev-seed/" + month.Format("2006-01")})
	return u, err
}

// startDevWorkers runs the control worker and, per tier, a local pool of
// sim GPU workers sized by the tier's autoscaler workflow (one to start
// with, so renders run before the first poll).
func startDevWorkers(ctx context.Context, d *deps, cfg config.Config) (stop func(), err error) {
	deps, err := controlDeps(ctx, d, cfg)
	if err != nil {
		return nil, err
	}
	eng := sim.New(sim.Config{StepDelay: cfg.SimStepDelay})
	pool := autoscale.NewLocalPool(func(_ context.Context, tier string) (func(), error) {
		w := workers.NewGPU(d.workerDeps(), tier, eng, workers.GPUOptions{Slots: cfg.GPUSlots})
		if err := w.Start(); err != nil {
			return nil, fmt.Errorf("start gpu worker: %w", err)
		}
		return w.Stop, nil
	})
	deps.Autoscale = &autoscale.Activities{Service: d.temporal.WorkflowService(),
		Namespace: cfg.TemporalNamespace, Driver: pool}
	control := workers.NewControl(deps)
	stop = func() {
		control.Stop()
		pool.Close()
	}
	if err := control.Start(); err != nil {
		return nil, err
	}
	for _, tier := range catalog.TierNames() {
		if err := startDevTier(ctx, d, pool, tier); err != nil {
			stop()
			return nil, err
		}
	}
	return stop, nil
}

func startDevTier(ctx context.Context, d *deps, pool *autoscale.LocalPool, tier string) error {
	if err := pool.SetCapacity(ctx, tier, 1); err != nil {
		return err
	}
	_, err := autoscale.EnsureWorkflow(ctx, d.temporal, tier, autoscale.DefaultConfig())
	return err
}

func printBanner(o devOptions, cfg config.Config, t *temporalserver.Server, token string) {
	api := "http://" + o.httpAddr
	fmt.Printf(`
Easel is running.
  App          %s/   (the web app: sign in with any email; build it with make web)
  API          %s
  Temporal UI  %s
  Temporal     %s   namespace %s
  S3           http://%s   bucket %s
  Postgres     %s
  Redis        %s
  Sign-in      %s/dev/oidc/ (development OIDC issuer: a sign-in page; POST /dev/oidc/login {"email": ...} returns an ID token)

Try:
  go run ./cmd/easel generate --api %s --prompt "a lighthouse at dusk"
  export EASEL_TOKEN=%s
  curl -s -H "Authorization: Bearer $EASEL_TOKEN" -H 'Idempotency-Key: demo-1' -H 'Content-Type: application/json' \
       -d '{"prompt":"a lighthouse at dusk","model":"sdxl","width":1024,"height":1024}' %s/v1/generations
  curl -s -H "Authorization: Bearer $EASEL_TOKEN" %s/v1/credits

Subscribe a new user to Pro (payments through stripe-mock; docs/billing.md):
  T=$(curl -s -d '{"email":"alice@example.com"}' %s/dev/oidc/login | jq -r .id_token)
  curl -s -H "Authorization: Bearer $T" -H 'Content-Type: application/json' \
       -d '{"plan":"pro","payment_method":"pm_card_visa"}' %s/v1/subscriptions

Ctrl-C stops everything.
`, api, api, t.UIAddress(), t.HostPort(), t.Namespace(), o.s3Addr, cfg.S3Bucket, redact(cfg.DatabaseURL),
		cfg.RedisURL, api, api, token, api, api, api, api)
}

// redact hides a password in a URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	return u.Redacted()
}
