// Package oidc verifies the ID tokens users sign in with (Amazon Cognito in
// production) and provides a development issuer of the same shape, so that
// `easel dev` and the tests go through the production verification path.
package oidc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/golang-lru/v2/expirable"
)

// Config names the issuer whose tokens are accepted.
type Config struct {
	Issuer   string // iss, e.g. https://cognito-idp.<region>.amazonaws.com/<user pool id>
	Audience string // aud of ID tokens: the app client id
	JWKSURL  string // default: Issuer + "/.well-known/jwks.json"
	// Log receives the key set's load and refresh failures (default slog.Default()).
	Log *slog.Logger
}

// Identity is who a verified token names.
type Identity struct {
	Subject string
	Email   string
	Name    string
}

// ErrInvalidToken wraps every reason a token is refused.
var ErrInvalidToken = errors.New("invalid token")

// ErrKeysUnavailable means the issuer's key set has not loaded yet: the
// token may well be valid, so the caller should answer "try again", not
// "unauthenticated".
var ErrKeysUnavailable = errors.New("oidc: the issuer's key set is not loaded yet")

// Verifier checks RS256 ID tokens against the issuer's JWKS. The key set
// loads in the background, retried with backoff until it answers, so a
// process can start before its issuer does (the development issuer is served
// by the very API that verifies its tokens); once loaded it is refreshed
// hourly and whenever a token names an unknown key id (rate-limited), so key
// rotation needs no restart.
type Verifier struct {
	cfg    Config
	parser *jwt.Parser
	keys   *keySet
	// verified remembers tokens already verified (by their SHA-256), so a
	// client's every request does not pay for an RSA signature check again.
	verified *expirable.LRU[[sha256.Size]byte, verifiedToken]
}

// verifiedToken is a verified token's identity and expiry.
type verifiedToken struct {
	id      Identity
	expires time.Time
}

// Verified tokens are remembered for at most verifiedTTL and never past
// their own exp (without the leeway a fresh verification allows), in a
// cache of at most verifiedTokens entries. A token signed with a key the
// issuer has since withdrawn stays accepted for at most verifiedTTL.
const (
	verifiedTTL    = time.Minute
	verifiedTokens = 10000
)

// NewVerifier validates cfg and starts loading the key set; ctx bounds the
// loading and the background refresh.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("oidc: issuer and audience are required")
	}
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = cfg.Issuer + "/.well-known/jwks.json"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	keys, err := newKeySet(cfg.JWKSURL, cfg.Log)
	if err != nil {
		return nil, err
	}
	go keys.load(ctx)
	return &Verifier{cfg: cfg, keys: keys, verified: expirable.NewLRU[[sha256.Size]byte, verifiedToken](verifiedTokens, nil, verifiedTTL),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(30*time.Second),
		)}, nil
}

// Ready answers nil once the key set has loaded, and otherwise says why it
// has not: until then no token can be verified, so the process is not ready
// for traffic.
func (v *Verifier) Ready() error {
	if _, err := v.keys.get(); err != nil {
		return err
	}
	return nil
}

// idClaims are the claims of a Cognito ID token Easel reads.
type idClaims struct {
	jwt.RegisteredClaims
	TokenUse string `json:"token_use"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	// Nonce echoes the nonce of the authorization request (OIDC code flow).
	Nonce string `json:"nonce,omitempty"`
}

// Verify checks the token's signature, issuer, audience, expiry and use,
// and returns the identity it names. While the key set has not loaded, it
// asks for an early retry, waits for it (within ctx and a few seconds) and
// then answers ErrKeysUnavailable rather than ErrInvalidToken.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	id, _, err := v.VerifyUntil(ctx, token)
	return id, err
}

// VerifyUntil is Verify that also returns the token's exp: what the
// identity may be believed until.
func (v *Verifier) VerifyUntil(ctx context.Context, token string) (Identity, time.Time, error) {
	sum := sha256.Sum256([]byte(token))
	if t, ok := v.verified.Get(sum); ok && time.Now().Before(t.expires) {
		return t.id, t.expires, nil
	}
	id, exp, err := v.verify(ctx, token)
	if err == nil {
		v.verified.Add(sum, verifiedToken{id: id, expires: exp})
	}
	return id, exp, err
}

// verify checks the token's signature and claims, and returns its
// identity and exp.
func (v *Verifier) verify(ctx context.Context, token string) (Identity, time.Time, error) {
	kf, err := v.keys.wait(ctx, keyWait)
	if err != nil {
		return Identity{}, time.Time{}, err
	}
	var c idClaims
	if _, err := v.parser.ParseWithClaims(token, &c, kf.KeyfuncCtx(ctx)); err != nil {
		return Identity{}, time.Time{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.TokenUse != "id" {
		return Identity{}, time.Time{}, fmt.Errorf("%w: token_use is %q, want an ID token", ErrInvalidToken, c.TokenUse)
	}
	if c.Subject == "" || c.Email == "" {
		return Identity{}, time.Time{}, fmt.Errorf("%w: sub and email are required", ErrInvalidToken)
	}
	return Identity{Subject: c.Subject, Email: c.Email, Name: c.Name}, c.ExpiresAt.Time, nil
}

// keyWait bounds how long a request waits for a key set that is loading.
const keyWait = 3 * time.Second
