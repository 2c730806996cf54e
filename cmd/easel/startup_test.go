package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/config"
	"github.com/easel/easel/internal/devstack/temporalserver"
	"github.com/easel/easel/internal/oidc"
	"github.com/easel/easel/internal/testenv"
)

// freeAddr returns a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// proxyLater forwards addr to target: a service that comes up late.
func proxyLater(t *testing.T, addr, target string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in) }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
}

type probe struct {
	status int
	body   map[string]any
}

func get(t *testing.T, u, token string) probe {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return probe{}
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return probe{status: resp.StatusCode, body: body}
}

// eventually polls until ok answers true, failing after limit.
func eventually(t *testing.T, limit time.Duration, what string, ok func() (bool, string)) {
	t.Helper()
	start := time.Now()
	for {
		done, last := ok()
		if done {
			t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s; last: %s", what, limit, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func baseConfig(t *testing.T) config.Config {
	t.Helper()
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg.RedisURL = testenv.RedisURL(t)
	cfg.S3Bucket, cfg.S3Endpoint, cfg.S3PathStyle = "easel-test", "http://127.0.0.1:1", true
	cfg.NotifySender = "log"
	return cfg
}

// TestAPIWaitsForPostgresAndKeys starts `easel api` while Postgres (its
// port) and the OIDC issuer are down: it must stay up, answer /readyz 503
// naming what it waits for, answer a valid token with 503 (not 401), and
// serve it within seconds of both coming back.
func TestAPIWaitsForPostgresAndKeys(t *testing.T) {
	dbURL, err := url.Parse(testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	pgAddr := freeAddr(t)
	realPG := dbURL.Host
	dbURL.Host = pgAddr
	temporal, err := temporalserver.Start(t.Context(), temporalserver.Options{SearchAttributes: api.SearchAttributes})
	if err != nil {
		testenv.Unavailable(t, "embedded temporal: %v", err)
	}
	t.Cleanup(func() { _ = temporal.Stop() })
	issAddr := freeAddr(t)
	key, err := oidc.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	iss, err := oidc.NewDevIssuer("http://"+issAddr+"/oidc", "easel-web", key)
	if err != nil {
		t.Fatal(err)
	}

	cfg := baseConfig(t)
	cfg.DatabaseURL, cfg.TemporalAddress = dbURL.String(), temporal.HostPort()
	cfg.OIDCIssuer, cfg.OIDCAudience, cfg.OIDCJWKSURL = iss.Config().Issuer, iss.Config().Audience, iss.Config().JWKSURL
	cfg.HTTPAddr = freeAddr(t)
	base := "http://" + cfg.HTTPAddr
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- runAPI(ctx, cfg, quietLog()) }()

	eventually(t, 10*time.Second, "readyz names postgres", func() (bool, string) {
		p := get(t, base+"/readyz", "")
		return p.status == http.StatusServiceUnavailable && p.body["waiting_for"] == "postgres", spew(p)
	})
	if p := get(t, base+"/api/v1/app/version", ""); p.status != http.StatusOK {
		t.Fatalf("liveness while waiting: %s", spew(p))
	}
	proxyLater(t, pgAddr, realPG)
	eventually(t, 20*time.Second, "router up, readyz names the key set", func() (bool, string) {
		p := get(t, base+"/readyz", "")
		return p.status == http.StatusServiceUnavailable && strings.Contains(spew(p), "oidc_keys"), spew(p)
	})
	token, err := iss.Sign(oidc.Identity{Subject: "dev|ann@example.com", Email: "ann@example.com", Name: "Ann"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if p := get(t, base+"/v1/me", token); p.status != http.StatusServiceUnavailable {
		t.Fatalf("valid token while the key set is down: %s, want 503", spew(p))
	}

	mux := http.NewServeMux()
	mux.Handle("/oidc/", http.StripPrefix("/oidc", iss.Handler()))
	l, err := net.Listen("tcp", issAddr)
	if err != nil {
		t.Fatal(err)
	}
	issSrv := &http.Server{Handler: mux}
	go func() { _ = issSrv.Serve(l) }()
	t.Cleanup(func() { _ = issSrv.Close() })
	eventually(t, 5*time.Second, "valid token accepted", func() (bool, string) {
		p := get(t, base+"/v1/me", token)
		return p.status == http.StatusOK, spew(p)
	})
	if p := get(t, base+"/readyz", ""); p.status != http.StatusOK {
		t.Fatalf("readyz once keys loaded: %s", spew(p))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runAPI: %v", err)
	}
}

// TestControlWorkerWaitsForTemporal starts the control worker before the
// Temporal server it names: it must wait, report not-ready on its status
// port, and start once Temporal is up.
func TestControlWorkerWaitsForTemporal(t *testing.T) {
	cfg := baseConfig(t)
	cfg.DatabaseURL = testenv.PostgresURL(t)
	temporalAddr := freeAddr(t)
	_, portStr, _ := net.SplitHostPort(temporalAddr)
	cfg.TemporalAddress = temporalAddr
	cfg.MetricsAddr = freeAddr(t)
	status := "http://" + cfg.MetricsAddr
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- withStatusServer(ctx, cfg.MetricsAddr, quietLog(), func(st *startup) error {
			return runControlWorker(ctx, cfg, quietLog(), st)
		})
	}()
	eventually(t, 10*time.Second, "readyz names temporal", func() (bool, string) {
		p := get(t, status+"/readyz", "")
		return p.status == http.StatusServiceUnavailable && p.body["waiting_for"] == "temporal", spew(p)
	})

	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := temporalserver.Start(t.Context(), temporalserver.Options{Port: port, SearchAttributes: api.SearchAttributes})
	if err != nil {
		testenv.Unavailable(t, "embedded temporal: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	eventually(t, 30*time.Second, "worker ready", func() (bool, string) {
		p := get(t, status+"/readyz", "")
		return p.status == http.StatusOK, spew(p)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}
}

func spew(p probe) string {
	b, _ := json.Marshal(p.body)
	return http.StatusText(p.status) + " " + string(b)
}

// A malformed autoscaling setting stops the control worker at once, by
// name, before its status server listens or it waits for Temporal (which
// is not there).
func TestControlWorkerRefusesBadAutoscalingAtStart(t *testing.T) {
	metrics := freeAddr(t)
	for k, v := range map[string]string{
		"DATABASE_URL": testenv.PostgresURL(t), "REDIS_URL": testenv.RedisURL(t),
		"TEMPORAL_ADDRESS": freeAddr(t), "S3_BUCKET": "easel-test", "S3_ENDPOINT": "http://127.0.0.1:1",
		"METRICS_ADDR": metrics, "AUTOSCALE_DRIVER": "ec2", "AUTOSCALE_GROUPS": "t4=easel-t4",
		"AUTOSCALE_UP_RULES": "garbage",
	} {
		t.Setenv(k, v)
	}
	cmd := workerCommand()
	cmd.SetArgs([]string{"--role", "control"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "AUTOSCALE_UP_RULES") || ctx.Err() != nil {
		t.Fatalf("worker with AUTOSCALE_UP_RULES=garbage: %v (context: %v)", err, ctx.Err())
	}
	if l, err := net.Listen("tcp", metrics); err != nil {
		t.Fatalf("the status server was left listening: %v", err)
	} else {
		_ = l.Close()
	}
}

// A connection URL that does not parse stops the API at once, by name,
// before it listens (it used to be found after "listening").
func TestAPIRefusesMalformedURLsAtStart(t *testing.T) {
	addr := freeAddr(t)
	for k, v := range map[string]string{
		"DATABASE_URL": "postgres://x:5432/easel?sslmode=nonsense", "REDIS_URL": "notaurl",
		"TEMPORAL_ADDRESS": freeAddr(t), "S3_BUCKET": "easel-test", "S3_ENDPOINT": "http://127.0.0.1:1",
		"OIDC_ISSUER": "https://issuer.example", "OIDC_AUDIENCE": "easel", "HTTP_ADDR": addr,
	} {
		t.Setenv(k, v)
	}
	cmd := apiCommand()
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("api with malformed URLs: %v", err)
	}
	if l, err := net.Listen("tcp", addr); err != nil {
		t.Fatalf("the API was left listening: %v", err)
	} else {
		_ = l.Close()
	}
}

// The listener of `easel api` and the workers enforces the API server's
// limits from the start: an oversized header is refused (431) rather than
// read.
func TestStartupListenerHasServerLimits(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	st := newStartup(slog.New(slog.NewTextHandler(io.Discard, nil)))
	addr := freeAddr(t)
	served, err := st.listen(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-served }()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 100_000))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 100 KB header: %d, want 431", resp.StatusCode)
	}
}
