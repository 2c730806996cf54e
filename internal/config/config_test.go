package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateNamesEveryMissingValue(t *testing.T) {
	t.Setenv("PRESIGN_TTL", "1h")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	c.DatabaseURL, c.RedisURL, c.S3Bucket = "", "", ""
	err = c.Validate(Needs{Database: true, Redis: true, S3: true})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"DATABASE_URL", "REDIS_URL", "S3_BUCKET"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if err := c.Validate(Needs{}); err != nil {
		t.Fatalf("nothing needed: %v", err)
	}
}

func TestLoadRejectsMalformed(t *testing.T) {
	t.Setenv("PRESIGN_TTL", "soon")
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "PRESIGN_TTL") {
		t.Fatalf("err = %v, want one naming PRESIGN_TTL", err)
	}
}

// A value that does not parse hides nothing else: the config keeps what did
// parse, so Validate reports the missing and malformed values beside it,
// and not the unparsed one again as the zero it was left at.
func TestParseErrorsHideNothing(t *testing.T) {
	t.Setenv("PRESIGN_TTL", "abc")
	t.Setenv("GPU_SLOTS", "x")
	t.Setenv("LOG_FORMAT", "xml")
	t.Setenv("DATABASE_URL", "")
	c, err := Load()
	if err == nil || !strings.Contains(err.Error(), "PRESIGN_TTL") || !strings.Contains(err.Error(), "GPU_SLOTS") {
		t.Fatalf("load: %v", err)
	}
	verr := c.Validate(Needs{Database: true})
	if verr == nil || !strings.Contains(verr.Error(), "DATABASE_URL is not set") || !strings.Contains(verr.Error(), "LOG_FORMAT") {
		t.Fatalf("validate after a parse error: %v; want the missing DATABASE_URL and the bad LOG_FORMAT", verr)
	}
	if strings.Contains(verr.Error(), "PRESIGN_TTL") || strings.Contains(verr.Error(), "GPU_SLOTS") {
		t.Fatalf("validate reports the unparsed values again: %v", verr)
	}
}

