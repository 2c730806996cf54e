package api

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// App is the web app the API serves at / (a single-page app: unknown
// paths that are not the API's answer its index.html).
type App struct {
	// Files is the build (index.html, static/...); nil serves Placeholder.
	Files fs.FS
	// Placeholder is the page shown when the app was not built.
	Placeholder string
	// OIDCAuthority and OIDCClientID tell the app where people sign in
	// (GET /config.json).
	OIDCAuthority, OIDCClientID string
	// OIDCHostedUI is where the issuer's sign-in pages, token and logout
	// endpoints are when they are not under OIDCAuthority: Cognito's hosted
	// UI domain (https://<prefix>.auth.<region>.amazoncognito.com, or a
	// custom domain). The policy lets the app call it and frame its
	// authorization endpoint (the silent sign-in after a reload), and the
	// app signs out through its /logout.
	OIDCHostedUI string
	// OIDCMetadata, when set, are the issuer's endpoints (issuer,
	// authorization_endpoint, token_endpoint, jwks_uri,
	// end_session_endpoint) as its discovery document gives them: the app
	// then signs in without fetching that document first, one round trip
	// less before a reloaded page has its tokens.
	OIDCMetadata map[string]string
	// ImageOrigins are where image URLs point (the bucket's endpoint or the
	// CDN), allowed by the Content-Security-Policy's img-src.
	ImageOrigins []string
	// TemporalUI and TemporalNamespace let administrators open a job's or a
	// subscription's workflow in Temporal's Web UI
	// (<ui>/namespaces/<ns>/workflows/<workflow id>); "" hides the links.
	TemporalUI, TemporalNamespace string
	// StripePublishableKey (pk_...) makes the app collect cards with Stripe
	// Elements, loading Stripe.js, which the Content-Security-Policy then
	// allows; without it the app offers the stripe-mock test card.
	StripePublishableKey string
	// LowBalanceCredits is the balance under which the app warns that
	// credits run low: the threshold of the credits.low webhook.
	LowBalanceCredits int

	// gzipped holds the build's text files gzipped, by name, each
	// compressed on its first request: the build never changes under a
	// running server.
	gzipped sync.Map
}

// stripeJS is where Stripe.js and its card frames come from, and the API
// it talks to, allowed only when the app collects cards with Elements.
const (
	stripeJS    = "https://js.stripe.com"
	stripeAPI   = "https://api.stripe.com"
	stripeHooks = "https://hooks.stripe.com"
)

// config is what GET /config.json tells the app.
func (a *App) config() gin.H {
	cfg := gin.H{"oidc_authority": a.OIDCAuthority, "oidc_client_id": a.OIDCClientID,
		"low_balance_credits": a.LowBalanceCredits}
	if a.TemporalUI != "" {
		cfg["temporal_ui"] = strings.TrimSuffix(a.TemporalUI, "/")
		cfg["temporal_namespace"] = a.TemporalNamespace
	}
	if a.StripePublishableKey != "" {
		cfg["stripe_publishable_key"] = a.StripePublishableKey
	}
	if a.OIDCHostedUI != "" {
		cfg["oidc_end_session_endpoint"] = strings.TrimSuffix(a.OIDCHostedUI, "/") + "/logout"
	}
	if a.OIDCMetadata != nil {
		cfg["oidc_metadata"] = a.OIDCMetadata
	}
	return cfg
}

// silentCallback is the page a silent sign-in comes back to, inside the
// app's own hidden frame: the one page the app lets itself frame.
const silentCallback = "auth/silent.html"

// SilentScript is the whole script of silentCallback (web/auth/silent.html,
// inline, so that restoring a session waits for no script request): it
// hands the page's URL, the issuer's answer, to the app in the parent
// frame, as oidc-client-ts's signinSilentCallback does (the message its
// IFrameWindow listens for). The page's policy allows it by its hash.
const SilentScript = `parent.postMessage({source:"oidc-client",url:location.href,keepOpen:false},location.origin)`

