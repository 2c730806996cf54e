package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// DevIssuer signs ID tokens shaped like Cognito's for development and tests,
// and serves its JWKS. It must never run in production: anyone can log in.
type DevIssuer struct {
	issuer   string
	audience string
	key      *rsa.PrivateKey
	kid      string
	jwks     json.RawMessage
	codes    *secretStore[grant]
	// refreshTokens are those the code flow issued.
	refreshTokens *secretStore[refreshGrant]
	// sessions are the sign-ins the issuer remembers (its session cookie).
	sessions *secretStore[session]
	// TokenTTL is how long an ID token from the code flow or a refresh
	// lasts; 0 means LoginTTL. A short one exercises the app's silent
	// renewal.
	TokenTTL time.Duration
	// SessionTTL is how long the issuer's own session lasts; 0 means
	// the SessionTTL constant.
	SessionTTL time.Duration
}

func (d *DevIssuer) tokenTTL() time.Duration {
	if d.TokenTTL > 0 {
		return d.TokenTTL
	}
	return LoginTTL
}

// NewDevIssuer creates an issuer whose iss is issuerURL (where Handler is
// mounted) and whose tokens are for audience.
func NewDevIssuer(issuerURL, audience string, key *rsa.PrivateKey) (*DevIssuer, error) {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("dev issuer: encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	kid := hex.EncodeToString(sum[:8])
	jwk, err := jwkset.NewJWKFromKey(&key.PublicKey, jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.AlgRS256, KID: kid, USE: jwkset.UseSig}})
	if err != nil {
		return nil, fmt.Errorf("dev issuer: build JWK: %w", err)
	}
	set := jwkset.NewMemoryStorage()
	if err := set.KeyWrite(context.Background(), jwk); err != nil {
		return nil, fmt.Errorf("dev issuer: store JWK: %w", err)
	}
	raw, err := set.JSONPublic(context.Background())
	if err != nil {
		return nil, fmt.Errorf("dev issuer: encode JWKS: %w", err)
	}
	return &DevIssuer{issuer: strings.TrimSuffix(issuerURL, "/"), audience: audience, key: key, kid: kid, jwks: raw,
		codes: newSecretStore[grant](24), refreshTokens: newSecretStore[refreshGrant](32),
		sessions: newSecretStore[session](32)}, nil
}

// Config is what a Verifier needs to accept this issuer's tokens.
func (d *DevIssuer) Config() Config {
	return Config{Issuer: d.issuer, Audience: d.audience, JWKSURL: d.issuer + "/.well-known/jwks.json"}
}

// Sign issues an ID token for the identity, valid for ttl.
func (d *DevIssuer) Sign(id Identity, ttl time.Duration) (string, error) {
	return d.sign(id, ttl, "")
}

// sign issues an ID token that carries the authorization request's nonce.
func (d *DevIssuer) sign(id Identity, ttl time.Duration, nonce string) (string, error) {
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, idClaims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: d.issuer, Subject: id.Subject,
			Audience: jwt.ClaimStrings{d.audience}, IssuedAt: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl))},
		TokenUse: "id", Email: id.Email, Name: id.Name, Nonce: nonce,
	})
	t.Header["kid"] = d.kid
	s, err := t.SignedString(d.key)
	if err != nil {
		return "", fmt.Errorf("dev issuer: sign: %w", err)
	}
	return s, nil
}

// LoginTTL is how long a development login lasts.
const LoginTTL = 12 * time.Hour

// Handler serves, relative to where it is mounted: GET / (a sign-in page),
// GET /.well-known/openid-configuration (discovery), GET
// /.well-known/jwks.json (also at /jwks), POST /login ({"email": ...,
// "name": ...} -> {"id_token": ..., "expires_in": ...}) and the
// authorization code flow with PKCE: GET and POST /authorize, POST /token,
// and GET /logout (the end-session endpoint).
func (d *DevIssuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(signInPage))
	})
	mux.HandleFunc("GET /.well-known/openid-configuration", d.discovery)
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(d.jwks)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(d.jwks)
	})
	mux.HandleFunc("POST /login", d.login)
	mux.HandleFunc("GET /authorize", d.authorizeForm)
	mux.HandleFunc("POST /authorize", d.authorize)
	mux.HandleFunc("POST /token", d.token)
	mux.HandleFunc("GET /logout", d.logout)
	return mux
}

