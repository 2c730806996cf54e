package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newIssuer(t testing.TB) (*DevIssuer, *Verifier) {
	t.Helper()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss, err := NewDevIssuer(srv.URL+"/oidc", "easel-web", key)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/oidc/", http.StripPrefix("/oidc", iss.Handler()))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := NewVerifier(ctx, iss.Config())
	if err != nil {
		t.Fatal(err)
	}
	return iss, v
}

var alice = Identity{Subject: "sub-alice", Email: "alice@example.com", Name: "Alice"}

func TestVerifyAcceptsIssuedToken(t *testing.T) {
	t.Parallel()
	iss, v := newIssuer(t)
	tok, err := iss.Sign(alice, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify(context.Background(), tok)
	if err != nil || id != alice {
		t.Fatalf("Verify = %+v, %v", id, err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	iss, v := newIssuer(t)
	other, _ := newIssuer(t)
	good, _ := iss.Sign(alice, time.Minute)
	expired, _ := iss.Sign(alice, -time.Minute)
	foreign, _ := other.Sign(alice, time.Minute) // another key and issuer
	sign := func(mutate func(*idClaims)) string {
		c := idClaims{RegisteredClaims: jwt.RegisteredClaims{Issuer: iss.issuer, Subject: "s",
			Audience: jwt.ClaimStrings{iss.audience}, IssuedAt: jwt.NewNumericDate(time.Now()),
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Minute))}, TokenUse: "id", Email: "a@b.c"}
		mutate(&c)
		tk := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
		tk.Header["kid"] = iss.kid
		s, err := tk.SignedString(iss.key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "A") + "B." + parts[2]
	cases := map[string]string{
		"expired":        expired,
		"other issuer":   foreign,
		"tampered":       tampered,
		"wrong audience": sign(func(c *idClaims) { c.Audience = jwt.ClaimStrings{"someone-else"} }),
		"access token":   sign(func(c *idClaims) { c.TokenUse = "access" }),
		"no email":       sign(func(c *idClaims) { c.Email = "" }),
		"garbage":        "not.a.token",
	}
	for name, tok := range cases {
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: err = %v, want ErrInvalidToken", name, err)
		}
	}
}

func TestDevLogin(t *testing.T) {
	t.Parallel()
	iss, v := newIssuer(t)
	rec := httptest.NewRecorder()
	iss.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(`{"email":"bob@example.com"}`)))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "id_token") {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	tok := strings.Split(strings.Split(rec.Body.String(), `"id_token":"`)[1], `"`)[0]
	id, err := v.Verify(context.Background(), tok)
	if err != nil || id.Email != "bob@example.com" || id.Name != "bob" {
		t.Fatalf("login token: %+v %v", id, err)
	}
	rec = httptest.NewRecorder()
	iss.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(`{}`)))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("empty login: %d", rec.Code)
	}
}

func TestLoadOrCreateKeyPersists(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/k/dev.pem"
	a, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateKey(path)
	if err != nil || !a.Equal(b) {
		t.Fatalf("second load differs: %v", err)
	}
}

// TestDevIssuerPages: the sign-in page and the discovery document that the
// `easel dev` banner points to exist.
func TestDevIssuerPages(t *testing.T) {
	t.Parallel()
	iss, _ := newIssuer(t)
	rec := httptest.NewRecorder()
	iss.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "login") {
		t.Fatalf("sign-in page: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	iss.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/openid-configuration", nil))
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); rec.Code != http.StatusOK || err != nil {
		t.Fatalf("discovery: %d %s %v", rec.Code, rec.Body, err)
	}
	if doc.Issuer != iss.issuer || doc.JWKSURI != iss.Config().JWKSURL {
		t.Fatalf("discovery %+v, want issuer %s", doc, iss.issuer)
	}
}
