package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/app/version" {
			_, _ = w.Write([]byte(`{"version":"dev"}`))
			return
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	if err := run([]string{srv.URL + "/api/v1/app/version"}, time.Second); err != nil {
		t.Fatalf("healthy server: %v", err)
	}
	if err := run([]string{srv.URL + "/healthz"}, time.Second); err == nil {
		t.Fatal("503 passed the probe")
	}
	if err := run(nil, time.Second); err == nil {
		t.Fatal("no URL passed the probe")
	}
	srv.Close()
	if err := run([]string{srv.URL + "/api/v1/app/version"}, time.Second); err == nil {
		t.Fatal("a closed server passed the probe")
	}
}
