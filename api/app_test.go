package api_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/easel/easel/api"
)

// TestAppServed: the web app answers / and its own client-side paths with
// index.html under a strict Content-Security-Policy, hashed assets with a
// year's cache, and /config.json with where to sign in; the API's paths
// keep their problem+json 404s; an unbuilt app shows how to build it.
func TestAppServed(t *testing.T) {
	files := fstest.MapFS{
		"index.html":          {Data: []byte("<!doctype html><title>Easel</title>")},
		"static/index-abc.js": {Data: []byte("console.log(1)")},
		"favicon.svg":         {Data: []byte("<svg/>")},
	}
	app := &api.App{Files: files, OIDCAuthority: "http://x/dev/oidc", OIDCClientID: "easel-dev",
		ImageOrigins: []string{"http://127.0.0.1:7070"}}
	h := (&api.Server{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), App: app}).Router()
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	for _, p := range []string{"/", "/gallery", "/auth/callback?code=x"} {
		rec := get(p)
		csp := rec.Header().Get("Content-Security-Policy")
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "<title>Easel") {
			t.Errorf("GET %s: %d %.80s, want the app", p, rec.Code, rec.Body)
		}
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "img-src 'self' data: http://127.0.0.1:7070") ||
			!strings.Contains(csp, "connect-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: Content-Security-Policy %q", p, csp)
		}
		if rec.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("GET %s: index.html cached: %q", p, rec.Header().Get("Cache-Control"))
		}
		if link := rec.Header().Get("Link"); link != "<http://127.0.0.1:7070>; rel=preconnect" {
			t.Errorf("GET %s: Link %q, want a preconnect to the images' origin", p, link)
		}
	}
	if rec := get("/static/index-abc.js"); rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Cache-Control"), "immutable") {
		t.Errorf("hashed asset: %d %q", rec.Code, rec.Header().Get("Cache-Control"))
	}
	if rec := get("/favicon.svg"); rec.Code != http.StatusOK || strings.Contains(rec.Header().Get("Cache-Control"), "immutable") {
		t.Errorf("unhashed file: %d %q, want a short cache", rec.Code, rec.Header().Get("Cache-Control"))
	}
	if rec := get("/static/gone.js"); rec.Code != http.StatusNotFound {
		t.Errorf("missing asset: %d, want 404", rec.Code)
	}
	if rec := get("/config.json"); !strings.Contains(rec.Body.String(), `"oidc_client_id":"easel-dev"`) {
		t.Errorf("config.json: %d %s", rec.Code, rec.Body)
	}
	for _, p := range []string{"/v1/nothing", "/v1", "/dev/nothing", "/healthzz/x", "/api/x"} {
		rec := get(p)
		if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %d %s, want the API's problem+json 404", p, rec.Code, rec.Header().Get("Content-Type"))
		}
	}
	post := httptest.NewRecorder()
	h.ServeHTTP(post, httptest.NewRequest(http.MethodPost, "/gallery", nil))
	if post.Code != http.StatusNotFound {
		t.Errorf("POST /gallery: %d, want 404", post.Code)
	}

	unbuilt := (&api.Server{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		App: &api.App{Placeholder: "<h1>The web app is not built</h1> make web"}}).Router()
	rec := httptest.NewRecorder()
	unbuilt.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "make web") {
		t.Errorf("unbuilt app: %d %s", rec.Code, rec.Body)
	}
}

