package api_test

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
)

var apiKeyShape = regexp.MustCompile(`^esk_([a-z2-7]{8})_[A-Za-z0-9_-]{43}$`)

// TestAPIKeys needs the server to register the key routes
// (RegisterAPIKeyRoutes) and send esk_ tokens to api.APIKeys (WithAPIKeys, or
// api.Tokens' APIKeys and IsAPIKey fields).
func TestAPIKeys(t *testing.T) {
	s := newStack(t, 5*time.Millisecond)
	t.Run("create use list revoke", func(t *testing.T) { testAPIKeyLifecycle(t, s) })
	t.Run("plan forbids", func(t *testing.T) { testAPIKeyPlanForbids(t, s) })
	t.Run("isolation", func(t *testing.T) { testAPIKeyIsolation(t, s) })
	t.Run("limit", func(t *testing.T) { testAPIKeyLimit(t, s) })
	t.Run("bad input", func(t *testing.T) { testAPIKeyBadInput(t, s) })
	t.Run("scopes", func(t *testing.T) { testAPIKeyScopes(t, s) })
}

func createAPIKey(t *testing.T, s *stack, token string, body any) api.CreatedAPIKeyView {
	t.Helper()
	r := s.do(t, http.MethodPost, "/v1/api-keys", token, body)
	if r.status != http.StatusCreated {
		t.Fatalf("create API key: %d %s", r.status, r.body)
	}
	// The key is shown once: no cache may keep the answer.
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q on a new key", cc)
	}
	var k api.CreatedAPIKeyView
	r.decode(t, &k)
	return k
}

func listAPIKeys(t *testing.T, s *stack, token string) ([]api.APIKeyView, []byte) {
	t.Helper()
	r := s.do(t, http.MethodGet, "/v1/api-keys", token, nil)
	if r.status != http.StatusOK {
		t.Fatalf("list API keys: %d %s", r.status, r.body)
	}
	var list struct {
		APIKeys []api.APIKeyView `json:"api_keys"`
	}
	r.decode(t, &list)
	return list.APIKeys, r.body
}

