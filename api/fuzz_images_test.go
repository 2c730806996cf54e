package api

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// FuzzBulkDelete feeds arbitrary bodies to the checks of POST
// /v1/images/bulk-delete: either 1 to 100 distinct, non-blank names come
// out, or a 400 problem+json; never a panic.
func FuzzBulkDelete(f *testing.F) {
	for _, seed := range []string{
		`{"names":["a.png","b.png"]}`, `{"names":["a","a"]}`, `{"names":[]}`, `{"names":[" "]}`,
		`{"names":"a"}`, `{"names":[1]}`, `{"names":null}`, `{}`, `{"names":["a"],"all":true}`,
		`{"names":["` + strings.Repeat(`a","`, 100) + `b"]}`, "{\"names\":[\"\xff\"]}", `{"names":["\u0000"]}`,
	} {
		f.Add([]byte(seed))
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxBodyBytes: 8192}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		c.Request = httptest.NewRequest(http.MethodPost, "/v1/images/bulk-delete", bytes.NewReader(body))
		c.Request.Header.Set("Content-Type", "application/json")
		var req BulkDelete
		if !s.decodeJSON(c, &req) {
			assertProblem(t, rec, body)
			return
		}
		names, ok := bulkNames(c, req.Names)
		if !ok {
			assertProblem(t, rec, body)
			return
		}
		seen := map[string]bool{}
		for _, n := range names {
			if strings.TrimSpace(n) == "" || seen[n] || strings.ContainsRune(n, 0) {
				t.Fatalf("accepted names %q", names)
			}
			seen[n] = true
		}
		if len(names) == 0 || len(names) > maxBulkDelete {
			t.Fatalf("accepted %d names", len(names))
		}
	})
}
