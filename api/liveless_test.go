package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/progress"
)

// testJobWithoutLiveStatus: with Redis gone, a running job is still shown
// from Postgres, without its live progress, rather than answered 503; and
// a 503 of a GET does not tell the caller to resend an Idempotency-Key.
func testJobWithoutLiveStatus(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 200)
	r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{"prompt": "while redis is away",
		"width": 64, "height": 64, "steps": 150, "batch_size": 4}) // about 3 s of rendering
	var g api.GenerationView
	if r.decode(t, &g); r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = dead.Close() })
	srv := s.newAPI(t, false)
	srv.Progress, srv.Redis, srv.Limiter = progress.NewHub(dead), dead, redis_rate.NewLimiter(dead)
	h, err := srv.Handler()
	if err != nil {
		t.Fatal(err)
	}
	outage := httptest.NewServer(h)
	t.Cleanup(outage.Close)

	get := func(path string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, outage.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	status, body := get("/v1/generations/" + g.ID)
	var v api.GenerationView
	if err := json.Unmarshal(body, &v); status != http.StatusOK || err != nil {
		t.Fatalf("GET the job with Redis down: %d %s", status, body)
	}
	if v.ID != g.ID || v.Progress != nil || (v.Status != catalog.JobQueued && v.Status != catalog.JobRunning) {
		t.Fatalf("job with Redis down: %+v, want it from Postgres without progress", v)
	}
	if status, body := get("/v1/generations"); status != http.StatusOK || !strings.Contains(string(body), g.ID) {
		t.Fatalf("list with Redis down: %d %s", status, body)
	}
	s.waitGeneration(t, g.ID, token, terminal)
}

// testStreamsEndOnShutdown: when the process begins to shut down, an open
// event stream ends at once with a reconnect hint, so the server's drain
// does not wait for it (and the watcher reconnects to another instance).
func testStreamsEndOnShutdown(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 200)
	r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{"prompt": "watched through a deploy",
		"width": 64, "height": 64, "steps": 150, "batch_size": 4}) // about 3 s of rendering
	var g api.GenerationView
	if r.decode(t, &g); r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	stopping := make(chan struct{})
	srv := s.newAPI(t, false)
	srv.Stopping = stopping
	h, err := srv.Handler()
	if err != nil {
		t.Fatal(err)
	}
	instance := httptest.NewServer(h)
	t.Cleanup(instance.Close)
	req, _ := http.NewRequest(http.MethodGet, instance.URL+"/v1/generations/"+g.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("open the stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	time.Sleep(300 * time.Millisecond)
	closed := time.Now()
	close(stopping)
	body, err := io.ReadAll(resp.Body) // ends only when the server ends the stream
	if err != nil {
		t.Fatalf("the stream was cut, not ended: %v", err)
	}
	if took := time.Since(closed); took > 2*time.Second || !strings.HasSuffix(string(body), "retry: 1000\n\n") {
		t.Fatalf("stream ended %v after the shutdown began with %q; want at once with a retry hint", took, body)
	}
	s.waitGeneration(t, g.ID, token, terminal)
}
