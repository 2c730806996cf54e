package invokeai

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/easel/easel/internal/engine"
)

// ErrUnauthorized is InvokeAI refusing Easel's credentials (HTTP 401, or a
// failed login): a configuration error of the GPU host, never the request's
// fault and never cured by retrying, so it wraps engine.ErrInvalidRequest
// and the render is not retried. The worker's log names the variables to fix.
var ErrUnauthorized = fmt.Errorf("%w: invokeai: not authorized (multi-user mode: check INVOKEAI_TOKEN, or INVOKEAI_EMAIL and INVOKEAI_PASSWORD)",
	engine.ErrInvalidRequest)

// renewBefore is how long before its expiry a token is renewed; a token
// whose whole life is shorter is renewed after four fifths of it.
const renewBefore = 5 * time.Minute

// auth holds InvokeAI's bearer token in multi-user mode. A token from the
// environment is used as given; with an email and password the engine logs
// in (POST /api/v1/auth/login) when it has no token or its token is about
// to expire, so renders never meet an expired token.
type auth struct {
	email, password string

	mu      sync.Mutex
	token   string
	expires time.Time // zero: unknown (not a JWT with exp), never renewed
	issued  time.Time
	now     func() time.Time
}

func newAuth(token, email, password string) *auth {
	a := &auth{email: email, password: password, now: time.Now}
	if token != "" {
		a.set(token, jwtExpiry(token))
	}
	return a
}

func (a *auth) set(token string, expires time.Time) {
	a.token, a.expires, a.issued = token, expires, a.now()
}

// bearer returns a token good for a while yet, logging in first when it
// must and can. An empty string means single-user mode (no auth).
func (a *auth) bearer(ctx context.Context, c *apiClient) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.email == "" || !a.due() {
		return a.token, nil
	}
	if err := a.login(ctx, c); err != nil {
		if a.token != "" && a.now().Before(a.expires) {
			return a.token, nil // still valid: try again on the next call
		}
		return "", err
	}
	return a.token, nil
}

// due reports whether the token must be (re)newed now; callers hold mu.
func (a *auth) due() bool {
	if a.token == "" {
		return true
	}
	if a.expires.IsZero() {
		return false
	}
	margin := min(renewBefore, a.expires.Sub(a.issued)/5)
	return !a.now().Before(a.expires.Add(-margin))
}

// expired drops a token InvokeAI refused, so that the next call logs in
// again when it can.
func (a *auth) expired(token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token == token && a.email != "" {
		a.token = ""
	}
}

type loginResponse struct {
	Token     string `json:"token"`
	ExpiresIn int    `json:"expires_in"`
}

// login exchanges the email and password for a token; callers hold mu.
func (a *auth) login(ctx context.Context, c *apiClient) error {
	body, _ := json.Marshal(map[string]any{"email": a.email, "password": a.password, "remember_me": true})
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.sendRaw(ctx, http.MethodPost, "/api/v1/auth/login", nil, bytes.NewReader(body), "")
	if err != nil {
		var he *HTTPError
		if errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden) {
			return fmt.Errorf("%w: login as %s: %w", ErrUnauthorized, a.email, err)
		}
		return fmt.Errorf("invokeai: login as %s: %w", a.email, err)
	}
	defer drain(resp.Body)
	var lr loginResponse
	if err := json.NewDecoder(resp.Body).Decode(&lr); err != nil || lr.Token == "" {
		return fmt.Errorf("invokeai: login as %s: %w: no token in the answer", a.email, ErrUnavailable)
	}
	expires := jwtExpiry(lr.Token)
	if lr.ExpiresIn > 0 {
		expires = a.now().Add(time.Duration(lr.ExpiresIn) * time.Second)
	}
	a.set(lr.Token, expires)
	return nil
}

// jwtExpiry reads the exp claim of a JWT without verifying it (InvokeAI
// verifies; Easel only needs to know when to renew); zero when the token
// is not a JWT or has no exp.
func jwtExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(raw, &claims) != nil || claims.Exp <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(claims.Exp), 0)
}