// discovery is the OpenID Provider metadata of the development issuer, so
// OIDC clients (the web app's oidc-client-ts) run the same authorization
// code flow with PKCE as against Cognito. Its one non-standard endpoint,
// /login, hands out ID tokens without a password.
// Endpoints are where a client of the issuer signs in, trades codes and
// refresh tokens, checks signatures and signs out: the part of the
// discovery document the web app is given up front (api.App.OIDCMetadata)
// so that a page load does not wait for discovery.
func (d *DevIssuer) Endpoints() map[string]string {
	return map[string]string{
		"issuer":                 d.issuer,
		"jwks_uri":               d.issuer + "/.well-known/jwks.json",
		"authorization_endpoint": d.issuer + "/authorize",
		"token_endpoint":         d.issuer + "/token",
		"end_session_endpoint":   d.issuer + "/logout",
	}
}

func (d *DevIssuer) discovery(w http.ResponseWriter, _ *http.Request) {
	doc := map[string]any{
		"prompt_values_supported":               []string{"none", "login"},
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"scopes_supported":                      []string{"openid", "email", "profile", "offline_access"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"claims_supported":                      []string{"sub", "email", "name", "token_use"},
		"easel_dev_login_endpoint":              d.issuer + "/login",
	}
	for k, v := range d.Endpoints() {
		doc[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// signInPage is the development issuer's page: a form that asks /login for
// an ID token and shows it, ready for EASEL_TOKEN.
const signInPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Easel development sign-in</title>
<style>body{font:15px system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}
textarea{width:100%;height:8rem;font:12px monospace}</style></head>
<body><h1>Easel development sign-in</h1>
<p>This is the development OIDC issuer of <code>easel dev</code>: anyone can sign in as anyone.
Enter an email to get an ID token (<code>POST login {"email": ...}</code> does the same).</p>
<form id="f"><input id="email" type="email" required placeholder="you@example.com">
<button>Get a token</button></form>
<p><textarea id="out" readonly placeholder="the ID token appears here"></textarea></p>
<p>Then: <code>export EASEL_TOKEN=&lt;token&gt;</code>. Discovery:
<a href=".well-known/openid-configuration">.well-known/openid-configuration</a>.</p>
<script>
document.getElementById("f").onsubmit = async (e) => {
  e.preventDefault();
  const r = await fetch("login", {method: "POST", body: JSON.stringify({email: document.getElementById("email").value})});
  const b = await r.json();
  document.getElementById("out").value = b.id_token || JSON.stringify(b);
};
</script></body></html>
`

func (d *DevIssuer) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&in); err != nil || !strings.Contains(in.Email, "@") {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"type":"https://easel.dev/problems/invalid-request","title":"Invalid request","status":400,"detail":"send {\"email\": \"you@example.com\", \"name\": \"...\"}"}`))
		return
	}
	if in.Name == "" {
		in.Name, _, _ = strings.Cut(in.Email, "@")
	}
	tok, err := d.Sign(Identity{Subject: "dev|" + strings.ToLower(in.Email), Email: in.Email, Name: in.Name}, LoginTTL)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // a credential, as the token endpoint's
	_ = json.NewEncoder(w).Encode(map[string]any{"id_token": tok, "token_type": "Bearer",
		"expires_in": int(LoginTTL.Seconds())})
}

// GenerateKey makes a fresh signing key (tests).
func GenerateKey() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
}

// LoadOrCreateKey reads a PEM signing key from path, creating it on first
// use, so development tokens survive restarts.
func LoadOrCreateKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		block, _ := pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("dev issuer key %s: not PEM", path)
		}
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("dev issuer key %s: %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read dev issuer key: %w", err)
	}
	key, err := GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate dev issuer key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key dir: %w", err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		return nil, fmt.Errorf("write dev issuer key: %w", err)
	}
	return key, nil
}
