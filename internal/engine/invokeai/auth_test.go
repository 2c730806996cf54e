package invokeai

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
)

func multiUser(f *fakeInvoke) {
	f.multiuser, f.email, f.password, f.tokenTTL = true, "render@easel.local", "s3cret", time.Hour
}

// A token from the environment is sent on every call and in the socket's
// connect packet: the render finishes over the socket, never refused.
func TestMultiUserTokenIsSent(t *testing.T) {
	t.Parallel()
	f := newFake(t, multiUser, func(f *fakeInvoke) { f.stepDelay = 5 * time.Millisecond })
	token := f.issueToken(time.Hour)
	e := newEngine(t, f, func(c *Config) { c.Token, c.SocketPollInterval = token, time.Minute })
	req := request(catalog.ModelSDXL)
	_, pl, err := render(t, e, context.Background(), req)
	if err != nil {
		t.Fatalf("Render with a valid token: %v", err)
	}
	if steps := pl.all(); len(steps) < req.Steps {
		t.Errorf("progress %v: want step events over the socket", steps)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refusals != 0 {
		t.Errorf("%d requests went without the token", f.refusals)
	}
}

// A refused token is a configuration error: not retried, and nothing is
// enqueued.
func TestMultiUser401IsAConfigurationError(t *testing.T) {
	t.Parallel()
	f := newFake(t, multiUser)
	e := newEngine(t, f, func(c *Config) { c.Token = "expired-or-forged" })
	_, err := e.Render(context.Background(), request(catalog.ModelSD15), nil)
	if !errors.Is(err, ErrUnauthorized) || !errors.Is(err, engine.ErrInvalidRequest) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v: want ErrUnauthorized, which is not retried", err)
	}
	if n := f.callCount("POST /api/v1/queue/{queue}/enqueue_batch"); n != 0 {
		t.Errorf("enqueued %d items with a refused token", n)
	}
	// A wrong password is the same configuration error.
	e = newEngine(t, f, func(c *Config) { c.Email, c.Password = f.email, "wrong" })
	if _, err := e.Render(context.Background(), request(catalog.ModelSD15), nil); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong password: error %v, want ErrUnauthorized", err)
	}
}

// With an email and password the engine logs in and renews its token
// before it expires, so no call is ever refused.
func TestMultiUserTokenIsRenewedBeforeExpiry(t *testing.T) {
	t.Parallel()
	f := newFake(t, multiUser, func(f *fakeInvoke) { f.tokenTTL = 2 * time.Second })
	e := newEngine(t, f, func(c *Config) { c.Email, c.Password = f.email, f.password })
	if _, err := e.Render(context.Background(), request(catalog.ModelSD15), nil); err != nil {
		t.Fatalf("first render: %v", err)
	}
	time.Sleep(1700 * time.Millisecond) // past four fifths of the token's life, not past its end
	if _, err := e.Render(context.Background(), request(catalog.ModelSD15), nil); err != nil {
		t.Fatalf("render near the token's expiry: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logins != 2 || f.refusals != 0 {
		t.Fatalf("%d logins and %d refused calls: want a renewal before expiry and no refusal", f.logins, f.refusals)
	}
}
