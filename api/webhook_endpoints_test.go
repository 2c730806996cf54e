package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/webhook"
)

func TestWebhooks(t *testing.T) {
	s := newStack(t, 2*time.Millisecond)
	t.Run("endpoints", func(t *testing.T) { testWebhookEndpoints(t, s) })
	t.Run("generation.completed after failed attempts", func(t *testing.T) { testWebhookRetriedUntilDelivered(t, s) })
	t.Run("slow receiver", func(t *testing.T) { testWebhookSlowReceiver(t, s) })
	t.Run("redirect not followed", func(t *testing.T) { testWebhookRedirect(t, s) })
	t.Run("isolation", func(t *testing.T) { testWebhookIsolation(t, s) })
	t.Run("replay", func(t *testing.T) { testWebhookReplay(t, s) })
	t.Run("credits.low", func(t *testing.T) { testWebhookCreditsLow(t, s) })
	t.Run("generation request's webhook_url", func(t *testing.T) { testRequestWebhook(t, s) })
	t.Run("secret rotation", func(t *testing.T) { testWebhookSecretRotation(t, s) })
}

// hookReceiver is a customer's webhook receiver on this machine: it answers
// the n-th request (from 1) with respond and keeps every request.
type hookReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []hookRequest
	seen chan struct{}
}

type hookRequest struct {
	header http.Header
	body   []byte
}

func newHookReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *hookReceiver {
	h := &hookReceiver{seen: make(chan struct{}, 100)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, hookRequest{header: r.Header.Clone(), body: body})
		n := len(h.got)
		h.mu.Unlock()
		h.seen <- struct{}{}
		respond(n, w, r)
	}))
	t.Cleanup(h.Close)
	return h
}

// wait returns the first n requests once they have come.
func (h *hookReceiver) wait(t *testing.T, n int) []hookRequest {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		h.mu.Lock()
		got := append([]hookRequest(nil), h.got...)
		h.mu.Unlock()
		if len(got) >= n {
			return got[:n]
		}
		select {
		case <-h.seen:
		case <-deadline:
			t.Fatalf("the receiver got %d requests, want %d", len(got), n)
		}
	}
}

