package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/oidc"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

// TestHostileInput sends what an attacker or a careless client would: NUL
// characters, invalid UTF-8, over-long strings, case-variant keys and odd
// content types. Every one must be a 4xx problem naming what is wrong;
// none may reach Postgres as a 5xx, hang, or leave a trace.
func TestHostileInput(t *testing.T) {
	s := newStackWith(t, time.Millisecond, stackOptions{billing: true})
	t.Run("generation text", func(t *testing.T) { testGenerationText(t, s) })
	t.Run("generation body shape", func(t *testing.T) { testGenerationBodyShape(t, s) })
	t.Run("path and query", func(t *testing.T) { testPathAndQuery(t, s) })
	t.Run("plans", func(t *testing.T) { testPlanText(t, s) })
	t.Run("admin grant", func(t *testing.T) { testAdminGrantText(t, s) })
	t.Run("id token claims", func(t *testing.T) { testTokenClaims(t, s) })
	t.Run("stripe events", func(t *testing.T) { testStripeEventInput(t, s) })
	t.Run("parallel idempotency key", func(t *testing.T) { testParallelIdempotencyKey(t, s) })
	t.Run("admit deadline", func(t *testing.T) { testAdmitDeadline(t, s) })
}

// noTraces checks that refused requests held, charged and recorded nothing.
func noTraces(t *testing.T, s *stack, token string, credits int) {
	t.Helper()
	var list struct{ Generations []api.GenerationView }
	s.do(t, http.MethodGet, "/v1/generations", token, nil).decode(t, &list)
	if len(list.Generations) != 0 {
		t.Fatalf("refused requests left %d generations", len(list.Generations))
	}
	if c := s.credits(t, token); c.Available != credits || c.Held != 0 {
		t.Fatalf("refused requests moved credits: %+v", c)
	}
}

func testGenerationText(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	graph := func(v string) string {
		return `{"prompt":"x","graph":{"nodes":{"p":{"id":"p","type":"string","value":` + v + `}},"edges":[]}}`
	}
	cases := []struct {
		name, body, field string
	}{
		{"NUL in prompt", `{"prompt":"a\u0000b"}`, "prompt"},
		{"NUL in negative prompt", `{"prompt":"a","negative_prompt":"\u0000"}`, "negative_prompt"},
		{"NUL in a graph string", graph(`"a\u0000b"`), "graph"},
		{"NUL in a graph key", `{"prompt":"x","graph":{"nodes":{"p\u0000":{"id":"p","type":"l2i"}},"edges":[]}}`, "graph"},
		{"invalid UTF-8 in prompt", "{\"prompt\":\"a\xffb\"}", "prompt"},
		{"invalid UTF-8 in negative prompt", "{\"prompt\":\"a\",\"negative_prompt\":\"\xc3\"}", "negative_prompt"},
		{"invalid UTF-8 in a graph string", graph("\"a\xfe\""), "graph"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The same key twice: neither may hang or be answered from a
			// half-admitted job.
			for range 2 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				r := s.doCtx(ctx, t, http.MethodPost, "/v1/generations", token, c.body, "Idempotency-Key", "text-"+c.field)
				cancel()
				expectFieldProblem(t, r, c.field)
			}
		})
	}
	noTraces(t, s, token, 100)
}

func testGenerationBodyShape(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	cases := []struct {
		name, body, field string
	}{
		{"case-variant duplicate", `{"prompt":"a","Prompt":"b"}`, "Prompt"},
		{"case-variant alone", `{"PROMPT":"a"}`, "PROMPT"},
		{"exact duplicate", `{"prompt":"a","prompt":"b"}`, "prompt"},
		{"long-s variant", `{"prompt":"a","\u017fteps":5}`, "\u017fteps"},
		{"steps 0", `{"prompt":"a","steps":0}`, "steps"},
		{"batch_size 0", `{"prompt":"a","batch_size":0}`, "batch_size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectFieldProblem(t, s.do(t, http.MethodPost, "/v1/generations", token, c.body), c.field)
		})
	}
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/xml", "application/json; charset=latin1"} {
		t.Run("content type "+ct, func(t *testing.T) {
			expectProblem(t, s.do(t, http.MethodPost, "/v1/generations", token, `{"prompt":"a"}`, "Content-Type", ct),
				http.StatusUnsupportedMediaType)
		})
	}
	t.Run("compressed body", func(t *testing.T) {
		p := expectProblem(t, s.do(t, http.MethodPost, "/v1/generations", token, "\x1f\x8b\x08\x00",
			"Content-Encoding", "gzip"), http.StatusUnsupportedMediaType)
		if !strings.Contains(p.Detail, "gzip") {
			t.Fatalf("the problem does not name the encoding: %+v", p)
		}
	})
	t.Run("body over the limit", func(t *testing.T) {
		body := `{"prompt":"` + strings.Repeat("a", 70<<10) + `"}`
		r := s.do(t, http.MethodPost, "/v1/generations", token, body)
		expectProblem(t, r, http.StatusRequestEntityTooLarge)
		var p struct {
			MaxBytes int64 `json:"max_bytes"`
		}
		if r.decode(t, &p); p.MaxBytes != 64<<10 {
			t.Fatalf("max_bytes %d, want %d: %s", p.MaxBytes, 64<<10, r.body)
		}
	})
	t.Run("fraction in an integer field", func(t *testing.T) {
		r := s.do(t, http.MethodPost, "/v1/generations", token, `{"prompt":"a","batch_size":1.5}`)
		expectFieldProblem(t, r, "batch_size")
		if !strings.Contains(string(r.body), "must be an integer") {
			t.Fatalf("the field error does not ask for an integer: %s", r.body)
		}
	})
	noTraces(t, s, token, 100)
	// Absent steps still means the default; JSON with a charset is JSON.
	r := s.do(t, http.MethodPost, "/v1/generations", token, `{"prompt":"a","model":"sd-1.5","width":64,"height":64}`,
		"Content-Type", "application/json; charset=utf-8")
	if r.status != http.StatusAccepted {
		t.Fatalf("default steps: %d %s", r.status, r.body)
	}
	var g api.GenerationView
	r.decode(t, &g)
	var params struct{ Steps int }
	if err := json.Unmarshal(g.Params, &params); err != nil || params.Steps != 30 {
		t.Fatalf("absent steps did not default to 30: %s", g.Params)
	}
}

