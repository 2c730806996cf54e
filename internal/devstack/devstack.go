// Package devstack holds what `easel dev` and the tests start beside the
// product: a local S3-compatible server (versitygw), stripe-mock with a
// transport that settles its payments, and (in temporalserver) an embedded
// Temporal server with its Web UI. The two launchers share Launch: find the
// binary, pick free ports, start, wait for an HTTP answer, retry.
package devstack

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed tools.env
var toolsEnv string

// Tool versions the Makefile installs into .bin (`make tools`), read from
// tools.env, which the Makefile includes too.
var (
	VersityGWVersion  = toolVersion("VERSITYGW_VERSION")
	StripeMockVersion = toolVersion("STRIPE_MOCK_VERSION")
)

func toolVersion(name string) string {
	for line := range strings.Lines(toolsEnv) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+"="); ok {
			return v
		}
	}
	panic("devstack: tools.env lacks " + name)
}

// FindBinary looks for a tool in $envVar, then <root>/.bin/<name>, then PATH,
// and returns "" when there is none.
func FindBinary(envVar, root, name string) string {
	for _, c := range []string{os.Getenv(envVar), filepath.Join(root, ".bin", name)} {
		if c == "" {
			continue
		}
		if info, err := os.Stat(c); err == nil && !info.IsDir() {
			return c
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

// Launch describes a child server to start.
type Launch struct {
	Name    string // for errors: "versitygw"
	Binary  string
	Host    string                                  // where it listens; "" is 127.0.0.1
	Ports   []int                                   // fixed ports; nil picks Free free loopback ones
	Free    int                                     // how many free ports to pick when Ports is nil
	Args    func(host string, ports []int) []string // the command line
	Env     []string                                // added to the environment
	LogPath string                                  // server output; "" discards it
	Timeout time.Duration                           // until it answers HTTP on the first port (default 20 s)
}

// Process is a running child server.
type Process struct {
	Host   string
	Ports  []int
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs the server and returns once it answers HTTP on its first port.
// With free ports picked for it, a server that dies before answering (a port
// was taken meanwhile) is retried on others.
func (l Launch) Start(ctx context.Context) (*Process, error) {
	if l.Timeout <= 0 {
		l.Timeout = 20 * time.Second
	}
	if l.Host == "" {
		l.Host = "127.0.0.1"
	}
	if l.Ports != nil {
		return l.start(ctx, l.Ports)
	}
	var lastErr error
	for range 3 {
		ports, err := freePorts(max(l.Free, 1))
		if err != nil {
			return nil, fmt.Errorf("find free ports for %s: %w", l.Name, err)
		}
		p, err := l.start(ctx, ports)
		if err == nil {
			return p, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func (l Launch) start(ctx context.Context, ports []int) (*Process, error) {
	cmd := exec.Command(l.Binary, l.Args(l.Host, ports)...)
	cmd.Env = append(os.Environ(), l.Env...)
	if l.LogPath != "" {
		f, err := os.OpenFile(l.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open %s log: %w", l.Name, err)
		}
		defer f.Close() // the child keeps its own descriptor
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", l.Binary, err)
	}
	p := &Process{Host: l.Host, Ports: ports, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	if err := p.waitHTTP(ctx, l.Timeout); err != nil {
		p.Stop()
		var out []byte
		if l.LogPath != "" {
			out, _ = os.ReadFile(l.LogPath)
		}
		return nil, fmt.Errorf("%s on %s: %w\n%s", l.Name, p.URL(), err, out)
	}
	return p, nil
}

// URL is the base URL of the server's first port.
func (p *Process) URL() string { return "http://" + net.JoinHostPort(p.Host, strconv.Itoa(p.Ports[0])) }

// waitHTTP polls until the server gives any HTTP answer: an unauthenticated
// request gets a 401 or 403 from both servers, which is enough to know they
// serve.
func (p *Process) waitHTTP(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get(p.URL() + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-p.exited:
			return errors.New("server exited before answering")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no answer within %v", timeout)
}

// Stop asks the server to shut down cleanly, then kills it if it lingers.
func (p *Process) Stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	// Hold every listener until all are picked, so the n ports differ.
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
