package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-long-enough-verifier"

func challengeOf(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorizeAs fills the issuer's form as email and returns where the
// browser is sent.
func authorizeAs(t *testing.T, h http.Handler, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/authorize", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func exchange(t *testing.T, h http.Handler, form url.Values) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("token answer is not JSON: %s", rec.Body)
	}
	return rec.Code, out
}

func codeFlow(iss *DevIssuer) (authorize, token url.Values) {
	app := strings.TrimSuffix(iss.issuer, "/oidc") + "/auth/callback"
	authorize = url.Values{"response_type": {"code"}, "client_id": {iss.audience}, "redirect_uri": {app},
		"state": {"st-123"}, "nonce": {"n-456"}, "code_challenge": {challengeOf(verifier)},
		"code_challenge_method": {"S256"}, "scope": {"openid email"}, "email": {"carol@example.com"}}
	token = url.Values{"grant_type": {"authorization_code"}, "client_id": {iss.audience},
		"redirect_uri": {app}, "code_verifier": {verifier}}
	return authorize, token
}

// TestAuthorizationCodeFlow: the form sends the browser back to the app
// with a code and the state; the code and its verifier give an ID token
// the API's verifier accepts, carrying the nonce; the code works once.
func TestAuthorizationCodeFlow(t *testing.T) {
	t.Parallel()
	iss, v := newIssuer(t)
	h := iss.Handler()
	authz, tok := codeFlow(iss)

	page := httptest.NewRecorder()
	h.ServeHTTP(page, httptest.NewRequest(http.MethodGet, "/authorize?"+authz.Encode(), nil))
	if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), `name="email"`) ||
		!strings.Contains(page.Body.String(), challengeOf(verifier)) {
		t.Fatalf("authorize form: %d %s", page.Code, page.Body)
	}

	rec := authorizeAs(t, h, authz)
	back, err := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusSeeOther || err != nil || back.Query().Get("state") != "st-123" || back.Query().Get("code") == "" {
		t.Fatalf("authorize: %d Location %q", rec.Code, rec.Header().Get("Location"))
	}
	tok.Set("code", back.Query().Get("code"))
	code, out := exchange(t, h, tok)
	if code != http.StatusOK {
		t.Fatalf("token: %d %v", code, out)
	}
	idToken, _ := out["id_token"].(string)
	id, err := v.Verify(context.Background(), idToken)
	if err != nil || id.Email != "carol@example.com" {
		t.Fatalf("the issued ID token: %+v %v", id, err)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(idToken, ".")[1])
	if !strings.Contains(string(payload), `"nonce":"n-456"`) {
		t.Fatalf("the ID token does not carry the nonce: %s", payload)
	}

	if code, out := exchange(t, h, tok); code != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("a used code: %d %v, want 400 invalid_grant", code, out)
	}
}

// TestTokenRefusesWrongVerifier: a code stolen without its verifier, or
// sent with another redirect_uri, gives nothing.
func TestTokenRefusesWrongVerifier(t *testing.T) {
	t.Parallel()
	iss, _ := newIssuer(t)
	h := iss.Handler()
	for name, spoil := range map[string]func(url.Values){
		"PKCE mismatch":  func(v url.Values) { v.Set("code_verifier", verifier+"x") },
		"no verifier":    func(v url.Values) { v.Del("code_verifier") },
		"redirect_uri":   func(v url.Values) { v.Set("redirect_uri", v.Get("redirect_uri")+"/other") },
		"another client": func(v url.Values) { v.Set("client_id", "someone-else") },
	} {
		authz, tok := codeFlow(iss)
		back, _ := url.Parse(authorizeAs(t, h, authz).Header().Get("Location"))
		tok.Set("code", back.Query().Get("code"))
		spoil(tok)
		if code, out := exchange(t, h, tok); code != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Errorf("%s: %d %v, want 400 invalid_grant", name, code, out)
		}
	}
}

