package api_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/easel/easel/api"
)

// TestHandlerCompresses: a JSON answer of a kilobyte or more comes gzipped
// to a client that accepts gzip, and decodes to exactly the uncompressed
// answer; a small answer, a client that accepts no encoding, and the web
// app's page (compressed by the app itself) are left as they are.
func TestHandlerCompresses(t *testing.T) {
	h, err := (&api.Server{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		App: &api.App{Placeholder: "<h1>The web app is not built</h1>" + string(bytes.Repeat([]byte(" "), 2048))}}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	get := getAccepting(h)

	plain := get("/v1/openapi.json", "")
	if plain.Code != http.StatusOK || plain.Header().Get("Content-Encoding") != "" || plain.Body.Len() < 10_000 {
		t.Fatalf("openapi.json without Accept-Encoding: %d, encoding %q, %d bytes",
			plain.Code, plain.Header().Get("Content-Encoding"), plain.Body.Len())
	}
	zipped := get("/v1/openapi.json", "gzip")
	if zipped.Code != http.StatusOK || zipped.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("openapi.json with Accept-Encoding gzip: %d, encoding %q", zipped.Code, zipped.Header().Get("Content-Encoding"))
	}
	if zipped.Header().Get("Content-Type") != "application/json" || zipped.Header().Get("ETag") != plain.Header().Get("ETag") {
		t.Fatalf("gzipped answer's headers changed: type %q, ETag %q against %q",
			zipped.Header().Get("Content-Type"), zipped.Header().Get("ETag"), plain.Header().Get("ETag"))
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatalf("gzipped body: %v", err)
	}
	body, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(body, plain.Body.Bytes()) {
		t.Fatalf("gzipped body decodes to %d bytes (err %v), want the %d of the plain answer", len(body), err, plain.Body.Len())
	}
	if zipped.Body.Len() >= plain.Body.Len()/3 {
		t.Errorf("gzipped openapi.json is %d bytes of %d: not compressed", zipped.Body.Len(), plain.Body.Len())
	}

	// A problem of a few hundred bytes: not worth a gzip header.
	small := get("/v1/no-such-route", "gzip")
	if small.Code != http.StatusNotFound || small.Header().Get("Content-Encoding") != "" {
		t.Errorf("small problem: %d, encoding %q; want 404 uncompressed", small.Code, small.Header().Get("Content-Encoding"))
	}
	// The app's page: its own encoding, once.
	page := get("/gallery", "gzip")
	if enc := page.Header().Values("Content-Encoding"); page.Code != http.StatusOK || len(enc) > 1 {
		t.Errorf("app page: %d, Content-Encoding %q", page.Code, enc)
	}
}

// getAccepting GETs a path from h with an Accept-Encoding header (none
// when accept is empty).
func getAccepting(h http.Handler) func(path, accept string) *httptest.ResponseRecorder {
	return func(path, accept string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
}
