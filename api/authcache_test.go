package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/easel/easel/internal/authcache"
)

// Each API instance remembers whom a token authenticates for a few seconds.
// A suspension, a revoked key or a new plan, committed anywhere, must reach
// every instance within 5 s; through the database's announcements it takes
// milliseconds.
func TestAuthChangesReachEveryInstance(t *testing.T) {
	s := newStack(t, 0)
	other := s.newAPI(t, true)
	b := httptest.NewServer(other.Router())
	t.Cleanup(b.Close)
	waitUntil(t, 10*time.Second, other.AuthCache.Live)
	ctx := context.Background()

	u, token := s.newUser(t, "pro", 100)
	_, key, err := s.store.CreateAPIKey(ctx, u.ID, "second instance", nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, bearer string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, b.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	within := func(what string, want func() bool) {
		t.Helper()
		withinAuthBound(t, what+" on the other instance", want)
	}
	// Both credentials are known (and so remembered) by the other instance.
	for _, bearer := range []string{token, key} {
		if code, _ := get("/v1/credits", bearer); code != http.StatusOK {
			t.Fatalf("before any change: %d", code)
		}
	}

	if _, err := s.store.SetUserActive(ctx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	within("suspension (ID token)", func() bool { c, _ := get("/v1/credits", token); return c == http.StatusForbidden })
	within("suspension (API key)", func() bool { c, _ := get("/v1/credits", key); return c == http.StatusForbidden })
	if _, err := s.store.SetUserActive(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	within("reactivation", func() bool { c, _ := get("/v1/credits", token); return c == http.StatusOK })

	// The key is revoked through the first instance's API.
	keys := s.do(t, http.MethodGet, "/v1/api-keys", token, nil)
	var list struct {
		Keys []struct {
			ID string `json:"id"`
		} `json:"api_keys"`
	}
	keys.decode(t, &list)
	if len(list.Keys) != 1 {
		t.Fatalf("keys: %s", keys.body)
	}
	if r := s.do(t, http.MethodDelete, "/v1/api-keys/"+list.Keys[0].ID, token, nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	within("key revocation", func() bool { c, _ := get("/v1/credits", key); return c == http.StatusUnauthorized })

	// A plan change, as the subscription workflow's activity commits it.
	if code, me := get("/v1/me", token); code != http.StatusOK || planOf(me) != "pro" {
		t.Fatalf("before the change: %d %v", code, me)
	}
	if err := s.store.Subscribe(ctx, u.ID, "enterprise", "cus_test", time.Now().AddDate(0, 1, 0)); err != nil {
		t.Fatal(err)
	}
	within("plan change", func() bool { _, me := get("/v1/me", token); return planOf(me) == "enterprise" })
}

// withinAuthBound waits for cond as long as the auth cache may keep a
// change from the API (authcache.TTL) and reports how long it took.
func withinAuthBound(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > authcache.TTL {
			t.Fatalf("%s: not within %v", what, authcache.TTL)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%s: after %v", what, time.Since(start).Round(time.Millisecond))
}

func planOf(me map[string]any) string {
	if p, ok := me["plan"].(map[string]any); ok {
		s, _ := p["slug"].(string)
		return s
	}
	return ""
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > d {
			t.Fatalf("not within %v", d)
		}
	}
}
