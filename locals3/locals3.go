// Package locals3 runs a local S3-compatible server (versitygw) as a child
// process, for `easel dev` and the tests. A bucket is a folder under Dir.
package locals3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Version is the versitygw release the Makefile installs into .bin.
const Version = "v1.8.0"

// InstallHint tells an operator how to get the binary.
const InstallHint = "install it with `make tools` (go install github.com/versity/versitygw/cmd/versitygw@" + Version +
	" into .bin), set EASEL_VERSITYGW, or put versitygw on PATH"

// Options configures a server.
type Options struct {
	Binary    string // path to versitygw
	Dir       string // data root; each bucket is a folder
	Addr      string // host:port to listen on; "" picks a free loopback port
	AccessKey string
	SecretKey string
	LogPath   string // server output; "" discards it
	// StartTimeout bounds how long the server may take to answer (default 20 s).
	StartTimeout time.Duration
}

// Server is a running versitygw.
type Server struct {
	cmd    *exec.Cmd
	exited chan struct{}
	addr   string
}

// FindBinary looks for versitygw in $EASEL_VERSITYGW, then <root>/.bin, then PATH.
func FindBinary(root string) (string, error) {
	for _, c := range []string{os.Getenv("EASEL_VERSITYGW"), filepath.Join(root, ".bin", "versitygw")} {
		if c == "" {
			continue
		}
		if info, err := os.Stat(c); err == nil && !info.IsDir() {
			return c, nil
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	return "", errors.New("versitygw binary not found: " + InstallHint)
}

// Start runs the server and returns once it answers HTTP. With a free port
// picked for it, a server that dies before answering (the port was taken
// meanwhile) is retried on another.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 20 * time.Second
	}
	if opts.Addr != "" {
		return start(ctx, opts)
	}
	var lastErr error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			return nil, fmt.Errorf("find a free port for versitygw: %w", err)
		}
		o := opts
		o.Addr = addr
		s, err := start(ctx, o)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func start(ctx context.Context, opts Options) (*Server, error) {
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create s3 data dir: %w", err)
	}
	cmd := exec.Command(opts.Binary, "--port", opts.Addr, "posix", opts.Dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+opts.AccessKey, "ROOT_SECRET_KEY="+opts.SecretKey)
	if opts.LogPath != "" {
		f, err := os.OpenFile(opts.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open versitygw log: %w", err)
		}
		defer f.Close() // the child keeps its own descriptor
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", opts.Binary, err)
	}
	s := &Server{cmd: cmd, exited: make(chan struct{}), addr: opts.Addr}
	go func() { _ = cmd.Wait(); close(s.exited) }()
	if err := s.waitHTTP(ctx, opts.StartTimeout); err != nil {
		s.Stop()
		out, _ := os.ReadFile(opts.LogPath)
		return nil, fmt.Errorf("versitygw on %s: %w\n%s", opts.Addr, err, out)
	}
	return s, nil
}

// Endpoint is the server's base URL.
func (s *Server) Endpoint() string { return "http://" + s.addr }

// waitHTTP polls until the server gives any HTTP answer: versitygw answers
// unauthenticated requests with 403, which is enough to know it serves.
func (s *Server) waitHTTP(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get(s.Endpoint() + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.exited:
			return errors.New("server exited before answering")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("no answer within %v", timeout)
}

// Stop asks the server to shut down cleanly, then kills it if it lingers.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
