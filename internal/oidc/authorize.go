package oidc

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// codeTTL is how long an authorization code may wait for its exchange.
const codeTTL = time.Minute

// grant is what an authorization code stands for until /token redeems it.
type grant struct {
	clientID    string
	redirectURI string
	challenge   string
	nonce       string
	id          Identity
	expires     time.Time
}

// expiring is what a secret handed out by the issuer stands for, until
// its time.
type expiring interface{ expiresAt() time.Time }

func (g grant) expiresAt() time.Time        { return g.expires }
func (g refreshGrant) expiresAt() time.Time { return g.expires }

// secretStore holds what the issuer's random secrets (authorization codes,
// refresh tokens) stand for, in memory: a restart of the development issuer
// forgets them all.
type secretStore[G expiring] struct {
	size int // random bytes per secret
	mu   sync.Mutex
	m    map[string]G
}

func newSecretStore[G expiring](size int) *secretStore[G] {
	return &secretStore[G]{size: size, m: map[string]G{}}
}

// put stores g under a new secret and returns it, forgetting the expired
// ones as it goes.
func (s *secretStore[G]) put(g G) string {
	b := make([]byte, s.size)
	_, _ = rand.Read(b)
	secret := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for k, old := range s.m {
		if now.After(old.expiresAt()) {
			delete(s.m, k)
		}
	}
	s.m[secret] = g
	return secret
}

// get returns what secret stands for while it is unexpired.
func (s *secretStore[G]) get(secret string) (G, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fresh(secret)
}

// take is get that also removes the secret, so a code works once.
func (s *secretStore[G]) take(secret string) (G, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer delete(s.m, secret)
	return s.fresh(secret)
}

func (s *secretStore[G]) fresh(secret string) (G, bool) {
	g, ok := s.m[secret]
	if !ok || time.Now().After(g.expiresAt()) {
		var zero G
		return zero, false
	}
	return g, true
}

// RefreshTTL is how long a development refresh token lasts (Cognito's
// default is 30 days).
const RefreshTTL = 30 * 24 * time.Hour

// refreshGrant is what a refresh token stands for.
type refreshGrant struct {
	clientID string
	id       Identity
	expires  time.Time
}

// authRequest is an authorization request's parameters (RFC 6749 4.1.1,
// RFC 7636 4.3).
type authRequest struct {
	ClientID, RedirectURI, State, Challenge, Nonce, Scope string
}

// parseAuthRequest checks an authorization request. An error about the
// client or its redirect_uri is shown to the person, never redirected.
func (d *DevIssuer) parseAuthRequest(v url.Values) (authRequest, error) {
	a := authRequest{ClientID: v.Get("client_id"), RedirectURI: v.Get("redirect_uri"),
		State: v.Get("state"), Challenge: v.Get("code_challenge"), Nonce: v.Get("nonce"), Scope: v.Get("scope")}
	switch {
	case a.ClientID != d.audience:
		return a, fmt.Errorf("unknown client_id %q", a.ClientID)
	case !d.sameOrigin(a.RedirectURI):
		return a, fmt.Errorf("redirect_uri %q is not on the issuer's origin", a.RedirectURI)
	case v.Get("response_type") != "code":
		return a, fmt.Errorf("response_type must be code")
	case v.Get("code_challenge_method") != "S256" || len(a.Challenge) < 43:
		return a, fmt.Errorf("a PKCE code_challenge with code_challenge_method S256 is required")
	}
	return a, nil
}

// sameOrigin: the development issuer only sends codes back to the app it
// is served with (scheme, host and port of the issuer).
func (d *DevIssuer) sameOrigin(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Fragment != "" {
		return false
	}
	iss, err := url.Parse(d.issuer)
	return err == nil && u.Scheme == iss.Scheme && u.Host == iss.Host
}