// TestAppGzip: the build's text files go gzipped to a browser that accepts
// gzip, byte for byte the same once unzipped; images, tiny files and
// clients that refuse gzip get the file as it is.
func TestAppGzip(t *testing.T) {
	js := strings.Repeat("export const greeting = 'hello, easel';\n", 200)
	files := fstest.MapFS{
		"index.html":           {Data: []byte("<!doctype html><title>Easel</title>" + strings.Repeat("<!-- padding -->", 100))},
		"assets/index-abc.js":  {Data: []byte(js)},
		"assets/tiny-abc.css":  {Data: []byte("body{margin:0}")},
		"assets/photo-abc.png": {Data: bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 1000)},
	}
	h := (&api.Server{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), App: &api.App{Files: files}}).Router()
	get := getAccepting(h)
	for range 2 { // the second answer comes from the kept copy
		rec := get("/assets/index-abc.js", "gzip, deflate, br, zstd")
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != "gzip" || rec.Header().Get("Vary") != "Accept-Encoding" {
			t.Fatalf("JS to a gzip browser: %d, Content-Encoding %q, Vary %q", rec.Code, rec.Header().Get("Content-Encoding"), rec.Header().Get("Vary"))
		}
		if !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") || rec.Body.Len() >= len(js)/4 {
			t.Errorf("gzipped JS: Content-Type %q, %d bytes of %d", rec.Header().Get("Content-Type"), rec.Body.Len(), len(js))
		}
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatalf("gunzip: %v", err)
		}
		if got, _ := io.ReadAll(zr); string(got) != js {
			t.Errorf("gunzipped JS differs from the file (%d bytes, want %d)", len(got), len(js))
		}
	}
	if rec := get("/gallery", "gzip"); rec.Header().Get("Content-Encoding") != "gzip" {
		t.Errorf("index.html to a gzip browser: Content-Encoding %q", rec.Header().Get("Content-Encoding"))
	}
	for _, c := range []struct{ path, accept string }{
		{"/assets/index-abc.js", ""},
		{"/assets/index-abc.js", "gzip;q=0, br"},
		{"/assets/index-abc.js", "identity"},
		{"/assets/tiny-abc.css", "gzip"},
		{"/assets/photo-abc.png", "gzip"},
	} {
		rec := get(c.path, c.accept)
		want := files[strings.TrimPrefix(c.path, "/")].Data
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Encoding") != "" || !bytes.Equal(rec.Body.Bytes(), want) {
			t.Errorf("GET %s (Accept-Encoding %q): %d, Content-Encoding %q, %d bytes, want the file as it is",
				c.path, c.accept, rec.Code, rec.Header().Get("Content-Encoding"), rec.Body.Len())
		}
	}
}

// TestAppConfig: /config.json tells the app where Temporal's Web UI is (for
// administrators' links to workflows), the low-balance threshold and,
// only when cards are collected with Stripe Elements, the publishable key;
// the page's policy then allows Stripe.js and its frames, and otherwise
// no third party at all.
func TestAppConfig(t *testing.T) {
	serve := func(app *api.App) (*httptest.ResponseRecorder, string) {
		h := (&api.Server{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), App: app}).Router()
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/config.json", nil)
		h.ServeHTTP(rec, req)
		checkContract(t, req, rec.Code, rec.Header(), rec.Body.Bytes(), true)
		page := httptest.NewRecorder()
		h.ServeHTTP(page, httptest.NewRequest(http.MethodGet, "/account", nil))
		return rec, page.Header().Get("Content-Security-Policy")
	}
	files := fstest.MapFS{"index.html": {Data: []byte("<!doctype html>")}}
	rec, csp := serve(&api.App{Files: files, OIDCAuthority: "http://x/dev/oidc", OIDCClientID: "easel-dev",
		TemporalUI: "http://127.0.0.1:8233/", TemporalNamespace: "default", LowBalanceCredits: 10,
		OIDCMetadata: map[string]string{"token_endpoint": "http://x/dev/oidc/token"}})
	var cfg map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &cfg); err != nil {
		t.Fatal(err)
	}
	if m, _ := cfg["oidc_metadata"].(map[string]any); m["token_endpoint"] != "http://x/dev/oidc/token" {
		t.Errorf("config.json without the issuer's endpoints: %s", rec.Body)
	}
	if cfg["temporal_ui"] != "http://127.0.0.1:8233" || cfg["temporal_namespace"] != "default" ||
		cfg["low_balance_credits"] != float64(10) || cfg["stripe_publishable_key"] != nil {
		t.Errorf("config.json %s", rec.Body)
	}
	if strings.Contains(csp, "stripe") || !strings.Contains(csp, "frame-src 'self' http://x;") {
		t.Errorf("policy without Stripe Elements: %q", csp)
	}

	rec, csp = serve(&api.App{Files: files, StripePublishableKey: "pk_test_123"})
	cfg = nil
	_ = json.Unmarshal(rec.Body.Bytes(), &cfg)
	if cfg["stripe_publishable_key"] != "pk_test_123" || cfg["temporal_ui"] != nil || cfg["oidc_metadata"] != nil {
		t.Errorf("config.json with Stripe Elements: %s", rec.Body)
	}
	for _, want := range []string{"script-src 'self' https://js.stripe.com;", "frame-src 'self' https://js.stripe.com https://hooks.stripe.com;",
		"connect-src 'self' https://api.stripe.com;"} {
		if !strings.Contains(csp, want) {
			t.Errorf("policy with Stripe Elements lacks %q: %q", want, csp)
		}
	}
}

