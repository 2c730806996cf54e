// Package config reads Easel's configuration from the environment, using the
// deployment guide's names (DATABASE_URL, REDIS_URL, S3_BUCKET, AWS_REGION, ...) plus
// TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE, and validates it at start.
package config

import (
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/easel/easel/internal/catalog"
)

// Config is every setting of every subcommand.
type Config struct {
	DeploymentMode    string `env:"DEPLOYMENT_MODE" envDefault:"saas"`
	DatabaseURL       string `env:"DATABASE_URL"`
	DatabaseRole      string `env:"DATABASE_ROLE" envDefault:"easel_api"`
	RedisURL          string `env:"REDIS_URL"`
	TemporalAddress   string `env:"TEMPORAL_ADDRESS" envDefault:"127.0.0.1:7233"`
	TemporalNamespace string `env:"TEMPORAL_NAMESPACE" envDefault:"default"`
	S3Bucket          string `env:"S3_BUCKET"`
	S3Endpoint        string `env:"S3_ENDPOINT"`
	S3PathStyle       bool   `env:"S3_PATH_STYLE"`
	AWSRegion         string `env:"AWS_REGION" envDefault:"us-east-1"`
	HTTPAddr          string `env:"HTTP_ADDR" envDefault:":8080"`
	MetricsAddr       string `env:"METRICS_ADDR" envDefault:":9090"`
	OIDCIssuer        string `env:"OIDC_ISSUER"`
	OIDCAudience      string `env:"OIDC_AUDIENCE"`
	OIDCJWKSURL       string `env:"OIDC_JWKS_URL"`
	// OIDCHostedUIURL is Cognito's hosted UI (managed login) domain, where
	// the web app signs in and out when it is not under OIDC_ISSUER.
	OIDCHostedUIURL string        `env:"OIDC_HOSTED_UI_URL"`
	PresignTTL      time.Duration `env:"PRESIGN_TTL" envDefault:"1h"`
	// CloudFront signed image URLs (all three, or none: S3 presigned URLs).
	CloudFrontDomain     string        `env:"CLOUDFRONT_DOMAIN"`
	CloudFrontKeyID      string        `env:"CLOUDFRONT_KEY_ID"`
	CloudFrontPrivateKey string        `env:"CLOUDFRONT_PRIVATE_KEY"`
	SimStepDelay         time.Duration `env:"SIM_STEP_DELAY" envDefault:"20ms"`
	GPUSlots             int           `env:"GPU_SLOTS" envDefault:"1"`
	DrainTimeout         time.Duration `env:"DRAIN_TIMEOUT" envDefault:"2m"` // GPU worker: renders' grace on SIGTERM or spot notice
	SpotWatch            bool          `env:"SPOT_WATCH"`                    // GPU worker: poll EC2 metadata for spot interruption
	InvokeAIURL          string        `env:"INVOKEAI_URL"`                  // GPU worker: InvokeAI server for --engine invokeai
	// GPUInstanceIDFile (GPU worker) is a file holding the EC2 instance id
	// of the host, which the host writes at boot (terraform/modules/gpu_asg
	// user data; the task has no instance metadata). The worker names its
	// instance in its Temporal worker identity, so the autoscaler can tell
	// the host busy or idle (AUTOSCALE_HOST_ACTIVITY=heartbeats). Unset: the
	// worker names no instance.
	GPUInstanceIDFile string `env:"GPU_INSTANCE_ID_FILE"`
	StripeSecretKey   string `env:"STRIPE_SECRET_KEY"`
	// StripePublishableKey (pk_...) lets the web app collect cards with
	// Stripe Elements; without it the app offers only the test card.
	StripePublishableKey string `env:"STRIPE_PUBLISHABLE_KEY"`
	// TemporalUIURL is Temporal's Web UI, for the web app's links from a job
	// or a subscription to its workflow (easel dev sets its own).
	TemporalUIURL string `env:"TEMPORAL_UI_URL"`
	StripeAPIBase string `env:"STRIPE_API_BASE"`
	// StripeWebhookSecret (whsec_...) verifies POST /v1/webhooks/stripe.
	StripeWebhookSecret string `env:"STRIPE_WEBHOOK_SECRET"`
	// TrialDays is the free trial of a new paid subscription.
	TrialDays int `env:"SUBSCRIPTION_TRIAL_DAYS" envDefault:"0"`
	// Autoscaler (control worker): off, or ec2 to size each tier's GPU Auto
	// Scaling group (AUTOSCALE_GROUPS "t4=asg-name,a10g=...").
	AutoscaleDriver       string            `env:"AUTOSCALE_DRIVER" envDefault:"off"`
	AutoscaleGroups       map[string]string `env:"AUTOSCALE_GROUPS" envKeyValSeparator:"="`
	AutoscaleMin          int               `env:"AUTOSCALE_MIN" envDefault:"1"`
	AutoscaleMax          int               `env:"AUTOSCALE_MAX" envDefault:"10"`
	AutoscaleTierMin      map[string]int    `env:"AUTOSCALE_TIER_MIN" envKeyValSeparator:"=" envDefault:"a100=0"`
	AutoscaleUpRules      string            `env:"AUTOSCALE_UP_RULES" envDefault:"10:1:5m,50:3:3m"`
	AutoscaleInBelow      int64             `env:"AUTOSCALE_IN_BELOW" envDefault:"3"`
	AutoscaleInFor        time.Duration     `env:"AUTOSCALE_IN_FOR" envDefault:"10m"`
	AutoscaleTimeZone     string            `env:"AUTOSCALE_TIMEZONE" envDefault:"Asia/Seoul"`
	AutoscaleWindows      string            `env:"AUTOSCALE_WINDOWS" envDefault:"02:00-07:00=2"`
	AutoscalePollInterval time.Duration     `env:"AUTOSCALE_POLL_INTERVAL" envDefault:"30s"`
	// AutoscalePolicy is rules (the backlog-count rules above) or work
	// (scale on the backlog's GPU time and age, a floor from last week,
	// remove idle instances; docs/autoscaling.md).
	AutoscalePolicy         string        `env:"AUTOSCALE_POLICY" envDefault:"rules"`
	AutoscaleUpAge          time.Duration `env:"AUTOSCALE_UP_AGE" envDefault:"10s"`
	AutoscaleUpWait         time.Duration `env:"AUTOSCALE_UP_WAIT" envDefault:"20s"`
	AutoscaleFreeUpAge      time.Duration `env:"AUTOSCALE_FREE_UP_AGE" envDefault:"90s"`
	AutoscaleDrain          time.Duration `env:"AUTOSCALE_DRAIN" envDefault:"4m"`
	AutoscaleIdleFor        time.Duration `env:"AUTOSCALE_IDLE_FOR" envDefault:"10s"`
	AutoscaleBillingPeriod  time.Duration `env:"AUTOSCALE_BILLING_PERIOD" envDefault:"0s"`
	AutoscaleBillingMargin  time.Duration `env:"AUTOSCALE_BILLING_MARGIN" envDefault:"0s"`
	AutoscaleBillingMinimum time.Duration `env:"AUTOSCALE_BILLING_MINIMUM" envDefault:"1m"`
	AutoscaleFloor          float64       `env:"AUTOSCALE_FLOOR" envDefault:"0.8"`
	AutoscaleFloorLead      time.Duration `env:"AUTOSCALE_FLOOR_LEAD" envDefault:"10m"`
	// AutoscaleSpotGroups names each tier's spot group (tier=group); a
	// tier listed runs the work policy's floor on spot.
	AutoscaleSpotGroups map[string]string `env:"AUTOSCALE_SPOT_GROUPS" envKeyValSeparator:"="`
	// AutoscaleWarmPool is the prepared capacity of each tier's on-demand
	// group with its warm pool (tier=n); a tier not listed keeps its group
	// as it is.
	AutoscaleWarmPool map[string]int `env:"AUTOSCALE_WARM_POOL" envKeyValSeparator:"="`
	// AutoscaleHostActivity is where the EC2 driver learns which hosts
	// render: off, or heartbeats (Temporal worker heartbeats of the GPU
	// workers, which name their EC2 instance in their identity).
	AutoscaleHostActivity string     `env:"AUTOSCALE_HOST_ACTIVITY" envDefault:"off"`
	NotifySender          string     `env:"NOTIFY_SENDER" envDefault:"log"`
	NotifyFrom            string     `env:"NOTIFY_FROM"`
	LogFormat             string     `env:"LOG_FORMAT" envDefault:"json"`
	LogLevel              slog.Level `env:"LOG_LEVEL" envDefault:"info"`

	// WebhookAllowLocal lets customers' webhooks reach loopback addresses
	// over plain http: for development only (DEPLOYMENT_MODE=dev, which
	// easel dev sets with it). Production sends https to public addresses.
	WebhookAllowLocal bool `env:"WEBHOOK_ALLOW_LOCAL"`

	// TemporalDB is where the embedded Temporal server (easel dev, easel
	// temporal) keeps its state: sqlite (a file in the state folder) or
	// postgres (two databases on a Postgres server, as production's
	// cluster does).
	TemporalDB string `env:"TEMPORAL_DB" envDefault:"sqlite"`
	// TemporalDatabaseURL names, with TEMPORAL_DB=postgres, the Postgres
	// server and the persistence database (visibility goes to
	// <name>_visibility); default: DATABASE_URL's server, database temporal.
	TemporalDatabaseURL string `env:"TEMPORAL_DATABASE_URL"`
}

