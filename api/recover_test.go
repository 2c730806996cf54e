package api

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// TestAnswerThatCannotBeEncoded: a success whose body fails to encode (a
// time past year 9999, a NaN) is a 500 problem logged at ERROR, never an
// empty 200; answers without a body and real errors pass unchanged.
func TestAnswerThatCannotBeEncoded(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	var logs bytes.Buffer
	s := &Server{Log: slog.New(slog.NewTextHandler(&logs, nil))}
	r := gin.New()
	r.Use(s.requestID, s.accessLog, s.recover)
	r.GET("/time", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"at": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	})
	r.GET("/nan", func(c *gin.Context) { c.JSON(http.StatusCreated, gin.H{"x": math.NaN()}) })
	r.DELETE("/gone", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	r.GET("/missing", func(c *gin.Context) { notFound(c, "job") })

	for _, path := range []string{"/time", "/nan"} {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusInternalServerError || w.Header().Get("Content-Type") != "application/problem+json" ||
			!strings.Contains(w.Body.String(), `"status":500`) {
			t.Errorf("GET %s: %d %q %s, want a 500 problem", path, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "year outside of range") {
		t.Errorf("the failure was not logged at ERROR with its cause:\n%s", logs.String())
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodDelete, "/gone", nil))
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Errorf("DELETE /gone: %d %s, want an empty 204", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/missing", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("GET /missing: %d %s, want its 404", w.Code, w.Body)
	}
}

// TestUnavailableAdvice: a 503 tells a caller to resend its
// Idempotency-Key only when the request carried one.
func TestUnavailableAdvice(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Any("/x", func(c *gin.Context) { unavailable(c, errors.New("redis: connection refused")) })
	for _, tc := range []struct {
		method, key, want string
	}{
		{http.MethodGet, "", "retry shortly"},
		{http.MethodPost, "", "with an Idempotency-Key a retry never runs a request twice"},
		{http.MethodPost, "k1", "retry with the same Idempotency-Key"},
	} {
		req := httptest.NewRequest(tc.method, "/x", nil)
		if tc.key != "" {
			req.Header.Set("Idempotency-Key", tc.key)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), tc.want) || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s with key %q: %d %s, want 503 saying %q", tc.method, tc.key, w.Code, w.Body, tc.want)
		}
	}
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if strings.Contains(w.Body.String(), "Idempotency-Key") {
		t.Errorf("a GET was told to resend an Idempotency-Key: %s", w.Body)
	}
}
