package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/easel/easel/store"
)

// Authenticator turns a bearer token into a user. Every authenticated route
// goes through it, so swapping the development token for OIDC and API keys
// changes this one interface's implementation.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (store.User, error)
}

// ErrUnauthenticated is returned for a missing, unknown or expired token.
var ErrUnauthenticated = errors.New("unauthenticated")

// DevTokens maps fixed development bearer tokens to users. It is for
// `easel dev` and tests only.
type DevTokens struct {
	Store  *store.Store
	Tokens map[string]string // token -> user id
}

// Authenticate looks the token up in constant time per entry.
func (d *DevTokens) Authenticate(ctx context.Context, token string) (store.User, error) {
	for t, userID := range d.Tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			return d.Store.GetUser(ctx, userID)
		}
	}
	return store.User{}, ErrUnauthenticated
}

func (s *Server) authenticate(c *gin.Context) {
	token, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || token == "" {
		c.Header("WWW-Authenticate", `Bearer realm="easel"`)
		problem(c, http.StatusUnauthorized, "unauthenticated", "Unauthenticated", "send Authorization: Bearer <token>", nil)
		return
	}
	u, err := s.Auth.Authenticate(c.Request.Context(), token)
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
	c.Set(ctxUser, u)
	c.Next()
}
