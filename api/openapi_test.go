package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/testenv"
)

// contractDoc loads the contract as the development server serves it (with
// the development issuer's paths).
func contractDoc(t *testing.T) *openapi3.T {
	t.Helper()
	raw, err := api.OpenAPIDocument(true)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// ginParam turns gin's :id into OpenAPI's {id}.
var ginParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// TestOpenAPIMatchesRouter: every route the router serves is in
// api/openapi.yaml with its method, and every operation there is served.
// A catch-all (/dev/oidc/*path) is matched by the paths documented under
// its prefix: at least one, each served by it.
func TestOpenAPIMatchesRouter(t *testing.T) {
	doc := contractDoc(t)
	srv := &api.Server{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), DevIssuer: http.NotFoundHandler()}
	routes := srv.Router().Routes()

	documented := map[string]bool{} // "GET /v1/x/{id}"
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	served := map[string]bool{}
	var wildcards []string // path prefixes of catch-all routes
	for _, r := range routes {
		if prefix, _, ok := strings.Cut(r.Path, "*"); ok {
			if !slices.Contains(wildcards, prefix) {
				wildcards = append(wildcards, prefix)
			}
			continue
		}
		key := r.Method + " " + ginParam.ReplaceAllString(r.Path, "{$1}")
		served[key] = true
		if !documented[key] {
			t.Errorf("%s is served but not in api/openapi.yaml", key)
		}
	}
	for _, prefix := range wildcards {
		n := 0
		for key := range documented {
			if _, path, _ := strings.Cut(key, " "); strings.HasPrefix(path, prefix) {
				served[key] = true
				n++
			}
		}
		if n == 0 {
			t.Errorf("the catch-all %s* is served but api/openapi.yaml documents nothing under it", prefix)
		}
	}
	// The web app's own handler (api.App, behind every unrouted GET) serves
	// its configuration; TestAppConfig checks that answer against the contract.
	served["GET /config.json"] = true
	for key := range documented {
		if !served[key] {
			t.Errorf("api/openapi.yaml documents %s, which the router does not serve", key)
		}
	}
	if len(served) < 30 {
		t.Fatalf("only %d routes matched: is the router's route list read right?", len(served))
	}
}

// TestOpenAPIServed: GET /v1/openapi.json answers the contract as JSON,
// cacheable and revalidated by its ETag, without the development issuer's
// paths on a server that has none; GET /v1/docs renders every operation,
// and every webhook Easel sends, on one self-contained page.
func TestOpenAPIServed(t *testing.T) {
	prod := (&api.Server{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Router()
	get := func(h http.Handler, path string, headers ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	rec := get(prod, "/v1/openapi.json")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("openapi.json: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var served struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &served); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if served.OpenAPI != "3.1.0" || served.Paths["/v1/generations"]["post"] == nil {
		t.Fatalf("openapi.json is not the contract: %.200s", rec.Body.String())
	}
	for p := range served.Paths {
		if strings.HasPrefix(p, "/dev/") {
			t.Errorf("a server without the development issuer documents %s", p)
		}
	}
	tag := rec.Header().Get("ETag")
	if tag == "" || !strings.Contains(rec.Header().Get("Cache-Control"), "max-age") {
		t.Fatalf("openapi.json is not cacheable: %v", rec.Header())
	}
	if again := get(prod, "/v1/openapi.json", "If-None-Match", tag); again.Code != http.StatusNotModified {
		t.Fatalf("revalidation with the ETag: %d, want 304", again.Code)
	}

	page := get(prod, "/v1/docs")
	if page.Code != http.StatusOK || !strings.HasPrefix(page.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("docs: %d %s", page.Code, page.Header().Get("Content-Type"))
	}
	html := page.Body.String()
	for _, want := range []string{"<code>POST /v1/generations</code>", "<code>GET /v1/generations/{id}/events</code>",
		`id="schema-Problem"`, "Idempotency-Key", "RateLimit-Remaining",
		`id="webhooks"`, "<code>generation.completed</code>", "webhook-signature"} {
		if !strings.Contains(html, want) {
			t.Errorf("the docs page lacks %s", want)
		}
	}
	// Self-contained: nothing is loaded from another origin.
	if m := regexp.MustCompile(`(?i)<(script|link)[^>]*(src|href)="(https?:)?//`).FindString(html); m != "" {
		t.Errorf("the docs page loads %s", m)
	}
}

// TestAPITypesUpToDate: api/apitypes/types.gen.go is what oapi-codegen
// makes of api/openapi.yaml now, so nobody edits the contract without
// regenerating its Go types (`go generate ./api/...`).
func TestAPITypesUpToDate(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "api")
	fresh := filepath.Join(t.TempDir(), "types.gen.go")
	cmd := exec.Command("go", "tool", "oapi-codegen", "-config", "apitypes/oapi-codegen.yaml", "-o", fresh, "openapi.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, out)
	}
	want, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "apitypes", "types.gen.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("api/apitypes/types.gen.go is out of date with api/openapi.yaml: run `go generate ./api/...`")
	}
}