// Needs names what a subcommand requires.
type Needs struct {
	Database, Redis, Temporal, S3, OIDC bool
	// API opens a second pool working as DATABASE_ROLE under row-level
	// security, for the HTTP API.
	API bool
	// EmbeddedTemporal runs the embedded Temporal server (TEMPORAL_DB).
	EmbeddedTemporal bool
}

// Load reads the environment.
func Load() (Config, error) {
	var c Config
	if err := env.Parse(&c); err != nil {
		// The values that did not parse are read again as unset (their
		// defaults), so that Validate reports what else is wrong beside the
		// parse errors, and not those values again.
		environ := env.ToMap(os.Environ())
		var agg env.AggregateError
		if errors.As(err, &agg) {
			for _, e := range agg.Errors {
				var pe env.ParseError
				if errors.As(e, &pe) {
					delete(environ, envName(pe.Name))
				}
			}
		}
		c = Config{}
		_ = env.ParseWithOptions(&c, env.Options{Environment: environ})
		return c, fmt.Errorf("read configuration from the environment: %s", withEnvNames(err.Error()))
	}
	return c, nil
}

// envName is the environment variable of a Config field.
func envName(field string) string {
	if f, ok := reflect.TypeFor[Config]().FieldByName(field); ok {
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		return name
	}
	return field
}