var authorizePage = template.Must(template.New("authorize").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="/favicon.svg" type="image/svg+xml"><title>Sign in to Easel (development)</title>
<style>body{font:16px system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#1b1b1f}
label{display:block;margin:1rem 0 .3rem;font-weight:600}input[type=email]{width:100%;padding:.6rem;font:inherit;box-sizing:border-box}
button{margin-top:1rem;padding:.6rem 1.2rem;font:inherit;background:#3b3bd6;color:#fff;border:0;border-radius:6px}
.err{color:#b00020}</style></head>
<body><h1>Sign in to Easel</h1>
<p>Development issuer of <code>easel dev</code>: any email signs in, no password.</p>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
{{if .Form}}<form method="post" action="authorize">
<label for="email">Email</label>
<input id="email" name="email" type="email" required autofocus autocomplete="email" placeholder="you@example.com">
{{range $k, $v := .Form}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<button type="submit">Sign in</button></form>{{end}}
</body></html>
`))

func (d *DevIssuer) renderAuthorize(w http.ResponseWriter, status int, errMsg string, form url.Values) {
	fields := map[string]string{}
	for k := range form {
		if k != "email" {
			fields[k] = form.Get(k)
		}
	}
	if errMsg != "" && status != http.StatusOK {
		fields = nil
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = authorizePage.Execute(w, map[string]any{"Error": errMsg, "Form": fields})
}

// authorizeForm answers GET /authorize with the email form, or, for
// prompt=none (OpenID Connect Core 3.1.2.1), with no page at all: a code
// while the issuer's session lasts, else login_required (3.1.2.6), both
// sent back to the client's redirect_uri.
func (d *DevIssuer) authorizeForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a, err := d.parseAuthRequest(q)
	if err != nil {
		d.renderAuthorize(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	prompt := strings.Fields(q.Get("prompt"))
	if !slices.Contains(prompt, "none") {
		d.renderAuthorize(w, http.StatusOK, "", q)
		return
	}
	id, live := d.liveSession(r)
	switch {
	case len(prompt) > 1:
		d.redirectError(w, r, a, "invalid_request", "prompt=none cannot be combined with other values")
	case !live:
		d.redirectError(w, r, a, "login_required", "no live session at the issuer")
	default:
		d.issueCode(w, r, a, id)
	}
}

// redirectError sends the browser back to the client with an error
// (RFC 6749 4.1.2.1).
func (d *DevIssuer) redirectError(w http.ResponseWriter, r *http.Request, a authRequest, code, desc string) {
	d.redirectBack(w, r, a, url.Values{"error": {code}, "error_description": {desc}})
}

// redirectBack sends the browser to the request's redirect_uri with params
// and the request's state.
func (d *DevIssuer) redirectBack(w http.ResponseWriter, r *http.Request, a authRequest, params url.Values) {
	back, _ := url.Parse(a.RedirectURI) // parseAuthRequest parsed it
	q := back.Query()
	for k, v := range params {
		q[k] = v
	}
	if a.State != "" {
		q.Set("state", a.State)
	}
	back.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

// issueCode issues a code for id bound to the client, the redirect_uri
// and the PKCE challenge, and sends the browser back with it.
func (d *DevIssuer) issueCode(w http.ResponseWriter, r *http.Request, a authRequest, id Identity) {
	code := d.codes.put(grant{clientID: a.ClientID, redirectURI: a.RedirectURI, challenge: a.Challenge,
		nonce: a.Nonce, expires: time.Now().Add(codeTTL), id: id})
	d.redirectBack(w, r, a, url.Values{"code": {code}})
}

// authorize answers the form: it starts the issuer's session (so that a
// later prompt=none request signs the person in without the form) and
// sends the browser back with a code and the request's state.
func (d *DevIssuer) authorize(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		d.renderAuthorize(w, http.StatusBadRequest, "unreadable form", nil)
		return
	}
	a, err := d.parseAuthRequest(r.PostForm)
	if err != nil {
		d.renderAuthorize(w, http.StatusBadRequest, err.Error(), nil)
		return
	}
	email := strings.TrimSpace(r.PostForm.Get("email"))
	if !strings.Contains(email, "@") {
		d.renderAuthorize(w, http.StatusOK, "Enter an email address.", r.PostForm)
		return
	}
	name, _, _ := strings.Cut(email, "@")
	id := Identity{Subject: "dev|" + strings.ToLower(email), Email: email, Name: name}
	d.startSession(w, id)
	d.issueCode(w, r, a, id)
}

// token exchanges a code and its PKCE verifier for an ID token (RFC 6749
// 4.1.3, RFC 7636 4.6). The ID token is also the access token, as the API
// accepts ID tokens.
func (d *DevIssuer) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, "invalid_request", "unreadable form")
		return
	}
	f := r.PostForm
	switch f.Get("grant_type") {
	case "authorization_code":
	case "refresh_token":
		d.refresh(w, f)
		return
	default:
		tokenError(w, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
		return
	}
	g, ok := d.codes.take(f.Get("code"))
	if !ok {
		tokenError(w, "invalid_grant", "the code is unknown, used or expired")
		return
	}
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	switch {
	case f.Get("client_id") != g.clientID:
		tokenError(w, "invalid_grant", "the code was issued to another client")
		return
	case f.Get("redirect_uri") != g.redirectURI:
		tokenError(w, "invalid_grant", "redirect_uri differs from the authorization request's")
		return
	case subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(g.challenge)) != 1:
		tokenError(w, "invalid_grant", "code_verifier does not match the code_challenge")
		return
	}
	tok, err := d.sign(g.id, d.tokenTTL(), g.nonce)
	if err != nil {
		tokenError(w, "server_error", err.Error())
		return
	}
	// As Cognito does for the code flow, a refresh token comes with the ID
	// token, so the app renews its session without another sign-in.
	refresh := d.refreshTokens.put(refreshGrant{clientID: g.clientID, id: g.id, expires: time.Now().Add(RefreshTTL)})
	writeTokens(w, tok, refresh, d.tokenTTL())
}

// refresh answers grant_type=refresh_token (RFC 6749 6): a fresh ID token
// for the identity the refresh token was issued to, to the client it was
// issued to. The refresh token stays valid until it expires, as Cognito's.
func (d *DevIssuer) refresh(w http.ResponseWriter, f url.Values) {
	g, ok := d.refreshTokens.get(f.Get("refresh_token"))
	switch {
	case !ok:
		tokenError(w, "invalid_grant", "the refresh token is unknown or expired")
		return
	case f.Get("client_id") != g.clientID:
		tokenError(w, "invalid_grant", "the refresh token was issued to another client")
		return
	}
	tok, err := d.sign(g.id, d.tokenTTL(), "")
	if err != nil {
		tokenError(w, "server_error", err.Error())
		return
	}
	writeTokens(w, tok, "", d.tokenTTL())
}

// writeTokens answers a token request; refresh is left out when "".
func writeTokens(w http.ResponseWriter, idToken, refresh string, ttl time.Duration) {
	body := map[string]any{"id_token": idToken, "access_token": idToken,
		"token_type": "Bearer", "expires_in": int(ttl.Seconds()), "scope": "openid email profile"}
	if refresh != "" {
		body["refresh_token"] = refresh
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(body)
}

func tokenError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