// TestAppPolicyForSilentSignIn: after a reload the app asks the issuer for
// its session in a hidden frame, so the policy lets the app frame the
// issuer's authorization endpoint (Cognito's hosted UI, or the
// development issuer under the authority) and call it; the page the
// answer comes back to, auth/silent.html, may be framed by the app alone,
// and every other page by nobody. With a hosted UI, the app signs out
// through its /logout.
func TestAppPolicyForSilentSignIn(t *testing.T) {
	files := fstest.MapFS{"index.html": {Data: []byte("<!doctype html>")}, "auth/silent.html": {Data: []byte("<!doctype html>")}}
	get := func(app *api.App, path string) *httptest.ResponseRecorder {
		h := (&api.Server{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), App: app}).Router()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	cognito := &api.App{Files: files, OIDCAuthority: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc",
		OIDCClientID: "web", OIDCHostedUI: "https://easel.auth.us-east-1.amazoncognito.com/"}
	page := get(cognito, "/gallery").Header().Get("Content-Security-Policy")
	for _, want := range []string{"frame-src 'self' https://easel.auth.us-east-1.amazoncognito.com;",
		"connect-src 'self' https://cognito-idp.us-east-1.amazonaws.com https://easel.auth.us-east-1.amazoncognito.com;",
		"frame-ancestors 'none'"} {
		if !strings.Contains(page, want) {
			t.Errorf("page policy lacks %q: %q", want, page)
		}
	}
	silent := get(cognito, "/auth/silent.html")
	if csp := silent.Header().Get("Content-Security-Policy"); silent.Code != http.StatusOK || !strings.Contains(csp, "frame-ancestors 'self';") {
		t.Errorf("auth/silent.html: %d policy %q, want framing by the app only", silent.Code, csp)
	}
	// Its one inline script runs, by its hash, and no other page's would.
	sum := sha256.Sum256([]byte(api.SilentScript))
	hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if csp := silent.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self' "+hash+";") {
		t.Errorf("auth/silent.html policy %q, want its script's hash %s", csp, hash)
	}
	if strings.Contains(page, "sha256-") {
		t.Errorf("page policy allows an inline script: %q", page)
	}
	html, err := os.ReadFile("../web/auth/silent.html")
	if err != nil || !strings.Contains(string(html), "<script>"+api.SilentScript+"</script>") {
		t.Errorf("web/auth/silent.html does not hold api.SilentScript as its script (%v):\n%s", err, html)
	}
	var cfg map[string]any
	_ = json.Unmarshal(get(cognito, "/config.json").Body.Bytes(), &cfg)
	if cfg["oidc_end_session_endpoint"] != "https://easel.auth.us-east-1.amazoncognito.com/logout" {
		t.Errorf("config.json with a hosted UI: %v, want its /logout", cfg)
	}

	dev := &api.App{Files: files, OIDCAuthority: "http://127.0.0.1:8080/dev/oidc", OIDCClientID: "easel-dev"}
	if csp := get(dev, "/").Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-src 'self' http://127.0.0.1:8080;") ||
		!strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("development policy %q, want frames of the issuer's origin only", csp)
	}
	cfg = nil
	_ = json.Unmarshal(get(dev, "/config.json").Body.Bytes(), &cfg)
	if _, ok := cfg["oidc_end_session_endpoint"]; ok {
		t.Errorf("config.json without a hosted UI names an end-session endpoint: %v (discovery does)", cfg)
	}
}
