// Package oidc verifies the ID tokens users sign in with (Amazon Cognito in
// production) and provides a development issuer of the same shape, so that
// `easel dev` and the tests go through the production verification path.
package oidc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// Config names the issuer whose tokens are accepted.
type Config struct {
	Issuer   string // iss, e.g. https://cognito-idp.<region>.amazonaws.com/<user pool id>
	Audience string // aud of ID tokens: the app client id
	JWKSURL  string // default: Issuer + "/.well-known/jwks.json"
}

// Identity is who a verified token names.
type Identity struct {
	Subject string
	Email   string
	Name    string
}

// ErrInvalidToken wraps every reason a token is refused.
var ErrInvalidToken = errors.New("invalid token")

// Verifier checks RS256 ID tokens against the issuer's JWKS, which it
// fetches on first use and refreshes in the background (and when a token
// names an unknown key id, so key rotation needs no restart).
type Verifier struct {
	cfg    Config
	parser *jwt.Parser

	mu  sync.Mutex
	ctx context.Context
	kf  keyfunc.Keyfunc
}

// NewVerifier validates cfg. ctx bounds the background JWKS refresh.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("oidc: issuer and audience are required")
	}
	if cfg.JWKSURL == "" {
		cfg.JWKSURL = cfg.Issuer + "/.well-known/jwks.json"
	}
	return &Verifier{cfg: cfg, ctx: ctx, parser: jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second),
	)}, nil
}

// idClaims are the claims of a Cognito ID token Easel reads.
type idClaims struct {
	jwt.RegisteredClaims
	TokenUse string `json:"token_use"`
	Email    string `json:"email"`
	Name     string `json:"name"`
}

// Verify checks the token's signature, issuer, audience, expiry and use,
// and returns the identity it names.
func (v *Verifier) Verify(token string) (Identity, error) {
	kf, err := v.keys()
	if err != nil {
		return Identity{}, err
	}
	var c idClaims
	if _, err := v.parser.ParseWithClaims(token, &c, kf.Keyfunc); err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.TokenUse != "id" {
		return Identity{}, fmt.Errorf("%w: token_use is %q, want an ID token", ErrInvalidToken, c.TokenUse)
	}
	if c.Subject == "" || c.Email == "" {
		return Identity{}, fmt.Errorf("%w: sub and email are required", ErrInvalidToken)
	}
	return Identity{Subject: c.Subject, Email: c.Email, Name: c.Name}, nil
}

// keys returns the JWKS-backed key function, creating it on first use so a
// process can start before its issuer answers (the development issuer is
// served by the very API that verifies its tokens).
func (v *Verifier) keys() (keyfunc.Keyfunc, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.kf != nil {
		return v.kf, nil
	}
	kf, err := keyfunc.NewDefaultCtx(v.ctx, []string{v.cfg.JWKSURL})
	if err != nil {
		return nil, fmt.Errorf("oidc: load JWKS from %s: %w", v.cfg.JWKSURL, err)
	}
	v.kf = kf
	return kf, nil
}
