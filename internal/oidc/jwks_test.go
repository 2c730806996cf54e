package oidc

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeysLoadAfterIssuerComesBack starts the verifier while the issuer's
// JWKS is unreachable: valid tokens must be accepted within seconds of the
// issuer coming back.
func TestKeysLoadAfterIssuerComesBack(t *testing.T) {
	t.Parallel()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // down at start
	iss, err := NewDevIssuer("http://"+addr+"/oidc", "easel-web", key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := NewVerifier(ctx, iss.Config())
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := iss.Sign(alice, time.Minute)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("Verify with no key set: %v, want ErrKeysUnavailable", err)
	}
	if err := v.Ready(); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("Ready with no key set: %v", err)
	}

	mux := http.NewServeMux()
	mux.Handle("/oidc/", http.StripPrefix("/oidc", iss.Handler()))
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	back := time.Now()
	for {
		_, err := v.Verify(ctx, tok)
		if err == nil {
			break
		}
		if time.Since(back) > 10*time.Second {
			t.Fatalf("token still refused 10 s after the JWKS came back: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("accepted %s after the JWKS came back", time.Since(back).Round(time.Millisecond))
	if err := v.Ready(); err != nil {
		t.Fatalf("Ready after the key set loaded: %v", err)
	}
}

// TestRotatedKeysAreFetchedWithinSeconds rotates the issuer's key twice in
// a row: a token signed with each new key must be accepted within seconds.
func TestRotatedKeysAreFetchedWithinSeconds(t *testing.T) {
	t.Parallel()
	var current atomic.Pointer[DevIssuer]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.StripPrefix("/oidc", current.Load().Handler()).ServeHTTP(w, r)
	}))
	defer srv.Close()
	issuer := func() *DevIssuer {
		key, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		iss, err := NewDevIssuer(srv.URL+"/oidc", "easel-web", key)
		if err != nil {
			t.Fatal(err)
		}
		return iss
	}
	current.Store(issuer())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := NewVerifier(ctx, current.Load().Config())
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		if round > 0 {
			current.Store(issuer())
		}
		tok, _ := current.Load().Sign(alice, time.Minute)
		start := time.Now()
		for {
			_, err := v.Verify(ctx, tok)
			if err == nil {
				break
			}
			if time.Since(start) > 15*time.Second {
				t.Fatalf("round %d: token with a rotated key still refused after 15 s: %v", round, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}
