// Package stripemock runs stripe-mock (Stripe's API answered from its
// OpenAPI spec and fixtures) for development and tests, and provides a
// transport that turns its fixed answers into the outcomes Easel needs:
// stripe-mock never confirms a payment (every PaymentIntent comes back
// requires_payment_method), so Transport marks confirmed intents succeeded
// unless told to decline.
package stripemock

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Version is the stripe-mock release the Makefile installs into .bin.
const Version = "v0.203.0"

// Key is a secret key stripe-mock accepts: it checks only that the key
// looks like a test-mode key.
const Key = "sk_test_easel"

// Start runs stripe-mock on free ports and returns its HTTP base URL and a
// stop function. A port found free may be taken before stripe-mock binds
// it, so a server that exits before answering is retried on other ports.
func Start(bin, logPath string) (url string, stop func(), err error) {
	for range 3 {
		if url, stop, err = start(bin, logPath); err == nil {
			return url, stop, nil
		}
	}
	return "", nil, err
}

// Find locates the stripe-mock binary: $EASEL_STRIPE_MOCK,
// <root>/.bin/stripe-mock, or PATH; "" when there is none.
func Find(root string) string {
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

func start(bin, logPath string) (string, func(), error) {
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
