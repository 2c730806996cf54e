// Package temporalserver runs a complete Temporal server with SQLite
// persistence (in memory or a file) or Postgres persistence (as a production
// cluster), plus the Temporal Web UI, for `easel dev`, `easel temporal` and
// integration tests.
//
// Start brings up frontend, history, matching and worker services on
// loopback ports, registers the namespace and its custom search attributes,
// and returns once a client can use the namespace. The dynamic config
// defaults enable what easel relies on (updates and update-with-start, task
// queue priority and fairness, eager activities) and tune matching for a
// single-node server so task dispatch is fast.
//
// Server and UI run inside the calling process. go.temporal.io/server
// v1.31.2 compiles only against go.temporal.io/api v1.62.x, which pins the
// SDK to v1.42 and the UI server to v2.50 for the whole module.
package temporalserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	"go.temporal.io/server/temporal"

	enumspb "go.temporal.io/api/enums/v1"
)

// Options configures a dev server. The zero value is usable: an ephemeral
// in-memory server on 127.0.0.1 with a free port and no UI.
type Options struct {
	Namespace        string                              // default "default"
	DatabaseFile     string                              // SQLite file; "" means in-memory (ephemeral)
	Postgres         *Postgres                           // Postgres persistence instead of SQLite (DatabaseFile must be "")
	HistoryShards    int                                 // history shards (default 1); fixed when a database is created
	IP               string                              // default "127.0.0.1"
	Port             int                                 // frontend gRPC port; 0 picks a free port
	UIPort           int                                 // Web UI HTTP port; 0 disables the UI
	SearchAttributes map[string]enumspb.IndexedValueType // custom search attributes registered on the namespace
	DynamicConfig    map[string]any                      // extra dynamic config values (override defaults); must be JSON-encodable
	Logger           *slog.Logger                        // server logs go here (default: discard below Warn)
}

// Server is a running dev server.
type Server struct {
	server    temporal.Server
	stopping  atomic.Bool
	ui        *uiServer
	hostPort  string
	namespace string
	stopOnce  sync.Once
	stopErr   error
}

const (
	defaultNamespace = "default"
	defaultIP        = "127.0.0.1"
)

// Start launches the server and blocks until the frontend answers and the
// namespace (with its search attributes) is usable, or ctx ends.
func Start(ctx context.Context, opts Options) (*Server, error) {
	opts = withDefaults(opts)
	// Fail fast on a taken UI or frontend port rather than after booting
	// the server.
	if opts.UIPort != 0 {
		if err := checkBindable("ui", uiListenAddr(opts)); err != nil {
			return nil, err
		}
	}
	if opts.Port != 0 {
		if err := checkBindable("frontend", joinHostPort(opts.IP, opts.Port)); err != nil {
			return nil, err
		}
	}
	if opts.Postgres != nil && opts.DatabaseFile != "" {
		return nil, errorf("Options: set DatabaseFile (SQLite) or Postgres, not both")
	}
	s := &Server{namespace: opts.Namespace}
	persistence, err := preparePersistence(ctx, opts, &s.stopping)
	if err != nil {
		return nil, err
	}
	srv, hostPort, err := startServer(opts, persistence, &s.stopping)
	for attempt := 1; err != nil && attempt < 3; attempt++ {
		// A port picked for the server's own services (history, matching,
		// worker, the frontend's HTTP API, and the frontend's unless fixed)
		// was taken before the server bound it: pick again.
		srv, hostPort, err = startServer(opts, persistence, &s.stopping)
	}
	if err != nil {
		return nil, errorf("%w", err)
	}
	s.server, s.hostPort = srv, hostPort
	if err := s.finishStart(ctx, opts); err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	return s, nil
}

// finishStart does the work that needs a live frontend.
func (s *Server) finishStart(ctx context.Context, opts Options) error {
	if err := waitReady(ctx, s.hostPort, opts); err != nil {
		return err
	}
	if opts.UIPort == 0 {
		return nil
	}
	ui, err := startUI(opts, s.hostPort)
	if err != nil {
		return err
	}
	s.ui = ui
	return nil
}

// withDefaults fills the documented defaults so the rest of the package can
// rely on every field being set.
func withDefaults(opts Options) Options {
	if opts.Namespace == "" {
		opts.Namespace = defaultNamespace
	}
	if opts.IP == "" {
		opts.IP = defaultIP
	}
	if opts.Logger == nil {
		opts.Logger = defaultLogger()
	}
	if opts.HistoryShards <= 0 {
		opts.HistoryShards = 1
	}
	return opts
}

// HostPort is the frontend gRPC address clients should dial.
func (s *Server) HostPort() string { return s.hostPort }

// Namespace is the namespace registered at start.
func (s *Server) Namespace() string { return s.namespace }

// UIAddress is the Web UI base URL, or "" when the UI is disabled.
func (s *Server) UIAddress() string {
	if s.ui == nil {
		return ""
	}
	return s.ui.address
}

// Stop shuts down the UI and the server. It is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.ui != nil {
			s.ui.stop()
		}
		s.stopping.Store(true)
		s.stopErr = s.server.Stop()
	})
	return s.stopErr
}

// dialableIP maps wildcard bind addresses to loopback so the address we hand
// out can actually be dialed.
func dialableIP(ip string) string {
	if parsed := net.ParseIP(ip); parsed != nil && parsed.IsUnspecified() {
		return defaultIP
	}
	return ip
}

func joinHostPort(ip string, port int) string {
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// errorf prefixes errors with the package name so they read well in
// `easel dev` output.
func errorf(format string, args ...any) error {
	return fmt.Errorf("devtemporal: "+format, args...)
}
