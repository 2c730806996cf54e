package oidc

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

// A verified token is remembered until its exp; a refused one is not; a
// remembered entry past its expiry is verified afresh.
func TestVerifiedTokensAreRememberedUntilExpiry(t *testing.T) {
	t.Parallel()
	iss, v := newIssuer(t)
	ctx := context.Background()
	tok, err := iss.Sign(alice, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	entry, ok := v.verified.Get(sha256.Sum256([]byte(tok)))
	if !ok || entry.id != alice || entry.expires.Before(time.Now().Add(50*time.Second)) || entry.expires.After(time.Now().Add(time.Minute)) {
		t.Fatalf("remembered %+v (%v): want alice until the token's exp", entry, ok)
	}
	if _, err := v.Verify(ctx, "not.a.token"); !errors.Is(err, ErrInvalidToken) || v.verified.Contains(sha256.Sum256([]byte("not.a.token"))) {
		t.Fatalf("a refused token: %v, remembered %v", err, v.verified.Contains(sha256.Sum256([]byte("not.a.token"))))
	}
	// An entry past its expiry does not answer: the token is checked again
	// (here a forged entry for a token that does not verify).
	forged := "forged.token.value"
	v.verified.Add(sha256.Sum256([]byte(forged)), verifiedToken{id: alice, expires: time.Now().Add(-time.Second)})
	if _, err := v.Verify(ctx, forged); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("an expired entry answered: %v", err)
	}
}

// BenchmarkVerify compares verifying a token every time (the RSA signature
// check and claims, as before) with Verify, which remembers it.
//
//	go test -run '^$' -bench Verify -benchtime 5000x ./internal/oidc/
func BenchmarkVerify(b *testing.B) {
	iss, v := newIssuer(b)
	for v.Ready() != nil {
		time.Sleep(10 * time.Millisecond)
	}
	tok, _ := iss.Sign(alice, time.Hour)
	ctx := context.Background()
	b.Run("every-time", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := v.verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remembered", func(b *testing.B) {
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
