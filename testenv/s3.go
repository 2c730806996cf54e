package testenv

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/easel/easel/locals3"
	"github.com/easel/easel/storage"
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
func S3(t testing.TB) storage.Config {
	t.Helper()
	bin, err := locals3.FindBinary(RepoRoot(t))
	if err != nil {
		Unavailable(t, "%v", err)
	}
	logDir := t.TempDir() // created first, removed after the server stops
	srv, err := locals3.Start(context.Background(), locals3.Options{Binary: bin, Dir: t.TempDir(),
		AccessKey: s3AccessKey, SecretKey: s3SecretKey, LogPath: filepath.Join(logDir, "versitygw.log")})
	if err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	t.Cleanup(srv.Stop)
	cfg := storage.Config{Bucket: S3Bucket, Region: s3Region, Endpoint: srv.Endpoint(), PathStyle: true,
		AccessKeyID: s3AccessKey, SecretAccessKey: s3SecretKey}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	objects, err := storage.New(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to versitygw: %v", err)
	}
	if err := objects.EnsureBucket(ctx); err != nil {
		t.Fatalf("create test bucket: %v", err)
	}
	return cfg
}