func testPathAndQuery(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 10)
	for _, path := range []string{"/v1/images/%00", "/v1/images/%ff", "/v1/images/a%00b.png",
		"/v1/generations?before=%00", "/v1/images?limit=%ff", "/v1/generations/%00", "/v1/usage?x=%00"} {
		r := s.do(t, http.MethodGet, path, token, nil)
		if r.status != http.StatusBadRequest && r.status != http.StatusNotFound {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		expectProblem(t, r, r.status)
	}
}

func testPlanText(t *testing.T, s *stack) {
	_, token := s.newUser(t, store.FreePlan, 0)
	for _, path := range []string{"/v1/subscriptions", "/v1/subscription/change"} {
		for _, plan := range []string{"pro\u0000", "\u0000", strings.Repeat("p", 10000)} {
			r := s.do(t, http.MethodPost, path, token, map[string]any{"plan": plan})
			expectFieldProblem(t, r, "plan")
		}
		expectFieldProblem(t, s.do(t, http.MethodPost, path, token, "{\"plan\":\"pr\xffo\"}"), "plan")
	}
}

func testAdminGrantText(t *testing.T, s *stack) {
	u, _ := s.newUser(t, store.FreePlan, 0)
	_, adminToken := s.newAdmin(t, store.FreePlan)
	for _, email := range []string{u.Email + "\u0000", "\u0000"} {
		r := s.do(t, http.MethodPost, "/v1/admin/grants", adminToken, map[string]any{"email": email, "credits": 5, "reason": "x"})
		expectFieldProblem(t, r, "email")
	}
	for _, q := range []string{"%00", "a%00b", "%ff"} {
		expectFieldProblem(t, s.do(t, http.MethodGet, "/v1/admin/users?email="+q, adminToken, nil), "email")
	}
	// A grant whose default 30 days already ended before today would be
	// written expired: refused, naming valid_from.
	past := time.Now().AddDate(0, -2, 0).UTC().Format(time.RFC3339)
	r := s.do(t, http.MethodPost, "/v1/admin/grants", adminToken,
		map[string]any{"email": u.Email, "credits": 5, "reason": "x", "valid_from": past})
	expectFieldProblem(t, r, "valid_from")
	// A past valid_from with a future valid_until is a grant that is live now.
	r = s.do(t, http.MethodPost, "/v1/admin/grants", adminToken, map[string]any{"email": u.Email, "credits": 5, "reason": "x",
		"valid_from": past, "valid_until": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	if r.status != http.StatusCreated {
		t.Fatalf("grant live now: %d %s", r.status, r.body)
	}
	var n int
	if err := s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM credits WHERE user_id = $1`, u.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d credits rows, want the one live grant (%v)", n, err)
	}
}

func testTokenClaims(t *testing.T, s *stack) {
	long := strings.Repeat("a", 250) + "@example.com"
	cases := map[string]oidc.Identity{
		"email over 255": {Subject: "sub-long", Email: long, Name: "Long"},
		"NUL in email":   {Subject: "sub-nul-email", Email: "nul\u0000@example.com", Name: "Nul"},
		"NUL in name":    {Subject: "sub-nul-name", Email: "nulname@example.com", Name: "N\u0000"},
		"subject long":   {Subject: strings.Repeat("s", 300), Email: "longsub@example.com", Name: "S"},
	}
	for name, id := range cases {
		t.Run(name, func(t *testing.T) {
			token, err := s.issuer.Sign(id, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			p := expectProblem(t, s.do(t, http.MethodGet, "/v1/me", token, nil), http.StatusUnauthorized)
			if !strings.Contains(p.Detail, "claim") {
				t.Fatalf("problem does not name the claim: %+v", p)
			}
		})
	}
}

func testStripeEventInput(t *testing.T, s *stack) {
	count := func() int {
		var n int
		if err := s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM stripe_events`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	obj := map[string]any{"id": "pi_1", "object": "payment_intent"}
	for name, id := range map[string]string{"long id": "evt_" + strings.Repeat("x", 300), "NUL id": "evt_\u0000",
		"no id": "", "id with space": "evt 1"} {
		t.Run(name, func(t *testing.T) {
			body, sig := signedEvent(t, s.webhookSecret, id, "payment_intent.succeeded", obj, time.Now())
			expectFieldProblem(t, s.webhook(t, body, sig), "id")
		})
	}
	t.Run("NUL in object id", func(t *testing.T) {
		body, sig := signedEvent(t, s.webhookSecret, "evt_nulobj", "payment_intent.succeeded",
			map[string]any{"id": "pi_\u0000", "object": "payment_intent"}, time.Now())
		expectFieldProblem(t, s.webhook(t, body, sig), "data.object.id")
	})
	t.Run("signed but not JSON", func(t *testing.T) {
		now := time.Now()
		body := []byte("this is not json")
		sig := fmt.Sprintf("t=%d,v1=%x", now.Unix(), webhook.ComputeSignature(now, body, s.webhookSecret))
		p := expectProblem(t, s.webhook(t, body, sig), http.StatusBadRequest)
		if strings.Contains(p.Type, "signature") || !strings.Contains(p.Detail, "JSON") {
			t.Fatalf("a signed non-JSON body: %+v", p)
		}
	})
	if n := count(); n != before {
		t.Fatalf("refused events were stored: %d rows, want %d", n, before)
	}
}

// testParallelIdempotencyKey fires one Idempotency-Key twenty times within
// 200 ms on a job that finishes in milliseconds: every answer is the one job (202 or
// 200), charged once; the same key with another body is 409.
func testParallelIdempotencyKey(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	body := `{"prompt":"fast","model":"sd-1.5","width":64,"height":64,"steps":1}`
	// Three rounds stay within the Pro plan's 120 generate requests a minute.
	for round := range 3 {
		key := fmt.Sprintf("parallel-%d", round)
		// Staggered over the job's short life, so that some arrive while it
		// is admitted, some while it renders and some as it finishes.
		var wg sync.WaitGroup
		answers := make([]response, 20)
		for i := range answers {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 10 * time.Millisecond)
				answers[i] = s.do(t, http.MethodPost, "/v1/generations", token, body, "Idempotency-Key", key)
			})
		}
		wg.Wait()
		var first string
		for _, r := range answers {
			if r.status != http.StatusAccepted && r.status != http.StatusOK {
				t.Fatalf("round %d: %d %s", round, r.status, r.body)
			}
			var g api.GenerationView
			r.decode(t, &g)
			if first == "" {
				first = g.ID
			}
			if g.ID != first {
				t.Fatalf("round %d: jobs %s and %s for one key", round, first, g.ID)
			}
		}
		s.waitGeneration(t, first, token, terminal)
		var wg2 sync.WaitGroup
		late := make([]response, 5)
		for i := range late {
			wg2.Go(func() {
				late[i] = s.do(t, http.MethodPost, "/v1/generations", token, strings.Replace(body, "fast", "other", 1),
					"Idempotency-Key", key)
			})
		}
		wg2.Wait()
		for _, r := range late {
			expectProblem(t, r, http.StatusConflict)
		}
	}
	if c := s.credits(t, token); c.Available != 97 || c.Held != 0 {
		t.Fatalf("credits %+v, want three charges of 1", c)
	}
}

