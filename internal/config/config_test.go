package config

import (
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

// Settings that only work together are refused alone, by name.
func TestValidateRefusesHalfSettings(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"cloudfront without key":        {map[string]string{"CLOUDFRONT_DOMAIN": "cdn.example.com"}, "CLOUDFRONT_PRIVATE_KEY"},
		"ec2 autoscaler without groups": {map[string]string{"AUTOSCALE_DRIVER": "ec2"}, "AUTOSCALE_GROUPS"},
		"unknown autoscaler driver":     {map[string]string{"AUTOSCALE_DRIVER": "k8s"}, "AUTOSCALE_DRIVER"},
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
