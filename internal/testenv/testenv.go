// Package testenv starts or connects to the real services Easel's tests run
// against: Postgres, Redis, an S3-compatible server (versitygw) and an
// embedded Temporal server. When a service is missing a test is skipped, except
// under CI=true, where a missing service fails the test.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// Unavailable skips the test, or fails it under CI=true, when a service the
// test needs cannot be reached.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("required test service unavailable (CI=true): "+format, args...)
	}
	t.Skipf("test service unavailable: "+format, args...)
}

// RepoRoot returns the directory holding go.mod, found by walking up from the
// working directory of the test.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// Getenv returns the environment value for key, or def when unset.
func Getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
