package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

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

// s3StartTimeout bounds how long versitygw may take to answer; it normally
// takes well under a second, but shared CI machines can be slow.
const s3StartTimeout = 20 * time.Second

// S3 starts a versitygw S3 server backed by a temporary directory, creates
// S3Bucket on it and returns the configuration to reach it. The server stops
// when the test ends. The binary comes from $EASEL_VERSITYGW, else
// <repo>/.bin/versitygw, else versitygw on PATH; without one the test is
// skipped (failed under CI=true).
func S3(t testing.TB) storage.Config {
	t.Helper()
	bin := versitygwBinary(t)
	addr := startVersitygw(t, bin)
	cfg := storage.Config{
		Bucket:          S3Bucket,
		Region:          s3Region,
		Endpoint:        "http://" + addr,
		PathStyle:       true,
		AccessKeyID:     s3AccessKey,
		SecretAccessKey: s3SecretKey,
	}
	createBucket(t, cfg)
	return cfg
}

// versitygwBinary finds the server binary, skipping the test when none is
// installed.
func versitygwBinary(t testing.TB) string {
	t.Helper()
	candidates := []string{
		os.Getenv("EASEL_VERSITYGW"),
		filepath.Join(RepoRoot(t), ".bin", "versitygw"),
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if info, err := os.Stat(c); err == nil && !info.IsDir() {
			return c
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	Unavailable(t, "versitygw binary not found: set EASEL_VERSITYGW, "+
		"install it into .bin (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0) or put it on PATH")
	return ""
}

// startVersitygw runs the server on a free local port and returns its
// address once it answers HTTP. Picking a free port then handing it to the
// server is racy, so a server that dies before answering is retried.
func startVersitygw(t testing.TB, bin string) string {
	t.Helper()
	var lastErr error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			t.Fatalf("find free port for versitygw: %v", err)
		}
		if lastErr = runVersitygw(t, bin, addr); lastErr == nil {
			return addr
		}
	}
	t.Fatalf("start versitygw: %v", lastErr)
	return ""
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// runVersitygw starts one server process and registers its shutdown. It
// returns an error, including the server's log, when the server exits or
// stays silent instead of answering.
func runVersitygw(t testing.TB, bin, addr string) error {
	t.Helper()
	// Created before the cleanup below is registered, so the directories
	// are removed only after the server has stopped writing to them.
	root, logDir := t.TempDir(), t.TempDir()
	logPath := filepath.Join(logDir, "versitygw.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("create log file: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor

	cmd := exec.Command(bin, "--port", addr, "posix", root)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s3AccessKey, "ROOT_SECRET_KEY="+s3SecretKey)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { stopProcess(cmd, exited) })

	if err := waitHTTP(addr, exited); err != nil {
		stopProcess(cmd, exited)
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("versitygw on %s: %w; log:\n%s", addr, err, out)
	}
	return nil
}

// waitHTTP polls addr until it gives any HTTP response: versitygw answers
// unauthenticated requests with 403, which is enough to know it is serving.
func waitHTTP(addr string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(s3StartTimeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("server exited before answering")
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no answer within %v", s3StartTimeout)
}

// stopProcess asks the server to shut down cleanly, then kills it if it
// lingers so a stuck server cannot hang the test binary.
func stopProcess(cmd *exec.Cmd, exited <-chan struct{}) {
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func createBucket(t testing.TB, cfg storage.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := storage.New(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to versitygw: %v", err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Fatalf("create test bucket: %v", err)
	}
}