// TestAuthorizeChecksRedirectURI: the issuer sends codes only to its own
// origin, and never redirects a bad request anywhere.
func TestAuthorizeChecksRedirectURI(t *testing.T) {
	t.Parallel()
	iss, _ := newIssuer(t)
	h := iss.Handler()
	for name, spoil := range map[string]func(url.Values){
		"foreign origin":   func(v url.Values) { v.Set("redirect_uri", "https://evil.example/cb") },
		"other port":       func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:1/cb") },
		"no PKCE":          func(v url.Values) { v.Del("code_challenge") },
		"plain PKCE":       func(v url.Values) { v.Set("code_challenge_method", "plain") },
		"unknown client":   func(v url.Values) { v.Set("client_id", "nobody") },
		"implicit request": func(v url.Values) { v.Set("response_type", "token") },
	} {
		authz, _ := codeFlow(iss)
		spoil(authz)
		for _, rec := range []*httptest.ResponseRecorder{authorizeAs(t, h, authz), func() *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/authorize?"+authz.Encode(), nil))
			return rec
		}()} {
			if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" {
				t.Errorf("%s: %d Location %q, want 400 and no redirect", name, rec.Code, rec.Header().Get("Location"))
			}
		}
	}
}

// TestDiscoveryNamesCodeFlow: an OIDC client finds the code flow's
// endpoints, PKCE and the end-session endpoint in the discovery document.
func TestDiscoveryNamesCodeFlow(t *testing.T) {
	t.Parallel()
	iss, _ := newIssuer(t)
	rec := httptest.NewRecorder()
	iss.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/openid-configuration", nil))
	var doc struct {
		Authorization string   `json:"authorization_endpoint"`
		Token         string   `json:"token_endpoint"`
		EndSession    string   `json:"end_session_endpoint"`
		Methods       []string `json:"code_challenge_methods_supported"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &doc)
	if doc.Authorization != iss.issuer+"/authorize" || doc.Token != iss.issuer+"/token" || doc.EndSession != iss.issuer+"/logout" ||
		len(doc.Methods) != 1 || doc.Methods[0] != "S256" {
		t.Fatalf("discovery: %s", rec.Body)
	}
	// The endpoints the web app is given up front are the document's.
	var full map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &full)
	for k, v := range iss.Endpoints() {
		if full[k] != v {
			t.Errorf("Endpoints()[%s] = %s, discovery says %v", k, v, full[k])
		}
	}
	jwks := httptest.NewRecorder()
	iss.Handler().ServeHTTP(jwks, httptest.NewRequest(http.MethodGet, "/jwks", nil))
	if jwks.Code != http.StatusOK || !strings.Contains(jwks.Body.String(), iss.kid) {
		t.Fatalf("jwks: %d %s", jwks.Code, jwks.Body)
	}
}

// TestRefreshToken: the code flow also hands out a refresh token, which
// trades for a fresh ID token of the same person (the API's verifier
// accepts it) as often as needed, and only for the client it was issued
// to; an unknown one gives nothing.
func TestRefreshToken(t *testing.T) {
	t.Parallel()
	iss, v := newIssuer(t)
	iss.TokenTTL = 90 * time.Second
	h := iss.Handler()
	authz, tok := codeFlow(iss)
	back, _ := url.Parse(authorizeAs(t, h, authz).Header().Get("Location"))
	tok.Set("code", back.Query().Get("code"))
	code, out := exchange(t, h, tok)
	refresh, _ := out["refresh_token"].(string)
	if code != http.StatusOK || refresh == "" || out["expires_in"] != float64(90) {
		t.Fatalf("token: %d %v, want an ID token for 90 s and a refresh token", code, out)
	}

	for i := range 2 {
		code, out := exchange(t, h, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {iss.audience}})
		idToken, _ := out["id_token"].(string)
		if code != http.StatusOK || idToken == "" || out["expires_in"] != float64(90) {
			t.Fatalf("refresh %d: %d %v", i+1, code, out)
		}
		id, err := v.Verify(context.Background(), idToken)
		if err != nil || id.Email != "carol@example.com" || id.Subject != "dev|carol@example.com" {
			t.Fatalf("refresh %d: the ID token: %+v %v", i+1, id, err)
		}
	}

	for name, form := range map[string]url.Values{
		"unknown token":  {"grant_type": {"refresh_token"}, "refresh_token": {"nope"}, "client_id": {iss.audience}},
		"another client": {"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {"someone-else"}},
		"no token":       {"grant_type": {"refresh_token"}, "client_id": {iss.audience}},
	} {
		if code, out := exchange(t, h, form); code != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Errorf("%s: %d %v, want 400 invalid_grant", name, code, out)
		}
	}
	if code, out := exchange(t, h, url.Values{"grant_type": {"password"}}); code != http.StatusBadRequest || out["error"] != "unsupported_grant_type" {
		t.Errorf("password grant: %d %v, want 400 unsupported_grant_type", code, out)
	}
}