// withEnvNames rewrites the parser's Go field names into the environment
// names an operator actually sets.
func withEnvNames(msg string) string {
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" {
			msg = strings.ReplaceAll(msg, `"`+f.Name+`"`, name)
		}
	}
	return msg
}

// Validate reports every missing or malformed value a subcommand needs, all
// at once, each with what to set.
func (c Config) Validate(n Needs) error {
	var errs []error
	missing := func(name, why string) { errs = append(errs, fmt.Errorf("%s is not set: %s", name, why)) }
	if n.Database && c.DatabaseURL == "" {
		missing("DATABASE_URL", "the Postgres URL, e.g. postgres://user@host:5432/easel?sslmode=require")
	}
	if n.Redis && c.RedisURL == "" {
		missing("REDIS_URL", "the Redis URL, e.g. redis://host:6379/0")
	}
	if n.Temporal && c.TemporalAddress == "" {
		missing("TEMPORAL_ADDRESS", "the Temporal frontend host:port")
	}
	if n.S3 && c.S3Bucket == "" {
		missing("S3_BUCKET", "the bucket that holds users' images")
	}
	if n.OIDC && c.OIDCIssuer == "" {
		missing("OIDC_ISSUER", "the ID token issuer, e.g. https://cognito-idp.<region>.amazonaws.com/<user pool id>")
	}
	if n.OIDC {
		for name, v := range map[string]string{"OIDC_ISSUER": c.OIDCIssuer, "OIDC_JWKS_URL": c.OIDCJWKSURL} {
			if u, err := url.Parse(v); v != "" && (err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "") {
				errs = append(errs, fmt.Errorf("%s=%q must be an http(s) URL, e.g. https://cognito-idp.<region>.amazonaws.com/<user pool id>", name, v))
			}
		}
	}
	if n.OIDC && c.OIDCAudience == "" {
		missing("OIDC_AUDIENCE", "the app client id ID tokens are issued for")
	}
	errs = append(errs, c.validateTemporalDB(n.EmbeddedTemporal)...)
	if c.PresignTTL <= 0 || c.PresignTTL > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("PRESIGN_TTL=%s must be between 1s and 168h", c.PresignTTL))
	}
	if c.GPUSlots < 1 {
		errs = append(errs, fmt.Errorf("GPU_SLOTS=%d must be at least 1", c.GPUSlots))
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("DRAIN_TIMEOUT=%s must be positive", c.DrainTimeout))
	}
	if set := countSet(c.CloudFrontDomain, c.CloudFrontKeyID, c.CloudFrontPrivateKey); set != 0 && set != 3 {
		errs = append(errs, errors.New("CLOUDFRONT_DOMAIN, CLOUDFRONT_KEY_ID and CLOUDFRONT_PRIVATE_KEY go together: set all three or none"))
	}
	if c.AutoscaleDriver != "off" && c.AutoscaleDriver != "ec2" {
		errs = append(errs, fmt.Errorf("AUTOSCALE_DRIVER=%q must be off or ec2", c.AutoscaleDriver))
	}
	if c.AutoscalePolicy != "rules" && c.AutoscalePolicy != "work" {
		errs = append(errs, fmt.Errorf("AUTOSCALE_POLICY=%q must be rules or work", c.AutoscalePolicy))
	}
	if c.AutoscaleDriver == "ec2" && len(c.AutoscaleGroups) == 0 {
		missing("AUTOSCALE_GROUPS", "the GPU Auto Scaling group of each tier, e.g. t4=easel-gpu-t4,a10g=easel-gpu-a10g")
	}
	errs = append(errs, knownTiers("AUTOSCALE_GROUPS", maps.Keys(c.AutoscaleGroups))...)
	errs = append(errs, knownTiers("AUTOSCALE_TIER_MIN", maps.Keys(c.AutoscaleTierMin))...)
	errs = append(errs, c.validateAutoscaleFleet()...)
	switch c.NotifySender {
	case "log":
	case "ses":
		if c.NotifyFrom == "" {
			missing("NOTIFY_FROM", "the verified SES sender address notices are sent from")
		}
	default:
		errs = append(errs, fmt.Errorf("NOTIFY_SENDER=%q must be log or ses", c.NotifySender))
	}
	if c.DeploymentMode != "saas" && c.DeploymentMode != "dev" {
		errs = append(errs, fmt.Errorf("DEPLOYMENT_MODE=%q must be saas or dev", c.DeploymentMode))
	}
	if c.TrialDays < 0 {
		errs = append(errs, fmt.Errorf("SUBSCRIPTION_TRIAL_DAYS=%d must be 0 (no trial) or more", c.TrialDays))
	}
	if c.WebhookAllowLocal && c.DeploymentMode != "dev" {
		errs = append(errs, fmt.Errorf("WEBHOOK_ALLOW_LOCAL=true lets webhooks reach this machine: it needs DEPLOYMENT_MODE=dev (it is %q)",
			c.DeploymentMode))
	}
	if f := strings.ToLower(c.LogFormat); f != "json" && f != "text" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT=%q must be json or text", c.LogFormat))
	}
	return errors.Join(errs...)
}

