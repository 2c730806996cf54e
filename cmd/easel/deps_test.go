package main

import (
	"strings"
	"testing"

	"github.com/easel/easel/internal/config"
)

// A malformed connection URL is reported by name with its password
// masked: the error goes to the container's log.
func TestConfigErrorsMaskPasswords(t *testing.T) {
	cfg := config.Config{DatabaseURL: "postgres://u:S3cretDB@host:badport/x",
		RedisURL: "redis://:S3cretRedis@host:6379/notanumber"}
	err := checkConfig(cfg, config.Needs{Database: true, Redis: true})
	if err == nil {
		t.Fatal("malformed URLs accepted")
	}
	msg := err.Error()
	for _, name := range []string{"DATABASE_URL", "REDIS_URL", "invalid database number"} {
		if !strings.Contains(msg, name) {
			t.Errorf("the error does not say %q: %s", name, msg)
		}
	}
	for _, secret := range []string{"S3cretDB", "S3cretRedis"} {
		if strings.Contains(msg, secret) {
			t.Errorf("the error shows the password %s: %s", secret, msg)
		}
	}
}
