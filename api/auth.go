package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/easel/easel/internal/oidc"
	"github.com/easel/easel/internal/store"
)

// Authenticator turns a bearer token into a user. Every authenticated route
// goes through it, so swapping the development token for OIDC and API keys
// changes this one interface's implementation.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (store.User, error)
}

// ErrUnauthenticated is returned for a missing, unknown or expired token.
var ErrUnauthenticated = errors.New("unauthenticated")

// Tokens authenticates OIDC ID tokens (Cognito in production, the
// development issuer in `easel dev` and tests) through the verifier,
// creating or refreshing the user on first sight. The router puts API keys
// in front of it (WithAPIKeys).
type Tokens struct {
	Verifier *oidc.Verifier
	Store    *store.Store
}

// Authenticate verifies the token and returns its user. While the issuer's
// key set has not loaded, it answers oidc.ErrKeysUnavailable (a 503 with
// Retry-After), not ErrUnauthenticated: the token may be valid.
func (t *Tokens) Authenticate(ctx context.Context, token string) (store.User, error) {
	id, expires, err := t.Verifier.VerifyUntil(ctx, token)
	if errors.Is(err, oidc.ErrInvalidToken) {
		return store.User{}, ErrUnauthenticated
	}
	if err != nil {
		return store.User{}, err
	}
	if err := checkIdentity(id); err != nil {
		return store.User{}, err
	}
	u, err := t.Store.SignIn(ctx, id.Email, id.Name, id.Subject)
	u.CredentialExpires = expires
	return u, err
}

// maxClaimChars is what users.email and users.cognito_sub hold.
const maxClaimChars = 255

// claimError is a validly signed token whose identity Easel cannot store:
// the caller gets a 401 naming the claim, not a database error.
type claimError struct{ claim, problem string }

func (e *claimError) Error() string { return "the token's " + e.claim + " claim " + e.problem }

// checkIdentity refuses identity claims that the users table cannot hold
// (too long, NUL, invalid UTF-8). The name is shortened on sign-in, so
// only its text is checked.
func checkIdentity(id oidc.Identity) error {
	for _, c := range []struct {
		claim, value string
		limit        int
	}{{"email", id.Email, maxClaimChars}, {"sub", id.Subject, maxClaimChars}, {"name", id.Name, 0}} {
		if msg := textProblem(c.value); msg != "" {
			return &claimError{c.claim, msg}
		}
		if c.limit > 0 && utf8.RuneCountInString(c.value) > c.limit {
			return &claimError{c.claim, fmt.Sprintf("must be at most %d characters", c.limit)}
		}
	}
	return nil
}

// bearerToken is the credential of an Authorization: Bearer header. The
// scheme is matched without regard to case (RFC 9110, section 11.1): some
// clients send "bearer".
func bearerToken(c *gin.Context) (string, bool) {
	scheme, token, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (s *Server) authenticate(c *gin.Context) {
	// Whatever an authenticated route answers is the caller's own, and some
	// answers carry secrets shown once (a new API key, a webhook secret): no
	// cache may keep it. A route that may be kept says so itself (the event
	// stream's no-cache replaces this).
	c.Header("Cache-Control", "no-store")
	token, ok := bearerToken(c)
	if !ok {
		c.Header("WWW-Authenticate", `Bearer realm="easel"`)
		problem(c, http.StatusUnauthorized, "unauthenticated", "Unauthenticated", "send Authorization: Bearer <token>", nil)
		return
	}
	// Finding a token's owner reads across users (an API key's row before
	// its user is known), so authentication runs with the admin scope; the
	// request itself then runs in the user's scope.
	u, err := s.Auth.Authenticate(store.WithScope(c.Request.Context(), store.Scope{Admin: true}), token)
	var claim *claimError
	if errors.As(err, &claim) {
		c.Header("WWW-Authenticate", `Bearer realm="easel", error="invalid_token"`)
		problem(c, http.StatusUnauthorized, "invalid-identity", "Unusable identity", claim.Error(),
			map[string]any{"claim": claim.claim})
		return
	}
	if errors.Is(err, ErrUnauthenticated) || errors.Is(err, store.ErrNotFound) {
		c.Header("WWW-Authenticate", `Bearer realm="easel", error="invalid_token"`)
		problem(c, http.StatusUnauthorized, "unauthenticated", "Unauthenticated", "the token is not valid", nil)
		return
	}
	if err != nil {
		unavailable(c, err)
		return
	}
	if !u.Active {
		problem(c, http.StatusForbidden, "account-suspended", "Account suspended", "this account is suspended", nil)
		return
	}
	if u.Created {
		s.welcome(c.Request.Context(), u)
	}
	c.Set(ctxUser, u)
	c.Request = c.Request.WithContext(store.WithScope(c.Request.Context(), store.Scope{UserID: u.ID}))
	c.Next()
}