// instanceIDPattern is an EC2 instance id: i- and 8 (older instances) or 17
// lower-case hex digits.
var instanceIDPattern = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)

// GPUInstanceID reads the host's EC2 instance id from GPU_INSTANCE_ID_FILE:
// "" when the setting is unset; an error when the file cannot be read or
// holds anything but one instance id (surrounding white space aside). The
// GPU worker refuses to start on that error rather than run unnamed: the
// autoscaler would count an unnamed worker's host as booting for as long
// as it runs and never protect it from scale-in while it renders.
func (c Config) GPUInstanceID() (string, error) {
	if c.GPUInstanceIDFile == "" {
		return "", nil
	}
	data, err := os.ReadFile(c.GPUInstanceIDFile)
	if err != nil {
		return "", fmt.Errorf("GPU_INSTANCE_ID_FILE: %w (the GPU host writes its EC2 instance id there at boot)", err)
	}
	id := strings.TrimSpace(string(data))
	if !instanceIDPattern.MatchString(id) {
		if len(id) > 40 {
			id = id[:40] + "..."
		}
		return "", fmt.Errorf("GPU_INSTANCE_ID_FILE=%s holds %q, not an EC2 instance id (i- and 8 or 17 hex digits)",
			c.GPUInstanceIDFile, id)
	}
	return id, nil
}

// Embedded Temporal persistence (TEMPORAL_DB).
const (
	TemporalDBSQLite   = "sqlite"
	TemporalDBPostgres = "postgres"
)

// DefaultTemporalDatabase is the embedded server's persistence database on
// DATABASE_URL's server when TEMPORAL_DATABASE_URL is not set.
const DefaultTemporalDatabase = "temporal"