var silentScriptHash = func() string {
	sum := sha256.Sum256([]byte(SilentScript))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

// origin answers the scheme://host of an absolute URL, or "".
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// hashedPrefix is where the build puts its content-hashed files (Vite's
// assetsDir): a name there never changes content, so it is cached for a
// year, here as under CloudFront's /static/* behaviour.
const hashedPrefix = "static/"

// apiPrefixes are the paths the app never answers: a miss there stays the
// API's problem+json 404.
var apiPrefixes = []string{"/v1/", "/v1", "/api/", "/dev/", "/healthz", "/readyz", "/metrics"}

// isAPIPath reports whether p belongs to the API rather than the app.
func isAPIPath(p string) bool {
	for _, pre := range apiPrefixes {
		if p == strings.TrimSuffix(pre, "/") || strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

// csp is the app's Content-Security-Policy for the build's file name: its
// own scripts and styles only, images also from the bucket (presigned
// URLs) and inline previews. The issuer may be called (discovery, the
// token endpoint) and its authorization endpoint framed: the silent
// sign-in that restores a session after a reload runs in a hidden frame,
// which comes back to the app's own auth/silent.html, the only page that
// may be framed, and only by the app. With Stripe Elements, Stripe.js, its
// card frames and its API are allowed too, and nothing more.
func (a *App) csp(name string) string {
	img := append([]string{"'self'", "data:"}, a.ImageOrigins...)
	script, connect, frame := "'self'", "'self'", "'self'"
	authority, hosted := origin(a.OIDCAuthority), origin(a.OIDCHostedUI)
	for _, o := range []string{authority, hosted} {
		if o != "" && !strings.Contains(connect, o) {
			connect += " " + o
		}
	}
	if hosted != "" {
		frame += " " + hosted
	} else if authority != "" {
		frame += " " + authority
	}
	if a.StripePublishableKey != "" {
		script += " " + stripeJS
		connect += " " + stripeAPI
		frame += " " + stripeJS + " " + stripeHooks
	}
	ancestors := "'none'"
	if name == silentCallback {
		ancestors = "'self'"
		script += " " + silentScriptHash
	}
	return "default-src 'self'; script-src " + script + "; style-src 'self'; img-src " + strings.Join(img, " ") +
		"; connect-src " + connect + "; frame-src " + frame +
		"; form-action 'self'; frame-ancestors " + ancestors + "; base-uri 'self'; object-src 'none'"
}

// serve answers a GET or HEAD for the app: a file of the build, the
// sign-in configuration, or index.html for the app's own routes. It reports
// false for what is not the app's (API paths, other methods).
func (a *App) serve(c *gin.Context) bool {
	r := c.Request
	if a == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) || isAPIPath(r.URL.Path) {
		return false
	}
	h := c.Writer.Header()
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	h.Set("Content-Security-Policy", a.csp(name))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	if r.URL.Path == "/config.json" {
		h.Set("Cache-Control", "no-cache")
		c.JSON(http.StatusOK, a.config())
		return true
	}
	if a.Files == nil {
		h.Set("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/html; charset=utf-8", []byte(a.Placeholder))
		return true
	}
	if name != "" && name != "index.html" {
		if b, err := fs.ReadFile(a.Files, name); err == nil {
			if strings.HasPrefix(name, hashedPrefix) {
				h.Set("Cache-Control", "public, max-age=31536000, immutable")
			} else {
				h.Set("Cache-Control", "public, max-age=300")
			}
			http.ServeContent(c.Writer, r, name, time.Time{}, bytes.NewReader(a.encode(c, name, b)))
			return true
		}
		if strings.HasPrefix(name, hashedPrefix) || path.Ext(name) != "" {
			return false // a missing file is a 404, not the app
		}
	}
	index, err := fs.ReadFile(a.Files, "index.html")
	if err != nil {
		return false
	}
	h.Set("Cache-Control", "no-cache")
	if links := a.preconnect(); links != "" {
		h.Set("Link", links)
	}
	c.Data(http.StatusOK, "text/html; charset=utf-8", a.encode(c, "index.html", index))
	return true
}

// preconnect asks the browser to open its connections to where the images
// come from while the app still loads: the Gallery's first thumbnails,
// its largest paint, are the page's last requests, after the app, the
// session and the image list.
func (a *App) preconnect() string {
	links := make([]string, 0, len(a.ImageOrigins))
	for _, o := range a.ImageOrigins {
		links = append(links, "<"+o+">; rel=preconnect")
	}
	return strings.Join(links, ", ")
}

// compressible are the build's text types; images and fonts come
// compressed already.
var compressible = map[string]bool{".html": true, ".js": true, ".mjs": true, ".css": true, ".svg": true,
	".json": true, ".map": true, ".txt": true, ".webmanifest": true}

// minGzip is the size under which gzip saves less than a packet.
const minGzip = 1024

// encode answers the bytes to send for the build's file name: gzipped
// (Content-Encoding: gzip) when it is text of some size and the browser
// accepts gzip, else b as it is. The app's JavaScript shrinks to about a
// third, which is most of a slow connection's first load.
func (a *App) encode(c *gin.Context, name string, b []byte) []byte {
	if !compressible[path.Ext(name)] || len(b) < minGzip {
		return b
	}
	h := c.Writer.Header()
	h.Add("Vary", "Accept-Encoding")
	if !acceptsGzip(c.Request.Header.Get("Accept-Encoding")) {
		return b
	}
	z, ok := a.gzipped.Load(name)
	if !ok {
		z, _ = a.gzipped.LoadOrStore(name, gzipBytes(b))
	}
	h.Set("Content-Encoding", "gzip")
	return z.([]byte)
}

// gzipBytes compresses b as tightly as gzip can: once per file, so the
// time is well spent.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid
	_, _ = w.Write(b)                                       // a bytes.Buffer does not fail
	_ = w.Close()
	return buf.Bytes()
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip: named
// (or "*") without q=0.
func acceptsGzip(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		return !(q == "q=0" || strings.HasPrefix(q, "q=0.") && strings.Trim(q[4:], "0") == "")
	}
	return false
}