func testAPIKeyLifecycle(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	if keys, body := listAPIKeys(t, s, token); len(keys) != 0 || !bytes.Contains(body, []byte(`"api_keys":[]`)) {
		t.Fatalf("fresh user lists %s", body)
	}
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	k := createAPIKey(t, s, token, map[string]any{"name": "  ci runner ", "expires_at": expires.Format(time.RFC3339)})
	m := apiKeyShape.FindStringSubmatch(k.Key)
	if m == nil || m[1] != k.Prefix || k.Name != "ci runner" || uuid.Validate(k.ID) != nil ||
		k.ExpiresAt == nil || !k.ExpiresAt.Equal(expires) || time.Since(k.CreatedAt) > time.Minute {
		t.Fatalf("created %+v", k)
	}

	// The key works as a bearer token, reads included and generations too.
	if c := s.credits(t, k.Key); c.Available != 100 {
		t.Fatalf("credits through the key: %+v", c)
	}
	r := s.do(t, http.MethodPost, "/v1/generations", k.Key,
		map[string]any{"prompt": "by key", "width": 64, "height": 64, "steps": 2})
	if r.status != http.StatusAccepted {
		t.Fatalf("generate with the key: %d %s", r.status, r.body)
	}
	var g api.GenerationView
	r.decode(t, &g)
	if g = s.waitGeneration(t, g.ID, k.Key, terminal); g.Status != catalog.JobCompleted {
		t.Fatalf("generation by key ended %+v", g)
	}
	// A key cannot mint keys, or a leaked one would outlive its revocation,
	// whatever the case of the scheme (RFC 9110 lets clients send "bearer").
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		r := s.do(t, http.MethodPost, "/v1/api-keys", "", map[string]any{"name": "child"},
			"Authorization", scheme+" "+k.Key)
		if p := expectProblem(t, r, http.StatusForbidden); p.Type != "https://easel.dev/problems/session-required" {
			t.Fatalf("key creating a key (%s): %+v", scheme, p)
		}
	}
	if r := s.do(t, http.MethodGet, "/v1/credits", "", nil, "Authorization", "bearer "+k.Key); r.status != http.StatusOK {
		t.Fatalf("lower-case scheme: %d %s", r.status, r.body)
	}

	keys, body := listAPIKeys(t, s, token)
	if len(keys) != 1 || keys[0].ID != k.ID || keys[0].Prefix != k.Prefix || keys[0].Name != "ci runner" ||
		!keys[0].Active || keys[0].LastUsedAt == nil || keys[0].ExpiresAt == nil || !keys[0].ExpiresAt.Equal(expires) {
		t.Fatalf("listed %s", body)
	}
	secretPart := k.Key[len("esk_")+9:]
	for _, leak := range []string{secretPart, "key_hash", `"key"`, `"hash"`} {
		if strings.Contains(string(body), leak) {
			t.Fatalf("listing contains %q: %s", leak, body)
		}
	}

	for range 2 { // revoking twice answers the same
		if r := s.do(t, http.MethodDelete, "/v1/api-keys/"+k.ID, token, nil); r.status != http.StatusNoContent || len(r.body) != 0 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
	}
	for _, path := range []string{"/v1/credits", "/v1/api-keys"} {
		r := s.do(t, http.MethodGet, path, k.Key, nil)
		if expectProblem(t, r, http.StatusUnauthorized); r.header.Get("WWW-Authenticate") == "" {
			t.Fatalf("401 without WWW-Authenticate")
		}
	}
	if keys, body := listAPIKeys(t, s, token); len(keys) != 1 || keys[0].Active {
		t.Fatalf("listed after revoke %s", body)
	}

	// A key without expiry; then a malformed and an unknown key are refused alike.
	k2 := createAPIKey(t, s, token, map[string]any{"name": "forever", "expires_at": nil})
	if k2.ExpiresAt != nil || k2.Key == k.Key {
		t.Fatalf("created %+v", k2)
	}
	if c := s.credits(t, k2.Key); c.Available != 99 {
		t.Fatalf("credits through the second key: %+v", c)
	}
	for _, bad := range []string{"esk_", k2.Key[:len(k2.Key)-1] + "!", "esk_aaaaaaaa" + k2.Key[len("esk_")+8:]} {
		expectProblem(t, s.do(t, http.MethodGet, "/v1/credits", bad, nil), http.StatusUnauthorized)
	}
}

func testAPIKeyPlanForbids(t *testing.T, s *stack) {
	for _, plan := range []string{store.FreePlan, "basic"} {
		_, token := s.newUser(t, plan, 10)
		p := expectProblem(t, s.do(t, http.MethodPost, "/v1/api-keys", token, map[string]any{"name": "nope"}), http.StatusForbidden)
		if p.Type != "https://easel.dev/problems/plan-forbids" {
			t.Fatalf("%s plan: %+v", plan, p)
		}
		if keys, _ := listAPIKeys(t, s, token); len(keys) != 0 {
			t.Fatalf("%s plan got a key: %+v", plan, keys)
		}
	}

	// A user who downgrades keeps the keys to see and revoke, but they stop
	// authenticating.
	u, token := s.newUser(t, "enterprise", 10)
	k := createAPIKey(t, s, token, map[string]any{"name": "before downgrade"})
	s.credits(t, k.Key)
	if err := s.store.Subscribe(context.Background(), u.ID, store.FreePlan, "cus_test", time.Now().AddDate(0, 1, 0)); err != nil {
		t.Fatal(err)
	}
	// The downgrade is committed outside the API, as the subscription
	// workflow does: the API hears of it within the auth cache's 5 s bound
	// (in milliseconds, through its listener).
	withinAuthBound(t, "the downgraded user's key refused", func() bool {
		return s.do(t, http.MethodGet, "/v1/credits", k.Key, nil).status == http.StatusUnauthorized
	})
	expectProblem(t, s.do(t, http.MethodGet, "/v1/credits", k.Key, nil), http.StatusUnauthorized)
	if keys, _ := listAPIKeys(t, s, token); len(keys) != 1 {
		t.Fatalf("downgraded user lists %+v", keys)
	}
	if r := s.do(t, http.MethodDelete, "/v1/api-keys/"+k.ID, token, nil); r.status != http.StatusNoContent {
		t.Fatalf("downgraded user revoking: %d %s", r.status, r.body)
	}
}