// validateTemporalDB checks TEMPORAL_DB always, and where its databases go
// when the command runs the embedded server.
func (c Config) validateTemporalDB(embedded bool) []error {
	switch c.TemporalDB {
	case TemporalDBSQLite:
		return nil
	case TemporalDBPostgres:
	default:
		return []error{fmt.Errorf("TEMPORAL_DB=%q (or --temporal-db) must be %s or %s", c.TemporalDB, TemporalDBSQLite, TemporalDBPostgres)}
	}
	if !embedded {
		return nil
	}
	if c.TemporalDatabaseURL == "" && c.DatabaseURL == "" {
		return []error{errors.New("TEMPORAL_DB=postgres needs TEMPORAL_DATABASE_URL or DATABASE_URL: the Postgres server for Temporal's databases")}
	}
	if _, err := c.TemporalPostgresURL(); err != nil {
		return []error{err}
	}
	return nil
}

// TemporalPostgresURL is where the embedded Temporal server keeps its state
// with TEMPORAL_DB=postgres: TEMPORAL_DATABASE_URL, or DATABASE_URL with
// its database replaced by "temporal".
func (c Config) TemporalPostgresURL() (string, error) {
	name, raw := "TEMPORAL_DATABASE_URL", c.TemporalDatabaseURL
	if raw == "" {
		name, raw = "DATABASE_URL", c.DatabaseURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return "", fmt.Errorf("%s must be a postgres://user@host:port/database URL for Temporal's databases", name)
	}
	if c.TemporalDatabaseURL == "" {
		u.Path = "/" + DefaultTemporalDatabase
	} else if strings.Trim(u.Path, "/") == "" {
		return "", errors.New("TEMPORAL_DATABASE_URL names no database: add one, e.g. /temporal")
	}
	return u.String(), nil
}

// JWKSURL is where the ID tokens' keys are read: OIDC_JWKS_URL, or the
// issuer's /.well-known/jwks.json.
func (c Config) JWKSURL() string {
	if c.OIDCJWKSURL != "" {
		return c.OIDCJWKSURL
	}
	return strings.TrimSuffix(c.OIDCIssuer, "/") + "/.well-known/jwks.json"
}

// Logger builds the process logger: JSON in production, text for humans.
func (c Config) Logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if strings.EqualFold(c.LogFormat, "text") {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

func countSet(values ...string) int {
	n := 0
	for _, v := range values {
		if v != "" {
			n++
		}
	}
	return n
}

// knownTiers refuses a tier=value setting naming a tier the catalog lacks.
func knownTiers(name string, tiers iter.Seq[string]) []error {
	var errs []error
	for _, tier := range slices.Sorted(tiers) {
		if _, ok := catalog.TierByName(tier); !ok {
			errs = append(errs, fmt.Errorf("%s: unknown GPU tier %q (tiers: %s)", name, tier,
				strings.Join(catalog.TierNames(), ", ")))
		}
	}
	return errs
}

// validateAutoscaleFleet checks the spot groups, warm pools and host
// activity source of the autoscaler.
func (c Config) validateAutoscaleFleet() []error {
	var errs []error
	errs = append(errs, knownTiers("AUTOSCALE_SPOT_GROUPS", maps.Keys(c.AutoscaleSpotGroups))...)
	errs = append(errs, knownTiers("AUTOSCALE_WARM_POOL", maps.Keys(c.AutoscaleWarmPool))...)
	for _, tier := range slices.Sorted(maps.Keys(c.AutoscaleSpotGroups)) {
		if c.AutoscaleGroups[tier] == "" {
			errs = append(errs, fmt.Errorf("AUTOSCALE_SPOT_GROUPS names a spot group for %s, which has no group in AUTOSCALE_GROUPS to fall back on", tier))
		}
	}
	for _, tier := range slices.Sorted(maps.Keys(c.AutoscaleWarmPool)) {
		if n := c.AutoscaleWarmPool[tier]; n < 0 {
			errs = append(errs, fmt.Errorf("AUTOSCALE_WARM_POOL=%s=%d must not be negative", tier, n))
		}
	}
	if c.AutoscaleHostActivity != "off" && c.AutoscaleHostActivity != "heartbeats" {
		errs = append(errs, fmt.Errorf("AUTOSCALE_HOST_ACTIVITY=%q must be off or heartbeats", c.AutoscaleHostActivity))
	}
	return errs
}
