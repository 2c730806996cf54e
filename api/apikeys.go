package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/easel/easel/internal/store"
)

// API key limits.
const (
	maxAPIKeyNameChars = 100
	// maxAPIKeyYears bounds expires_at, so a key that is meant to expire
	// cannot be made practically permanent by a typo in the year.
	maxAPIKeyYears = 1
)

// CreateAPIKeyRequest is the body of POST /v1/api-keys.
type CreateAPIKeyRequest struct {
	Name string `json:"name"`
	// ExpiresAt is RFC 3339; absent or null never expires. It is decoded as
	// a string, not a time.Time, so a malformed value is answered with a
	// field error naming expires_at rather than a bare parse error.
	ExpiresAt *string `json:"expires_at"`
	// Scopes is what the key may do: any of generate, read, billing.
	// Absent means generate and read; only a key with billing may
	// subscribe, change or cancel the plan, or revoke keys.
	Scopes *[]string `json:"scopes"`
}

// CreatedAPIKeyView answers POST /v1/api-keys. Key is the whole secret: it is
// shown this once and cannot be read again.
type CreatedAPIKeyView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	Key       string     `json:"key"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	Scopes    []string   `json:"scopes"`
}

// APIKeyView is a key as listed: never its secret or hash. Prefix is the
// 8-character lookup part that follows esk_ in the key, enough to tell keys
// apart. Active is false once the key is revoked or expired.
type APIKeyView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	Active     bool       `json:"active"`
	Scopes     []string   `json:"scopes"`
}

// RegisterAPIKeyRoutes adds the API key routes to the authenticated /v1 group.
func (s *Server) RegisterAPIKeyRoutes(v1 *gin.RouterGroup) {
	v1.POST("/api-keys", s.createAPIKey)
	v1.GET("/api-keys", s.listAPIKeys)
	v1.DELETE("/api-keys/:id", s.revokeAPIKey)
}

// IsAPIKey reports whether a bearer token is shaped like an Easel API key,
// so an authenticator chain can send it to APIKeys and nowhere else.
func IsAPIKey(token string) bool { return strings.HasPrefix(token, store.APIKeyPrefix) }

// APIKeys authenticates API keys. A key authenticates while it is active and
// unexpired and its owner's plan includes API access: a user who downgrades
// keeps their keys (to list and revoke) but cannot call the API with them.
type APIKeys struct {
	Store *store.Store
}

// Authenticate returns the key's owner, or ErrUnauthenticated for a
// malformed, unknown, revoked or expired key or a plan without API access;
// the caller learns no more than that.
func (a APIKeys) Authenticate(ctx context.Context, token string) (store.User, error) {
	u, err := a.Store.AuthenticateAPIKey(ctx, token)
	if errors.Is(err, store.ErrInvalidAPIKey) {
		return store.User{}, ErrUnauthenticated
	}
	if err != nil {
		return store.User{}, fmt.Errorf("authenticate API key: %w", err)
	}
	plan, err := a.Store.UserPlan(ctx, u.ID)
	if err != nil {
		return store.User{}, fmt.Errorf("authenticate API key: %w", err)
	}
	if !plan.APIAccess {
		return store.User{}, ErrUnauthenticated
	}
	return u, nil
}

// WithAPIKeys sends tokens shaped like API keys (IsAPIKey) to APIKeys over st
// and every other token to next, which never sees an API key. Wrapping an
// already wrapped authenticator returns it unchanged.
func WithAPIKeys(next Authenticator, st *store.Store) Authenticator {
	if r, ok := next.(apiKeyRouter); ok {
		return r
	}
	return apiKeyRouter{keys: APIKeys{Store: st}, next: next}
}

type apiKeyRouter struct {
	keys APIKeys
	next Authenticator
}

func (r apiKeyRouter) Authenticate(ctx context.Context, token string) (store.User, error) {
	if IsAPIKey(token) {
		return r.keys.Authenticate(ctx, token)
	}
	return r.next.Authenticate(ctx, token)
}

func (s *Server) createAPIKey(c *gin.Context) {
	// A key must not mint keys: otherwise a leaked key survives its own
	// revocation by creating successors.
	if token, _ := bearerToken(c); IsAPIKey(token) {
		problem(c, http.StatusForbidden, "session-required", "Session required",
			"API keys cannot create API keys; sign in to create one", nil)
		return
	}
	u := user(c)
	plan, err := s.userPlan(c.Request.Context(), u.ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	if !plan.APIAccess {
		problem(c, http.StatusForbidden, "plan-forbids", "Plan does not allow this",
			fmt.Sprintf("the %s plan does not include API access; upgrade to a plan that does", plan.Name), nil)
		return
	}
	var req CreateAPIKeyRequest
	if !s.decodeJSON(c, &req) {
		return
	}
	name, expiresAt, errs := req.validate(time.Now())
	scopes, ferr := validScopes(req.Scopes)
	if ferr != nil {
		errs = append(errs, *ferr)
	}
	if len(errs) > 0 {
		invalid(c, fmt.Sprintf("%d field(s) are invalid", len(errs)), errs...)
		return
	}
	k, secret, err := s.Store.CreateAPIKey(c.Request.Context(), u.ID, name, expiresAt, scopes...)
	if errors.Is(err, store.ErrTooManyAPIKeys) {
		problem(c, http.StatusConflict, "api-key-limit", "Too many API keys",
			fmt.Sprintf("at most %d API keys may be active at once; revoke one first", store.MaxActiveAPIKeys),
			map[string]any{"limit": store.MaxActiveAPIKeys})
		return
	}
	if err != nil {
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusCreated, CreatedAPIKeyView{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Key: secret,
		CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, Scopes: k.Scopes})
}

// validate returns the trimmed name and the parsed expiry, or every problem.
func (r CreateAPIKeyRequest) validate(now time.Time) (string, *time.Time, []FieldError) {
	var errs []FieldError
	name := strings.TrimSpace(r.Name)
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		errs = append(errs, FieldError{Field: "name", Message: "is required"})
	case n > maxAPIKeyNameChars:
		errs = append(errs, FieldError{Field: "name", Message: fmt.Sprintf("must be at most %d characters", maxAPIKeyNameChars)})
	case strings.ContainsFunc(name, unicode.IsControl):
		// Control characters (NUL above all, which Postgres refuses) have no
		// place in a label shown in listings.
		errs = append(errs, FieldError{Field: "name", Message: "must not contain control characters"})
	}
	var expiresAt *time.Time
	if r.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339, *r.ExpiresAt)
		switch {
		case err != nil:
			errs = append(errs, FieldError{Field: "expires_at", Message: "must be an RFC 3339 time, like 2030-01-02T15:04:05Z"})
		case !t.After(now):
			errs = append(errs, FieldError{Field: "expires_at", Message: "must be in the future"})
		case t.After(now.AddDate(maxAPIKeyYears, 0, 0)):
			errs = append(errs, FieldError{Field: "expires_at", Message: fmt.Sprintf("must be at most %d year from now", maxAPIKeyYears)})
		default:
			expiresAt = &t
		}
	}
	return name, expiresAt, errs
}

func (s *Server) listAPIKeys(c *gin.Context) {
	keys, err := s.Store.ListAPIKeys(c.Request.Context(), user(c).ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	views := make([]APIKeyView, 0, len(keys))
	for _, k := range keys {
		views = append(views, APIKeyView{ID: k.ID, Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt,
			ExpiresAt: k.ExpiresAt, LastUsedAt: k.LastUsedAt, Active: k.Active, Scopes: k.Scopes})
	}
	c.JSON(http.StatusOK, gin.H{"api_keys": views})
}

func (s *Server) revokeAPIKey(c *gin.Context) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		notFound(c, "API key")
		return
	}
	err = s.Store.RevokeAPIKey(c.Request.Context(), user(c).ID, id.String())
	s.forget(user(c).ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		notFound(c, "API key")
	case err != nil:
		unavailable(c, err)
	default:
		c.Status(http.StatusNoContent)
	}
}