func (h *hookReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

func answer(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

func (s *stack) createEndpoint(t *testing.T, token string, body map[string]any) api.CreatedWebhookEndpointView {
	t.Helper()
	r := s.do(t, http.MethodPost, "/v1/webhook-endpoints", token, body)
	if r.status != http.StatusCreated {
		t.Fatalf("create endpoint: %d %s", r.status, r.body)
	}
	var e api.CreatedWebhookEndpointView
	r.decode(t, &e)
	return e
}

// deliveries lists what path (a deliveries route) shows.
func (s *stack) deliveries(t *testing.T, token, path string) []api.WebhookDeliveryView {
	t.Helper()
	r := s.do(t, http.MethodGet, path, token, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	var list struct{ Deliveries []api.WebhookDeliveryView }
	r.decode(t, &list)
	return list.Deliveries
}

// waitDelivery polls path until its first delivery satisfies pred.
func (s *stack) waitDelivery(t *testing.T, token, path string, pred func(api.WebhookDeliveryView) bool) api.WebhookDeliveryView {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ds := s.deliveries(t, token, path)
		if len(ds) > 0 && pred(ds[0]) {
			return ds[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed the expected delivery; last %+v", path, ds)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verified checks a received webhook as a customer would: the signature
// over its id, timestamp and body with the endpoint's secret, then decodes
// it. Its headers and body must match the contract's description of its
// event type.
func verified(t *testing.T, secret string, req hookRequest) webhook.Payload {
	t.Helper()
	if err := webhook.Verify(secret, req.header, req.body); err != nil {
		t.Fatalf("the receiver could not verify the webhook: %v", err)
	}
	checkWebhook(t, req.header, req.body)
	var p webhook.Payload
	if err := json.Unmarshal(req.body, &p); err != nil {
		t.Fatalf("webhook body %s: %v", req.body, err)
	}
	return p
}

// An endpoint is created with a whsec_ secret shown once, listed and read
// without it, limited to 10, validated field by field, and deleted.
func testWebhookEndpoints(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 0)
	e := s.createEndpoint(t, token, map[string]any{"url": "https://hooks.example.com/easel",
		"events": []string{"generation.completed", "credits.low", "generation.completed"}, "description": " CI hook "})
	if !strings.HasPrefix(e.Secret, "whsec_") || len(e.Secret) < 6+32 || e.URL != "https://hooks.example.com/easel" ||
		e.Description != "CI hook" || len(e.Events) != 2 || e.AllEvents {
		t.Fatalf("created %+v", e)
	}
	all := s.createEndpoint(t, token, map[string]any{"url": "https://hooks.example.com/all"})
	if !all.AllEvents || len(all.Events) != len(webhook.EventTypes) || all.Secret == e.Secret {
		t.Fatalf("an endpoint without a filter: %+v", all)
	}
	r := s.do(t, http.MethodGet, "/v1/webhook-endpoints/"+e.ID, token, nil)
	if r.status != http.StatusOK || strings.Contains(string(r.body), e.Secret) || strings.Contains(string(r.body), `"secret"`) {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	r = s.do(t, http.MethodGet, "/v1/webhook-endpoints", token, nil)
	var list struct {
		Endpoints []api.WebhookEndpointView `json:"webhook_endpoints"`
		Limit     int
	}
	if r.decode(t, &list); r.status != http.StatusOK || len(list.Endpoints) != 2 || list.Limit != store.MaxWebhookEndpoints ||
		strings.Contains(string(r.body), "whsec_") {
		t.Fatalf("list: %d %s", r.status, r.body)
	}

	for name, tc := range map[string]struct {
		body  any
		field string
	}{
		"no url":            {map[string]any{}, "url"},
		"ftp":               {map[string]any{"url": "ftp://example.com/x"}, "url"},
		"relative":          {map[string]any{"url": "/hooks"}, "url"},
		"private address":   {map[string]any{"url": "http://10.0.0.7/hook"}, "url"},
		"metadata service":  {map[string]any{"url": "http://169.254.169.254/latest/meta-data/"}, "url"},
		"credentials":       {map[string]any{"url": "https://a:b@example.com/"}, "url"},
		"unknown event":     {map[string]any{"url": "https://example.com/", "events": []string{"image.deleted"}}, "events"},
		"empty filter":      {map[string]any{"url": "https://example.com/", "events": []string{}}, "events"},
		"long description":  {map[string]any{"url": "https://example.com/", "description": strings.Repeat("d", 201)}, "description"},
		"control character": {map[string]any{"url": "https://example.com/", "description": "a\tb"}, "description"},
		"unknown field":     {map[string]any{"url": "https://example.com/", "secret": "whsec_mine"}, "secret"},
	} {
		if r := s.do(t, http.MethodPost, "/v1/webhook-endpoints", token, tc.body); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		} else {
			expectFieldProblem(t, r, tc.field)
		}
	}

	for i := 2; i < store.MaxWebhookEndpoints; i++ {
		s.createEndpoint(t, token, map[string]any{"url": "https://hooks.example.com/n"})
	}
	r = s.do(t, http.MethodPost, "/v1/webhook-endpoints", token, map[string]any{"url": "https://hooks.example.com/one-more"})
	if p := expectProblem(t, r, http.StatusConflict); !strings.HasSuffix(p.Type, "/webhook-endpoint-limit") {
		t.Fatalf("the 11th endpoint: %s", r.body)
	}
	if r := s.do(t, http.MethodDelete, "/v1/webhook-endpoints/"+e.ID, token, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	for _, path := range []string{"/v1/webhook-endpoints/" + e.ID, "/v1/webhook-endpoints/" + e.ID + "/deliveries",
		"/v1/webhook-endpoints/not-a-uuid"} {
		expectProblem(t, s.do(t, http.MethodGet, path, token, nil), http.StatusNotFound)
	}
	expectProblem(t, s.do(t, http.MethodDelete, "/v1/webhook-endpoints/"+e.ID, token, nil), http.StatusNotFound)
	s.createEndpoint(t, token, map[string]any{"url": "https://hooks.example.com/after-delete"})
}

// A receiver that fails twice gets generation.completed on the third
// attempt: every attempt is signed with the endpoint's secret and carries
// the same webhook-id, and the delivery shows the three attempts.
func testWebhookRetriedUntilDelivered(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	recv := newHookReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			http.Error(w, "not yet", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	})
	e := s.createEndpoint(t, token, map[string]any{"url": recv.URL + "/hooks?source=easel",
		"events": []string{"generation.completed", "generation.failed"}})
	g := s.completedJob(t, token, 2, catalog.ModelSD15)

	got := recv.wait(t, 3)
	var id string
	for i, req := range got {
		p := verified(t, e.Secret, req)
		if i == 0 {
			id = req.header.Get("webhook-id")
		}
		if req.header.Get("webhook-id") != id || p.ID != id || p.Type != webhook.GenerationCompleted {
			t.Fatalf("attempt %d: webhook-id %q, payload %+v; want the same id every time", i+1, req.header.Get("webhook-id"), p)
		}
	}
	var data struct {
		Generation struct {
			ID, Status     string
			ImagesProduced int      `json:"images_produced"`
			CreditsSettled int      `json:"credits_settled"`
			Images         []string `json:"images"`
		}
	}
	if err := json.Unmarshal(verified(t, e.Secret, got[2]).Data, &data); err != nil {
		t.Fatal(err)
	}
	if d := data.Generation; d.ID != g.ID || d.Status != catalog.JobCompleted || d.ImagesProduced != 2 ||
		d.CreditsSettled != *g.CreditsSettled || len(d.Images) != 2 || d.Images[0] != g.Images[0].Name {
		t.Fatalf("event data %+v, job %+v", d, g)
	}

	d := s.waitDelivery(t, token, "/v1/webhook-endpoints/"+e.ID+"/deliveries", func(d api.WebhookDeliveryView) bool {
		return d.Status == store.WebhookDelivered
	})
	if len(d.Attempts) != 3 || d.EventType != webhook.GenerationCompleted || d.EventID != id || d.EndpointID == nil ||
		*d.EndpointID != e.ID || d.FinishedAt == nil {
		t.Fatalf("delivery %+v", d)
	}
	for i, want := range []int{500, 500, 200} {
		a := d.Attempts[i]
		if a.Attempt != i+1 || a.StatusCode == nil || *a.StatusCode != want || (want == 500) != (a.Error != "") {
			t.Fatalf("attempt %d: %+v, want status %d", i+1, a, want)
		}
	}
	if d.Attempts[0].ResponseExcerpt != "not yet\n" || d.Attempts[2].ResponseExcerpt != `{"ok":true}` {
		t.Fatalf("excerpts %q, %q", d.Attempts[0].ResponseExcerpt, d.Attempts[2].ResponseExcerpt)
	}
	var p webhook.Payload
	if err := json.Unmarshal(d.Payload, &p); err != nil || p.ID != id {
		t.Fatalf("payload %s: %v", d.Payload, err)
	}
	if all := s.deliveries(t, token, "/v1/webhook-deliveries?event="+id); len(all) != 1 || all[0].ID != d.ID {
		t.Fatalf("deliveries of the event: %+v", all)
	}
	time.Sleep(300 * time.Millisecond)
	if n := recv.count(); n != 3 {
		t.Fatalf("the receiver got %d requests after the delivery succeeded, want 3", n)
	}
}

// An answer slower than the attempt's limit is a failed attempt (timed
// out, no status); the next attempt, answered in time, delivers.
func testWebhookSlowReceiver(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	recv := newHookReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
	e := s.createEndpoint(t, token, map[string]any{"url": recv.URL, "events": []string{"generation.completed"}})
	s.completedJob(t, token, 1, catalog.ModelSD15)
	d := s.waitDelivery(t, token, "/v1/webhook-endpoints/"+e.ID+"/deliveries", func(d api.WebhookDeliveryView) bool {
		return d.Status == store.WebhookDelivered
	})
	if len(d.Attempts) != 2 || d.Attempts[0].StatusCode != nil || !strings.HasPrefix(d.Attempts[0].Error, "timed out") ||
		d.Attempts[0].DurationMS < 900 || *d.Attempts[1].StatusCode != http.StatusNoContent {
		t.Fatalf("attempts %+v", d.Attempts)
	}
}

// A redirect is a failed attempt: the Location is never requested.
func testWebhookRedirect(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	elsewhere := newHookReceiver(t, answer(http.StatusOK))
	recv := newHookReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/moved", http.StatusMovedPermanently)
	})
	e := s.createEndpoint(t, token, map[string]any{"url": recv.URL})
	s.completedJob(t, token, 1, catalog.ModelSD15)
	d := s.waitDelivery(t, token, "/v1/webhook-endpoints/"+e.ID+"/deliveries", func(d api.WebhookDeliveryView) bool {
		return len(d.Attempts) >= 2
	})
	a := d.Attempts[0]
	if d.Status != store.WebhookPending || a.StatusCode == nil || *a.StatusCode != http.StatusMovedPermanently ||
		!strings.Contains(a.Error, "not followed") {
		t.Fatalf("delivery %+v, first attempt %+v", d, a)
	}
	if elsewhere.count() != 0 {
		t.Fatal("the redirect was followed")
	}
	// Deleting the endpoint stops the retries.
	if r := s.do(t, http.MethodDelete, "/v1/webhook-endpoints/"+e.ID, token, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	time.Sleep(2 * time.Second)
	n := recv.count()
	time.Sleep(2 * time.Second)
	if recv.count() != n {
		t.Fatal("a deleted endpoint's delivery kept retrying")
	}
}

// Another user's endpoint and delivery ids answer exactly like missing
// ones, on every route; lists never show them.
func testWebhookIsolation(t *testing.T, s *stack) {
	_, alice := s.newUser(t, "pro", 100)
	_, bob := s.newUser(t, "pro", 0)
	recv := newHookReceiver(t, answer(http.StatusOK))
	e := s.createEndpoint(t, alice, map[string]any{"url": recv.URL})
	s.completedJob(t, alice, 1, catalog.ModelSD15)
	d := s.waitDelivery(t, alice, "/v1/webhook-deliveries", func(d api.WebhookDeliveryView) bool {
		return d.Status == store.WebhookDelivered
	})
	missing := "00000000-0000-4000-8000-000000000000"
	for _, id := range []string{e.ID, missing} {
		for _, r := range []response{
			s.do(t, http.MethodGet, "/v1/webhook-endpoints/"+id, bob, nil),
			s.do(t, http.MethodGet, "/v1/webhook-endpoints/"+id+"/deliveries", bob, nil),
			s.do(t, http.MethodDelete, "/v1/webhook-endpoints/"+id, bob, nil),
		} {
			if p := expectProblem(t, r, http.StatusNotFound); p.Detail != "webhook endpoint not found" {
				t.Fatalf("bob on %s: %s", id, r.body)
			}
		}
	}
	for _, id := range []string{d.ID, missing} {
		r := s.do(t, http.MethodGet, "/v1/webhook-deliveries/"+id, bob, nil)
		if p := expectProblem(t, r, http.StatusNotFound); p.Detail != "webhook delivery not found" {
			t.Fatalf("bob on delivery %s: %s", id, r.body)
		}
	}
	if ds := s.deliveries(t, bob, "/v1/webhook-deliveries?endpoint="+e.ID); len(ds) != 0 {
		t.Fatalf("bob lists alice's deliveries: %+v", ds)
	}
	r := s.do(t, http.MethodGet, "/v1/webhook-endpoints", bob, nil)
	if r.status != http.StatusOK || strings.Contains(string(r.body), e.ID) {
		t.Fatalf("bob's list: %s", r.body)
	}
	if r := s.do(t, http.MethodGet, "/v1/webhook-deliveries/"+d.ID, alice, nil); r.status != http.StatusOK {
		t.Fatalf("alice's own delivery: %d %s", r.status, r.body)
	}
}

// A replay is a new delivery of the same event: the same body and
// webhook-id, its own attempts, pointing at the delivery it replays.
// Another user's delivery cannot be replayed.
func testWebhookReplay(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	recv := newHookReceiver(t, answer(http.StatusOK))
	e := s.createEndpoint(t, token, map[string]any{"url": recv.URL, "events": []string{"generation.completed"}})
	s.completedJob(t, token, 1, catalog.ModelSD15)
	first := s.waitDelivery(t, token, "/v1/webhook-deliveries", func(d api.WebhookDeliveryView) bool {
		return d.Status == store.WebhookDelivered
	})
	_, bob := s.newUser(t, "pro", 0)
	expectProblem(t, s.do(t, http.MethodPost, "/v1/webhook-deliveries/"+first.ID+"/replay", bob, nil), http.StatusNotFound)

	r := s.do(t, http.MethodPost, "/v1/webhook-deliveries/"+first.ID+"/replay", token, nil)
	var replay api.WebhookDeliveryView
	if r.decode(t, &replay); r.status != http.StatusAccepted || replay.ID == first.ID || replay.ReplayOf == nil ||
		*replay.ReplayOf != first.ID || replay.EventID != first.EventID || replay.Status != store.WebhookPending {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	got := recv.wait(t, 2)
	if got[1].header.Get("webhook-id") != got[0].header.Get("webhook-id") || string(got[1].body) != string(got[0].body) {
		t.Fatalf("the replay sent %s with id %s; the first %s with id %s", got[1].body, got[1].header.Get("webhook-id"),
			got[0].body, got[0].header.Get("webhook-id"))
	}
	verified(t, e.Secret, got[1])
	d := s.waitDelivery(t, token, "/v1/webhook-deliveries?event="+first.EventID, func(d api.WebhookDeliveryView) bool {
		return d.ID == replay.ID && d.Status == store.WebhookDelivered
	})
	if len(d.Attempts) != 1 {
		t.Fatalf("replay attempts %+v", d.Attempts)
	}
	if ds := s.deliveries(t, token, "/v1/webhook-endpoints/"+e.ID+"/deliveries"); len(ds) != 2 {
		t.Fatalf("the endpoint's deliveries: %+v", ds)
	}
}

// A settle that takes the balance under 10 credits sends credits.low once
// (the next job, still under, sends nothing more).
func testWebhookCreditsLow(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 11)
	recv := newHookReceiver(t, answer(http.StatusOK))
	e := s.createEndpoint(t, token, map[string]any{"url": recv.URL, "events": []string{"credits.low"}})
	s.completedJob(t, token, 1, catalog.ModelSD15) // 10 left: not low
	s.completedJob(t, token, 1, catalog.ModelSD15) // 9: low
	got := recv.wait(t, 1)
	p := verified(t, e.Secret, got[0])
	var data struct{ Available, Threshold int }
	if err := json.Unmarshal(p.Data, &data); err != nil || p.Type != webhook.CreditsLow || data.Available != 9 || data.Threshold != 10 {
		t.Fatalf("credits.low %+v (%s): %v", p, p.Data, err)
	}
	s.completedJob(t, token, 1, catalog.ModelSD15) // 8: the same episode
	time.Sleep(time.Second)
	if n := recv.count(); n != 1 {
		t.Fatalf("the receiver got %d credits.low events, want 1", n)
	}
}

// A renewal of a paid subscription sends subscription.renewed with the
// period, its credits and the amount charged.
func TestWebhookSubscriptionRenewed(t *testing.T) {
	s := newStackWith(t, time.Millisecond, stackOptions{billing: true})
	u, token := s.newUser(t, store.FreePlan, 0)
	_, adminToken := s.newAdmin(t, "free")
	recv := newHookReceiver(t, answer(http.StatusOK))
	e := s.createEndpoint(t, token, map[string]any{"url": recv.URL,
		"events": []string{"subscription.renewed", "subscription.payment_failed"}})
	if r := s.do(t, http.MethodPost, "/v1/subscriptions", token, map[string]any{"plan": "pro", "payment_method": "pm_card_visa"}); r.status != http.StatusCreated {
		t.Fatalf("subscribe: %d %s", r.status, r.body)
	}
	var sub api.SubscriptionView
	waitFor(t, "subscription active", func() bool {
		sub, _ = s.subscription(t, token)
		return sub.Status == catalog.SubActive && s.available(t, u.ID) == 2000
	})
	if r := s.do(t, http.MethodPost, "/v1/admin/subscriptions/"+sub.ID+"/renew", adminToken, nil); r.status != http.StatusAccepted {
		t.Fatalf("renew: %d %s", r.status, r.body)
	}
	p := verified(t, e.Secret, recv.wait(t, 1)[0])
	var data struct {
		Subscription struct {
			ID, Plan, Status string
			PeriodStart      time.Time `json:"period_start"`
		}
		CreditsGranted int   `json:"credits_granted"`
		AmountCents    int64 `json:"amount_cents"`
		Currency       string
	}
	if err := json.Unmarshal(p.Data, &data); err != nil || p.Type != webhook.SubscriptionRenewed ||
		data.Subscription.ID != sub.ID || data.Subscription.Plan != "pro" || data.Subscription.Status != catalog.SubActive ||
		!data.Subscription.PeriodStart.After(sub.PeriodStart) || data.CreditsGranted != 2000 || data.AmountCents <= 0 ||
		data.Currency != "usd" {
		t.Fatalf("subscription.renewed %s: %v", p.Data, err)
	}
}

// A generation with webhook_url ends with a generation.completed the
// receiver verifies with the account secret (created by that first
// webhook; GET /v1/webhook-secret then shows the same). webhook_events
// filters; both fields are checked and belong to the Idempotency-Key's
// request.
func testRequestWebhook(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	recv := newHookReceiver(t, answer(http.StatusOK))
	job := map[string]any{"prompt": "a webhook", "model": "sd-1.5", "width": 256, "height": 256, "steps": 4,
		"webhook_url": recv.URL + "/jobs?tag=1", "webhook_events": []string{"generation.completed"}}
	r := s.do(t, http.MethodPost, "/v1/generations", token, job, "Idempotency-Key", "hooked-1")
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var g api.GenerationView
	r.decode(t, &g)
	got := recv.wait(t, 1)

	r = s.do(t, http.MethodGet, "/v1/webhook-secret", token, nil)
	var secret api.WebhookSecretView
	if r.decode(t, &secret); r.status != http.StatusOK || !strings.HasPrefix(secret.Secret, "whsec_") ||
		r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("webhook secret: %d %s", r.status, r.body)
	}
	var again api.WebhookSecretView
	if s.do(t, http.MethodGet, "/v1/webhook-secret", token, nil).decode(t, &again); again.Secret != secret.Secret {
		t.Fatal("the account secret changed between two reads")
	}
	p := verified(t, secret.Secret, got[0])
	var data struct{ Generation struct{ ID, Status string } }
	if err := json.Unmarshal(p.Data, &data); err != nil || p.Type != webhook.GenerationCompleted ||
		data.Generation.ID != g.ID || data.Generation.Status != catalog.JobCompleted {
		t.Fatalf("webhook %+v %s: %v", p, p.Data, err)
	}
	d := s.waitDelivery(t, token, "/v1/webhook-deliveries?event="+p.ID, func(d api.WebhookDeliveryView) bool {
		return d.Status == store.WebhookDelivered
	})
	if d.EndpointID != nil || d.URL != recv.URL+"/jobs?tag=1" || len(d.Attempts) != 1 {
		t.Fatalf("delivery %+v", d)
	}

	// The same key with another webhook is another request.
	other := map[string]any{}
	for k, v := range job {
		other[k] = v
	}
	other["webhook_url"] = recv.URL + "/elsewhere"
	expectProblem(t, s.do(t, http.MethodPost, "/v1/generations", token, other, "Idempotency-Key", "hooked-1"), http.StatusConflict)
	if r := s.do(t, http.MethodPost, "/v1/generations", token, job, "Idempotency-Key", "hooked-1"); r.status != http.StatusOK {
		t.Fatalf("the same request again: %d %s", r.status, r.body)
	}

	// A job whose webhook wants failures only completes in silence.
	quiet := map[string]any{"prompt": "quiet", "width": 256, "height": 256, "steps": 4,
		"webhook_url": recv.URL, "webhook_events": []string{"generation.failed", "generation.canceled"}}
	r = s.do(t, http.MethodPost, "/v1/generations", token, quiet)
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r.decode(t, &g)
	s.waitGeneration(t, g.ID, token, terminal)
	time.Sleep(500 * time.Millisecond)
	if n := recv.count(); n != 1 {
		t.Fatalf("the receiver got %d webhooks, want 1", n)
	}

	for name, tc := range map[string]struct {
		extra map[string]any
		field string
	}{
		"private address":    {map[string]any{"webhook_url": "http://192.168.0.10/hook"}, "webhook_url"},
		"metadata service":   {map[string]any{"webhook_url": "https://169.254.169.254/"}, "webhook_url"},
		"not a URL":          {map[string]any{"webhook_url": "hooks"}, "webhook_url"},
		"events without url": {map[string]any{"webhook_events": []string{"generation.completed"}}, "webhook_events"},
		"not a job event":    {map[string]any{"webhook_url": recv.URL, "webhook_events": []string{"credits.low"}}, "webhook_events"},
	} {
		body := map[string]any{"prompt": "x", "width": 256, "height": 256, "steps": 4}
		for k, v := range tc.extra {
			body[k] = v
		}
		if r := s.do(t, http.MethodPost, "/v1/generations", token, body); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		} else {
			expectFieldProblem(t, r, tc.field)
		}
	}

	// A key that may generate and read cannot read the secret.
	r = s.do(t, http.MethodPost, "/v1/api-keys", token, map[string]any{"name": "ci"})
	var key api.CreatedAPIKeyView
	if r.decode(t, &key); r.status != http.StatusCreated {
		t.Fatalf("api key: %d %s", r.status, r.body)
	}
	expectProblem(t, s.do(t, http.MethodGet, "/v1/webhook-secret", key.Key, nil), http.StatusForbidden)
	expectProblem(t, s.do(t, http.MethodPost, "/v1/webhook-endpoints", key.Key, map[string]any{"url": recv.URL}), http.StatusForbidden)
	if r := s.do(t, http.MethodGet, "/v1/webhook-deliveries", key.Key, nil); r.status != http.StatusOK {
		t.Fatalf("a read key lists deliveries: %d %s", r.status, r.body)
	}
}

// testWebhookSecretRotation: a rotated secret signs at once, the one it
// replaced signs beside it for the overlap asked (a day by default) and
// not at all with an overlap of 0; the account secret rotates the same way.
func testWebhookSecretRotation(t *testing.T, s *stack) {
	u, token := s.newUser(t, "pro", 100)
	recv := newHookReceiver(t, answer(http.StatusOK))
	e := s.createEndpoint(t, token, map[string]any{"url": recv.URL, "events": []string{"generation.completed"}})
	if e.PreviousSecretExpiresAt != nil {
		t.Fatalf("a new endpoint has a previous secret until %v", e.PreviousSecretExpiresAt)
	}
	rotate := func(path string, body any) response {
		return s.do(t, http.MethodPost, path, token, body)
	}
	path := "/v1/webhook-endpoints/" + e.ID + "/rotate-secret"
	r := rotate(path, nil)
	var rotated api.CreatedWebhookEndpointView
	r.decode(t, &rotated)
	if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" || rotated.ID != e.ID ||
		!strings.HasPrefix(rotated.Secret, "whsec_") || rotated.Secret == e.Secret || rotated.PreviousSecretExpiresAt == nil ||
		time.Until(*rotated.PreviousSecretExpiresAt).Round(time.Hour) != 24*time.Hour {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	var read api.WebhookEndpointView
	if s.do(t, http.MethodGet, "/v1/webhook-endpoints/"+e.ID, token, nil).decode(t, &read); read.PreviousSecretExpiresAt == nil ||
		!read.PreviousSecretExpiresAt.Equal(*rotated.PreviousSecretExpiresAt) {
		t.Fatalf("the endpoint read after the rotation: %+v", read)
	}
	s.completedJob(t, token, 1, catalog.ModelSD15)
	got := recv.wait(t, 1)
	if n := len(strings.Fields(got[0].header.Get(webhook.HeaderSignature))); n != 2 {
		t.Fatalf("during the overlap a webhook carries %d signatures, want 2", n)
	}
	verified(t, rotated.Secret, got[0])
	verified(t, e.Secret, got[0])

	// No overlap: only the newest secret signs.
	r = rotate(path, map[string]any{"previous_secret_expires_in": 0})
	var last api.CreatedWebhookEndpointView
	if r.decode(t, &last); r.status != http.StatusOK || last.PreviousSecretExpiresAt != nil || last.Secret == rotated.Secret {
		t.Fatalf("rotate without overlap: %d %s", r.status, r.body)
	}
	s.completedJob(t, token, 1, catalog.ModelSD15)
	got = recv.wait(t, 2)
	verified(t, last.Secret, got[1])
	for _, old := range []string{e.Secret, rotated.Secret} {
		if err := webhook.Verify(old, got[1].header, got[1].body); err == nil {
			t.Fatal("a replaced secret still verifies after an overlap of 0")
		}
	}

	// Bad requests, another user's endpoint, a key without the billing scope.
	for _, body := range []any{map[string]any{"previous_secret_expires_in": -1},
		map[string]any{"previous_secret_expires_in": 604801}, map[string]any{"overlap": 5}} {
		expectProblem(t, rotate(path, body), http.StatusBadRequest)
	}
	_, bob := s.newUser(t, "pro", 0)
	expectProblem(t, s.do(t, http.MethodPost, path, bob, nil), http.StatusNotFound)
	_, key, err := s.store.CreateAPIKey(context.Background(), u.ID, "ci", nil)
	if err != nil {
		t.Fatal(err)
	}
	expectProblem(t, s.do(t, http.MethodPost, path, key, nil), http.StatusForbidden)
	if e2 := s.do(t, http.MethodGet, "/v1/webhook-endpoints/"+e.ID, token, nil); !strings.Contains(string(e2.body), `"previous_secret_expires_at":null`) {
		t.Fatalf("a refused rotation changed the endpoint: %s", e2.body)
	}

	// The account secret (the endpoint goes first: it would take the job's
	// event too).
	if r := s.do(t, http.MethodDelete, "/v1/webhook-endpoints/"+e.ID, token, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	var before api.WebhookSecretView
	s.do(t, http.MethodGet, "/v1/webhook-secret", token, nil).decode(t, &before)
	r = rotate("/v1/webhook-secret/rotate", map[string]any{"previous_secret_expires_in": 60})
	var acct api.RotatedWebhookSecretView
	if r.decode(t, &acct); r.status != http.StatusOK || acct.Secret == before.Secret || acct.PreviousSecretExpiresAt == nil ||
		time.Until(*acct.PreviousSecretExpiresAt) > time.Minute || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("rotate the account secret: %d %s", r.status, r.body)
	}
	var after api.WebhookSecretView
	if s.do(t, http.MethodGet, "/v1/webhook-secret", token, nil).decode(t, &after); after.Secret != acct.Secret {
		t.Fatal("GET /v1/webhook-secret does not show the rotated secret")
	}
	job := map[string]any{"prompt": "rotated", "width": 256, "height": 256, "steps": 4, "webhook_url": recv.URL + "/own",
		"webhook_events": []string{"generation.completed"}}
	if r := s.do(t, http.MethodPost, "/v1/generations", token, job); r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	got = recv.wait(t, 3)
	verified(t, acct.Secret, got[2])
	verified(t, before.Secret, got[2])
}
