package api

import (
	"bytes"
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
