package testenv

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/easel/easel/internal/devstack"
	"github.com/easel/easel/internal/objects"
)

// S3 test server settings. Each test gets its own versitygw process, so
// fixed names and credentials cannot collide.
const (
	S3Bucket    = "easel-test"
	s3AccessKey = "easel-test-access"
	s3SecretKey = "easel-test-secret"
	s3Region    = "us-east-1"
)

// S3 starts a versitygw S3 server backed by a temporary directory, creates
// S3Bucket on it and returns the configuration to reach it. The server stops
// when the test ends. Without a versitygw binary the test is skipped
// (failed under CI=true).
func S3(t testing.TB) objects.Config {
	t.Helper()
	bin, err := devstack.FindVersityGW(RepoRoot(t))
	if err != nil {
		Unavailable(t, "%v", err)
	}
	logDir := t.TempDir() // created first, removed after the server stops
	srv, err := devstack.StartS3(context.Background(), devstack.S3Options{Binary: bin, Dir: t.TempDir(),
		AccessKey: s3AccessKey, SecretKey: s3SecretKey, LogPath: filepath.Join(logDir, "versitygw.log")})
	if err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	t.Cleanup(srv.Stop)
	cfg := objects.Config{Bucket: S3Bucket, Region: s3Region, Endpoint: srv.Endpoint(), PathStyle: true,
		AccessKeyID: s3AccessKey, SecretAccessKey: s3SecretKey}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bucket, err := objects.New(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to versitygw: %v", err)
	}
	if err := bucket.EnsureBucket(ctx); err != nil {
		t.Fatalf("create test bucket: %v", err)
	}
	return cfg
}