func testAPIKeyIsolation(t *testing.T, s *stack) {
	_, alice := s.newUser(t, "pro", 10)
	_, bob := s.newUser(t, "pro", 10)
	k := createAPIKey(t, s, alice, map[string]any{"name": "alice's"})
	// A key that may revoke keys: scopes aside, another user's key is
	// answered like a missing one.
	bobKey := createAPIKey(t, s, bob, map[string]any{"name": "bob's", "scopes": []string{"billing", "read"}})

	missing := expectProblem(t, s.do(t, http.MethodDelete, "/v1/api-keys/"+uuid.NewString(), bob, nil), http.StatusNotFound)
	for _, id := range []string{k.ID, "not-a-uuid"} {
		for _, token := range []string{bob, bobKey.Key} {
			r := s.do(t, http.MethodDelete, "/v1/api-keys/"+id, token, nil)
			p := expectProblem(t, r, http.StatusNotFound)
			if p.Type != missing.Type || p.Detail != missing.Detail || strings.Contains(string(r.body), k.ID) {
				t.Fatalf("deleting %s answers %s, unlike a missing key (%+v)", id, r.body, missing)
			}
		}
	}
	if keys, _ := listAPIKeys(t, s, bob); len(keys) != 1 || keys[0].ID != bobKey.ID {
		t.Fatalf("bob lists %+v", keys)
	}
	if keys, _ := listAPIKeys(t, s, k.Key); len(keys) != 1 || keys[0].ID != k.ID || !keys[0].Active {
		t.Fatalf("alice lists %+v after bob's attempts", keys)
	}
	expectProblem(t, s.do(t, http.MethodGet, "/v1/api-keys", "", nil), http.StatusUnauthorized)
}

func testAPIKeyLimit(t *testing.T, s *stack) {
	u, token := s.newUser(t, "pro", 0)
	for range store.MaxActiveAPIKeys - 1 {
		if _, _, err := s.store.CreateAPIKey(context.Background(), u.ID, "bulk", nil); err != nil {
			t.Fatal(err)
		}
	}
	last := createAPIKey(t, s, token, map[string]any{"name": "twentieth"})
	p := expectProblem(t, s.do(t, http.MethodPost, "/v1/api-keys", token, map[string]any{"name": "one too many"}), http.StatusConflict)
	if p.Type != "https://easel.dev/problems/api-key-limit" {
		t.Fatalf("over the limit: %+v", p)
	}
	if r := s.do(t, http.MethodDelete, "/v1/api-keys/"+last.ID, token, nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	createAPIKey(t, s, token, map[string]any{"name": "after a revoke"})
}

func testAPIKeyBadInput(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 0)
	at := func(d time.Duration) string { return time.Now().Add(d).Format(time.RFC3339) }
	cases := []struct {
		name, body, field string
	}{
		{"no name", `{}`, "name"},
		{"empty name", `{"name":""}`, "name"},
		{"blank name", `{"name":"   "}`, "name"},
		{"long name", `{"name":"` + strings.Repeat("é", 101) + `"}`, "name"},
		{"control character", `{"name":"a\u0000b"}`, "name"},
		{"name not a string", `{"name":5}`, "name"},
		{"expiry not a time", `{"name":"x","expires_at":"tomorrow"}`, "expires_at"},
		{"expiry empty", `{"name":"x","expires_at":""}`, "expires_at"},
		{"expiry not a string", `{"name":"x","expires_at":1700000000}`, "expires_at"},
		{"expiry past", `{"name":"x","expires_at":"` + at(-time.Minute) + `"}`, "expires_at"},
		{"expiry over a year", `{"name":"x","expires_at":"` + at(367*24*time.Hour) + `"}`, "expires_at"},
		{"unknown field", `{"name":"x","scopes":["all"]}`, "scopes"},
		{"invalid json", `{"name":`, ""},
		{"empty body", ``, ""},
		{"not an object", `["x"]`, ""},
		{"trailing data", `{"name":"x"} {"name":"y"}`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectFieldProblem(t, s.do(t, http.MethodPost, "/v1/api-keys", token, c.body), c.field)
		})
	}
	if keys, body := listAPIKeys(t, s, token); len(keys) != 0 {
		t.Fatalf("bad input created keys: %s", body)
	}
	// The boundaries themselves are accepted.
	createAPIKey(t, s, token, map[string]any{"name": strings.Repeat("é", 100), "expires_at": at(364 * 24 * time.Hour)})
}

