package oidc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// silently asks /authorize with prompt=none, carrying cookies, and answers
// where the browser is sent.
func silently(t *testing.T, h http.Handler, authz url.Values, cookies ...*http.Cookie) *url.URL {
	t.Helper()
	q := url.Values{}
	for k, v := range authz {
		if k != "email" {
			q[k] = v
		}
	}
	q.Set("prompt", "none")
	req := httptest.NewRequest(http.MethodGet, "/authorize?"+q.Encode(), nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	back, err := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusSeeOther || err != nil || strings.Contains(rec.Body.String(), `name="email"`) {
		t.Fatalf("prompt=none: %d Location %q, want a redirect and no form: %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	return back
}

// sessionOf answers the issuer's session cookie a response sets.
func sessionOf(t *testing.T, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", sessionCookie, rec.Header()["Set-Cookie"])
	return nil
}

// TestPromptNoneWithSession: signing in on the form starts the issuer's
// session (an HttpOnly, SameSite=Lax cookie on the issuer's path, for an
// hour); while it lasts, prompt=none sends the browser back at once with
// a code and the state, and the code gives the same person's ID token.
func TestPromptNoneWithSession(t *testing.T) {
	t.Parallel()
	iss, v := newIssuer(t)
	h := iss.Handler()
	authz, tok := codeFlow(iss)
	c := sessionOf(t, authorizeAs(t, h, authz))
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure || c.Path != "/oidc" || c.MaxAge != 3600 {
		t.Fatalf("session cookie %+v, want HttpOnly, SameSite=Lax, not Secure over http, Path /oidc, Max-Age 3600", c)
	}

	back := silently(t, h, authz, c)
	if back.Query().Get("code") == "" || back.Query().Get("state") != "st-123" || back.Query().Get("error") != "" ||
		back.Path != "/auth/callback" {
		t.Fatalf("prompt=none with a session: %s, want the callback with a code and the state", back)
	}
	tok.Set("code", back.Query().Get("code"))
	code, out := exchange(t, h, tok)
	idToken, _ := out["id_token"].(string)
	id, err := v.Verify(context.Background(), idToken)
	if code != http.StatusOK || err != nil || id.Email != "carol@example.com" {
		t.Fatalf("the silent code's token: %d %v %+v %v", code, out, id, err)
	}
}

// TestPromptNoneWithoutSession: with no session, an unknown one, or
// prompt=none mixed with other values, the browser goes back to the
// client with an error (login_required, invalid_request) and the state,
// never to the form; a bad client still gets no redirect at all.
func TestPromptNoneWithoutSession(t *testing.T) {
	t.Parallel()
	iss, _ := newIssuer(t)
	h := iss.Handler()
	authz, _ := codeFlow(iss)
	for name, cookies := range map[string][]*http.Cookie{
		"no cookie":       nil,
		"unknown session": {{Name: sessionCookie, Value: "forged"}},
	} {
		back := silently(t, h, authz, cookies...)
		if back.Query().Get("error") != "login_required" || back.Query().Get("state") != "st-123" || back.Query().Has("code") {
			t.Errorf("%s: %s, want error=login_required with the state and no code", name, back)
		}
	}

	c := sessionOf(t, authorizeAs(t, h, authz))
	mixed := url.Values{}
	for k, v := range authz {
		mixed[k] = v
	}
	mixed.Del("email")
	mixed.Set("prompt", "none login")
	req := httptest.NewRequest(http.MethodGet, "/authorize?"+mixed.Encode(), nil)
	req.AddCookie(c)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if back, _ := url.Parse(rec.Header().Get("Location")); rec.Code != http.StatusSeeOther || back.Query().Get("error") != "invalid_request" || back.Query().Has("code") {
		t.Errorf("prompt=none login: %d %q, want error=invalid_request", rec.Code, rec.Header().Get("Location"))
	}

	foreign := url.Values{}
	for k, v := range authz {
		foreign[k] = v
	}
	foreign.Set("redirect_uri", "https://evil.example/cb")
	foreign.Set("prompt", "none")
	req = httptest.NewRequest(http.MethodGet, "/authorize?"+foreign.Encode(), nil)
	req.AddCookie(c)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" {
		t.Errorf("prompt=none to a foreign redirect_uri: %d Location %q, want 400 and no redirect", rec.Code, rec.Header().Get("Location"))
	}
}

// TestSessionExpires: once the issuer's session is over, prompt=none
// answers login_required even though the browser still sends the cookie.
func TestSessionExpires(t *testing.T) {
	t.Parallel()
	iss, _ := newIssuer(t)
	iss.SessionTTL = 200 * time.Millisecond
	h := iss.Handler()
	authz, _ := codeFlow(iss)
	c := sessionOf(t, authorizeAs(t, h, authz))
	if c.MaxAge != 1 {
		t.Errorf("cookie Max-Age %d, want the session's 200 ms rounded up to 1 s", c.MaxAge)
	}
	if back := silently(t, h, authz, c); back.Query().Get("code") == "" {
		t.Fatalf("prompt=none while the session lasts: %s, want a code", back)
	}
	time.Sleep(300 * time.Millisecond)
	if back := silently(t, h, authz, c); back.Query().Get("error") != "login_required" || back.Query().Has("code") {
		t.Fatalf("prompt=none after the session: %s, want error=login_required", back)
	}
}

// TestLogoutEndsSession: the end-session endpoint forgets the session and
// clears its cookie, then sends the browser to the app's
// post_logout_redirect_uri (or Cognito's logout_uri) with the state; a
// prompt=none request with the old cookie then answers login_required. A
// foreign destination gets a page, not a redirect.
func TestLogoutEndsSession(t *testing.T) {
	t.Parallel()
	iss, _ := newIssuer(t)
	h := iss.Handler()
	authz, _ := codeFlow(iss)
	app := strings.TrimSuffix(iss.issuer, "/oidc") + "/"
	for _, param := range []string{"post_logout_redirect_uri", "logout_uri"} {
		c := sessionOf(t, authorizeAs(t, h, authz))
		req := httptest.NewRequest(http.MethodGet, "/logout?"+url.Values{param: {app}, "state": {"bye"}, "client_id": {iss.audience}}.Encode(), nil)
		req.AddCookie(c)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if want := app + "?state=bye"; rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
			t.Errorf("%s: %d Location %q, want 303 to %s", param, rec.Code, rec.Header().Get("Location"), want)
		}
		if cleared := sessionOf(t, rec); cleared.MaxAge >= 0 || cleared.Value != "" || cleared.Path != "/oidc" {
			t.Errorf("%s: the cookie is not cleared: %+v", param, cleared)
		}
		if back := silently(t, h, authz, c); back.Query().Get("error") != "login_required" || back.Query().Has("code") {
			t.Errorf("%s: prompt=none after sign-out: %s, want error=login_required", param, back)
		}
	}

	c := sessionOf(t, authorizeAs(t, h, authz))
	req := httptest.NewRequest(http.MethodGet, "/logout?post_logout_redirect_uri="+url.QueryEscape("https://evil.example/"), nil)
	req.AddCookie(c)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("Location") != "" || !strings.Contains(rec.Body.String(), "Signed out") {
		t.Errorf("logout to a foreign origin: %d Location %q, want the signed-out page", rec.Code, rec.Header().Get("Location"))
	}
	if back := silently(t, h, authz, c); back.Query().Get("error") != "login_required" {
		t.Errorf("prompt=none after sign-out to a foreign origin: %s, want error=login_required", back)
	}
}

// TestSessionCookieSecureOverHTTPS: an issuer served over https marks its
// session cookie Secure.
func TestSessionCookieSecureOverHTTPS(t *testing.T) {
	t.Parallel()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewDevIssuer("https://easel.example/dev/oidc", "easel-web", key)
	if err != nil {
		t.Fatal(err)
	}
	authz, _ := codeFlow(iss)
	authz.Set("redirect_uri", "https://easel.example/auth/callback")
	rec := authorizeAs(t, iss.Handler(), authz)
	if c := sessionOf(t, rec); !c.Secure || c.Path != "/dev/oidc" || !c.HttpOnly {
		t.Fatalf("session cookie over https: %+v, want Secure, HttpOnly, Path /dev/oidc", c)
	}
}
