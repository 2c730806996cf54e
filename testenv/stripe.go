package testenv

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// StripeMockVersion is the stripe-mock release the Makefile installs into .bin.
const StripeMockVersion = "v0.203.0"

// StripeMockKey is a secret key stripe-mock accepts: it checks only that the
// key looks like a test-mode key.
const StripeMockKey = "sk_test_easel"

// StripeMock starts a stripe-mock server (Stripe's API answered from its
// OpenAPI spec and fixtures) for the test and returns its HTTP base URL. The
// server stops when the test ends. Without a stripe-mock binary
// ($EASEL_STRIPE_MOCK, <repo>/.bin/stripe-mock, or PATH) the test is skipped
// (failed under CI=true).
func StripeMock(t testing.TB) (baseURL string) {
	t.Helper()
	bin := findStripeMock(RepoRoot(t))
	if bin == "" {
		Unavailable(t, "stripe-mock binary not found: install it with `make tools` (go install "+
			"github.com/stripe/stripe-mock@%s into .bin), set EASEL_STRIPE_MOCK, or put stripe-mock on PATH",
			StripeMockVersion)
	}
	logPath := filepath.Join(t.TempDir(), "stripe-mock.log")
	// A port found free may be taken before stripe-mock binds it; a server
	// that exits before answering is retried on other ports.
	var lastErr error
	for range 3 {
		url, stop, err := startStripeMock(bin, logPath)
		if err == nil {
			t.Cleanup(stop)
			return url
		}
		lastErr = err
	}
	t.Fatalf("start stripe-mock: %v", lastErr)
	return ""
}

func findStripeMock(root string) string {
	for _, c := range []string{os.Getenv("EASEL_STRIPE_MOCK"), filepath.Join(root, ".bin", "stripe-mock")} {
		if c == "" {
			continue
		}
		if info, err := os.Stat(c); err == nil && !info.IsDir() {
			return c
		}
	}
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	return ""
}

func startStripeMock(bin, logPath string) (string, func(), error) {
	httpPort, err := freeStripeMockPort()
	if err != nil {
		return "", nil, err
	}
	// stripe-mock serves HTTPS too unless given a port for it; pin that to a
	// free port as well so it never collides with a fixed default.
	httpsPort, err := freeStripeMockPort()
	if err != nil {
		return "", nil, err
	}
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", nil, fmt.Errorf("open stripe-mock log: %w", err)
	}
	defer log.Close() // the child keeps its own descriptor
	cmd := exec.Command(bin, "-http-port", strconv.Itoa(httpPort), "-https-port", strconv.Itoa(httpsPort))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	url := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	if err := waitStripeMock(url, exited, 20*time.Second); err != nil {
		stop()
		out, _ := os.ReadFile(logPath)
		return "", nil, fmt.Errorf("stripe-mock on %s: %w\n%s", url, err, out)
	}
	return url, stop, nil
}

// waitStripeMock polls until the server gives any HTTP answer: stripe-mock answers
// an unauthenticated request with 401, which is enough to know it serves.
func waitStripeMock(url string, exited <-chan struct{}, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url + "/")
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
	return fmt.Errorf("no answer within %v", timeout)
}

func freeStripeMockPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