// testAPIKeyScopes: a key does what its scopes allow. By default (generate,
// read) it renders and reads but cannot change the plan, cancel the
// subscription or revoke another key; a billing key can.
func testAPIKeyScopes(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	def := createAPIKey(t, s, token, map[string]any{"name": "default"})
	billing := createAPIKey(t, s, token, map[string]any{"name": "billing", "scopes": []string{"billing"}})
	reader := createAPIKey(t, s, token, map[string]any{"name": "reader", "scopes": []string{"read", "read"}})
	if strings.Join(def.Scopes, ",") != "generate,read" || strings.Join(billing.Scopes, ",") != "billing" ||
		strings.Join(reader.Scopes, ",") != "read" {
		t.Fatalf("scopes %v %v %v", def.Scopes, billing.Scopes, reader.Scopes)
	}
	scopeRefused := func(r response) {
		t.Helper()
		if p := expectProblem(t, r, http.StatusForbidden); p.Type != "https://easel.dev/problems/insufficient-scope" {
			t.Fatalf("problem %+v", p)
		}
	}
	gen := map[string]any{"prompt": "scoped", "model": "sd-1.5", "width": 64, "height": 64, "steps": 1}
	if r := s.do(t, http.MethodPost, "/v1/generations", def.Key, gen); r.status != http.StatusAccepted {
		t.Fatalf("generate with a default key: %d %s", r.status, r.body)
	}
	if r := s.do(t, http.MethodGet, "/v1/credits", reader.Key, nil); r.status != http.StatusOK {
		t.Fatalf("read with a read key: %d %s", r.status, r.body)
	}
	scopeRefused(s.do(t, http.MethodPost, "/v1/generations", reader.Key, gen))
	scopeRefused(s.do(t, http.MethodPost, "/v1/generations", billing.Key, gen))
	scopeRefused(s.do(t, http.MethodGet, "/v1/credits", billing.Key, nil))
	for _, key := range []string{def.Key, reader.Key} {
		scopeRefused(s.do(t, http.MethodPost, "/v1/subscription/cancel", key, nil))
		scopeRefused(s.do(t, http.MethodPost, "/v1/subscription/change", key, map[string]any{"plan": "basic"}))
		scopeRefused(s.do(t, http.MethodPost, "/v1/subscriptions", key, map[string]any{"plan": "basic"}))
		scopeRefused(s.do(t, http.MethodDelete, "/v1/api-keys/"+billing.ID, key, nil))
	}
	// A billing key gets past the scope check (the subscription itself may
	// still refuse) and may revoke keys.
	if r := s.do(t, http.MethodPost, "/v1/subscription/cancel", billing.Key, nil); r.status == http.StatusForbidden {
		t.Fatalf("cancel with a billing key: %d %s", r.status, r.body)
	}
	if r := s.do(t, http.MethodDelete, "/v1/api-keys/"+reader.ID, billing.Key, nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke with a billing key: %d %s", r.status, r.body)
	}
	keys, _ := listAPIKeys(t, s, token)
	for _, k := range keys {
		if k.ID == def.ID && strings.Join(k.Scopes, ",") != "generate,read" {
			t.Fatalf("listed scopes %+v", k)
		}
		if k.Active != (k.ID != reader.ID) {
			t.Fatalf("after revokes: %+v", k)
		}
	}
	for _, bad := range []any{[]string{}, []string{"admin"}, "read", []string{"Read"}} {
		r := s.do(t, http.MethodPost, "/v1/api-keys", token, map[string]any{"name": "bad", "scopes": bad})
		expectFieldProblem(t, r, "scopes")
	}
}