// Settings that only work together are refused alone, by name.
func TestValidateRefusesHalfSettings(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"cloudfront without key":        {map[string]string{"CLOUDFRONT_DOMAIN": "cdn.example.com"}, "CLOUDFRONT_PRIVATE_KEY"},
		"ec2 autoscaler without groups": {map[string]string{"AUTOSCALE_DRIVER": "ec2"}, "AUTOSCALE_GROUPS"},
		"unknown autoscaler driver":     {map[string]string{"AUTOSCALE_DRIVER": "k8s"}, "AUTOSCALE_DRIVER"},
		"unknown autoscaling policy":    {map[string]string{"AUTOSCALE_POLICY": "magic"}, "AUTOSCALE_POLICY"},
		"group of an unknown tier":      {map[string]string{"AUTOSCALE_GROUPS": "t4=a,h100=b"}, `unknown GPU tier "h100"`},
		"minimum of an unknown tier":    {map[string]string{"AUTOSCALE_TIER_MIN": "v100=1"}, "AUTOSCALE_TIER_MIN"},
		"local webhooks in production":  {map[string]string{"WEBHOOK_ALLOW_LOCAL": "true"}, "DEPLOYMENT_MODE=dev"},
		"unknown deployment mode":       {map[string]string{"DEPLOYMENT_MODE": "prod"}, "DEPLOYMENT_MODE"},
		"negative trial":                {map[string]string{"SUBSCRIPTION_TRIAL_DAYS": "-5"}, "SUBSCRIPTION_TRIAL_DAYS"},
	} {
		t.Run(name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := Load()
			if err != nil {
				t.Fatal(err)
			}
			if err = c.Validate(Needs{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// Per-tier settings are tier=value lists.
func TestTierSettings(t *testing.T) {
	t.Setenv("AUTOSCALE_GROUPS", "t4=easel-gpu-t4,a10g=easel-gpu-a10g")
	t.Setenv("AUTOSCALE_TIER_MIN", "a100=0,t4=2")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.AutoscaleGroups["t4"] != "easel-gpu-t4" || c.AutoscaleGroups["a10g"] != "easel-gpu-a10g" || len(c.AutoscaleGroups) != 2 {
		t.Fatalf("groups = %v", c.AutoscaleGroups)
	}
	if c.AutoscaleTierMin["t4"] != 2 || c.AutoscaleTierMin["a100"] != 0 || len(c.AutoscaleTierMin) != 2 {
		t.Fatalf("minimums = %v", c.AutoscaleTierMin)
	}
	t.Setenv("AUTOSCALE_TIER_MIN", "t4=two")
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), "AUTOSCALE_TIER_MIN") {
		t.Fatalf("err = %v, want one naming AUTOSCALE_TIER_MIN", err)
	}
}

// easel dev's webhooks may reach this machine; only there.
func TestLocalWebhooksInDevelopment(t *testing.T) {
	t.Setenv("WEBHOOK_ALLOW_LOCAL", "true")
	t.Setenv("DEPLOYMENT_MODE", "dev")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(Needs{}); err != nil || !c.WebhookAllowLocal {
		t.Fatalf("validate: %v (allow local %v)", err, c.WebhookAllowLocal)
	}
}

// GPU_INSTANCE_ID_FILE: unset names no instance; set, the file must hold
// one EC2 instance id, or the GPU worker does not start.
func TestGPUInstanceID(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	if id, err := (Config{}).GPUInstanceID(); id != "" || err != nil {
		t.Fatalf("unset: %q, %v; want no instance and no error", id, err)
	}
	for content, want := range map[string]string{
		"i-0123456789abcdef0\n": "i-0123456789abcdef0", // as the host's user data writes it
		" i-0a1b2c3d ":          "i-0a1b2c3d",          // an older instance's 8 digits
	} {
		id, err := Config{GPUInstanceIDFile: write("good", content)}.GPUInstanceID()
		if id != want || err != nil {
			t.Errorf("file %q: %q, %v; want %s", content, id, err, want)
		}
	}
	for name, path := range map[string]string{
		"missing":   filepath.Join(dir, "absent"),
		"directory": dir,
		"empty":     write("empty", ""),
		"garbled":   write("garbled", "<html>401 Unauthorized</html>"),
		"two ids":   write("two", "i-0123456789abcdef0\ni-0123456789abcdef1\n"),
		"upper":     write("upper", "i-0123456789ABCDEF0"),
		"short":     write("short", "i-0123456"),
	} {
		id, err := Config{GPUInstanceIDFile: path}.GPUInstanceID()
		if err == nil || id != "" || !strings.Contains(err.Error(), "GPU_INSTANCE_ID_FILE") {
			t.Errorf("%s: %q, %v; want an error naming GPU_INSTANCE_ID_FILE", name, id, err)
		}
	}
}

func TestTemporalDB(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if c.TemporalDB != TemporalDBSQLite {
		t.Fatalf("default TEMPORAL_DB = %q, want sqlite", c.TemporalDB)
	}
	c.TemporalDB = "mysql"
	if err := c.Validate(Needs{}); err == nil || !strings.Contains(err.Error(), "TEMPORAL_DB") {
		t.Fatalf("TEMPORAL_DB=mysql: %v, want an error naming TEMPORAL_DB", err)
	}

	c.TemporalDB, c.DatabaseURL = TemporalDBPostgres, ""
	if err := c.Validate(Needs{EmbeddedTemporal: true}); err == nil || !strings.Contains(err.Error(), "TEMPORAL_DATABASE_URL") {
		t.Fatalf("postgres without a server: %v, want an error naming TEMPORAL_DATABASE_URL", err)
	}
	if err := c.Validate(Needs{}); err != nil {
		t.Fatalf("a command without the embedded server: %v", err)
	}

	c.DatabaseURL = "postgres://easel:pw@db:5432/easel?sslmode=disable"
	got, err := c.TemporalPostgresURL()
	if want := "postgres://easel:pw@db:5432/temporal?sslmode=disable"; err != nil || got != want {
		t.Fatalf("TemporalPostgresURL = %q, %v; want %q", got, err, want)
	}
	c.TemporalDatabaseURL = "postgres://t@other:5433/tstate"
	if got, err := c.TemporalPostgresURL(); err != nil || got != c.TemporalDatabaseURL {
		t.Fatalf("TemporalPostgresURL = %q, %v; want TEMPORAL_DATABASE_URL", got, err)
	}
	c.TemporalDatabaseURL = "postgres://t@other:5433/"
	if err := c.Validate(Needs{EmbeddedTemporal: true}); err == nil || !strings.Contains(err.Error(), "names no database") {
		t.Fatalf("URL without a database: %v", err)
	}
}

// The issuer and the key set's URL must be URLs, named when they are not.
func TestValidateOIDCURLs(t *testing.T) {
	for name, want := range map[string]string{"OIDC_ISSUER": "OIDC_ISSUER=\"not-a-url\"", "OIDC_JWKS_URL": "OIDC_JWKS_URL=\"not-a-url\""} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("OIDC_ISSUER", "https://issuer.example")
			t.Setenv("OIDC_AUDIENCE", "easel")
			t.Setenv(name, "not-a-url")
			c, err := Load()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(Needs{OIDC: true}); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want one naming %s", err, want)
			}
		})
	}
	t.Setenv("OIDC_ISSUER", "https://issuer.example")
	t.Setenv("OIDC_AUDIENCE", "easel")
	t.Setenv("OIDC_JWKS_URL", "")
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(Needs{OIDC: true}); err != nil || c.JWKSURL() != "https://issuer.example/.well-known/jwks.json" {
		t.Fatalf("valid issuer: %v, JWKS %q", err, c.JWKSURL())
	}
}
