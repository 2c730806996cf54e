package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/easel/easel/api"
)

// Startup backoff: the first retry after a second, then growing to at most
// maxStartupRetry between attempts, for as long as the process runs. A
// service that is down at start (Postgres, Temporal after a deploy or a
// failover) is waited for rather than crash-looped on.
const (
	firstStartupRetry = time.Second
	maxStartupRetry   = 15 * time.Second
	attemptTimeout    = 10 * time.Second
)

// startup is what a long-running command (api, worker) serves while it
// connects: liveness at once, readiness only once everything is up. It
// listens before anything is dialled, so the orchestrator sees a live but
// not-ready process instead of a crash loop, and /readyz says what it is
// waiting for.
type startup struct {
	log *slog.Logger

	mu      sync.Mutex
	waiting string
	lastErr error
	handler http.Handler // set once ready
}

func newStartup(log *slog.Logger) *startup {
	return &startup{log: log, waiting: "start"}
}

// retry runs op until it succeeds or ctx ends, backing off between
// attempts, logging each failure and reporting what it waits for on
// /readyz. Each attempt gets attemptTimeout. A backoff.Permanent error
// (bad configuration) stops at once.
func (s *startup) retry(ctx context.Context, what string, op func(context.Context) error) error {
	s.setWaiting(what, nil)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = firstStartupRetry, maxStartupRetry
	attempt := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		return struct{}{}, op(actx)
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, next time.Duration) {
		s.setWaiting(what, err)
		s.log.Warn("waiting for "+what, "attempt", attempt, "retry_in", next.Round(time.Millisecond), "err", err)
	}))
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", what, err)
	}
	if attempt > 1 {
		s.log.Info(what+" is up", "attempts", attempt)
	}
	return nil
}

func (s *startup) setWaiting(what string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiting, s.lastErr = what, err
}

// ready hands every request to h from now on.
func (s *startup) ready(h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler, s.waiting, s.lastErr = h, "", nil
}

func (s *startup) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h, waiting, lastErr := s.handler, s.waiting, s.lastErr
	s.mu.Unlock()
	if h != nil {
		h.ServeHTTP(w, r)
		return
	}
	switch r.URL.Path {
	case "/api/v1/app/version": // liveness: the process is up
		writeJSON(w, http.StatusOK, map[string]any{"version": version, "status": "starting"})
	case "/metrics":
		metricsHandler().ServeHTTP(w, r)
	default:
		body := map[string]any{"status": "not ready", "waiting_for": waiting}
		if lastErr != nil {
			body["error"] = lastErr.Error()
		}
		w.Header().Set("Retry-After", "2")
		if r.URL.Path == "/readyz" || r.URL.Path == "/healthz" {
			writeJSON(w, http.StatusServiceUnavailable, body)
			return
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{"type": "https://easel.dev/problems/unavailable",
			"title": "Service unavailable", "status": http.StatusServiceUnavailable,
			"detail": "starting: waiting for " + waiting + "; retry shortly"})
	}
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// listen binds addr at once (a busy port fails the command before anything
// is dialled) and serves s on it until ctx ends, then drains connections for
// 10 s. The returned channel yields the server's error once it has stopped.
func (s *startup) listen(ctx context.Context, addr string) (<-chan error, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	// The API's limits (header and body read timeouts, idle connections,
	// header size) hold from the first byte, while it starts and after.
	srv := api.NewHTTPServer(addr, s)
	served := make(chan error, 1)
	go func() {
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			served <- fmt.Errorf("serve http on %s: %w", addr, err)
		}
	}()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			served <- fmt.Errorf("shut down http server: %w", err)
			return
		}
		served <- nil
	}()
	s.log.Info("listening", "addr", l.Addr().String())
	return served, nil
}

// readyMux is a worker's status server once it runs: metrics and readiness.
func readyMux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler())
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	})
	return mux
}