func (s *stack) doCtx(ctx context.Context, t *testing.T, method, path, token string, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, s.http.URL+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v (a hang?)", method, path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	checkContract(t, req, resp.StatusCode, resp.Header, buf.Bytes(), true)
	return response{status: resp.StatusCode, header: resp.Header, body: buf.Bytes()}
}

// fixedUser authenticates every token as one user.
type fixedUser struct{ u store.User }

func (f fixedUser) Authenticate(context.Context, string) (store.User, error) { return f.u, nil }

// testAdmitDeadline: when nothing answers the admit update (here: a
// Temporal server with no workers), the API answers 503 with Retry-After
// at its deadline instead of holding the request open.
func testAdmitDeadline(t *testing.T, s *stack) {
	u, _ := s.newUser(t, "pro", 10)
	bare := testenv.Temporal(t, api.SearchAttributes)
	var logs testenv.Buffer
	srv := &api.Server{Store: s.store, Temporal: bare, Progress: s.hub, Auth: fixedUser{u},
		Log: slog.New(slog.NewJSONHandler(&logs, nil)), AdmitTimeout: 2 * time.Second}
	h := srv.Router()
	start := time.Now()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/v1/generations", strings.NewReader(`{"prompt":"nobody home"}`))
	req.Header.Set("Authorization", "Bearer x")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "deadline-1")
	h.ServeHTTP(rec, req)
	checkContract(t, req, rec.Code, rec.Header(), rec.Body.Bytes(), true)
	r := response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	expectProblem(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Fatalf("503 without Retry-After: %v", r.header)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("answered after %s", d)
	}
	if !strings.Contains(logs.String(), "generation admission timed out") {
		t.Fatalf("the timeout was not logged: %s", logs.String())
	}
}
