package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel/easel/api"
	"github.com/easel/easel/api/apitypes"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/objects"
	"github.com/easel/easel/internal/oidc"
	"github.com/easel/easel/internal/store"
)

// problemBody is a problem+json body: the contract's type.
type problemBody = apitypes.Problem

func expectProblem(t *testing.T, r response, status int) problemBody {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	var p problemBody
	r.decode(t, &p)
	if p.Status != status || !strings.HasPrefix(p.Type, "https://easel.dev/problems/") || p.Title == "" {
		t.Fatalf("problem body %s", r.body)
	}
	return p
}

// expectFieldProblem checks a 400 problem+json that names field in its
// errors (field "" when the body as a whole is at fault).
func expectFieldProblem(t *testing.T, r response, field string) {
	t.Helper()
	p := expectProblem(t, r, http.StatusBadRequest)
	if field == "" {
		return
	}
	for _, e := range p.Errors {
		if e.Field == field {
			return
		}
	}
	t.Fatalf("problem does not name %q: %+v", field, p)
}

func TestAPI(t *testing.T) {
	s := newStack(t, 5*time.Millisecond)
	t.Run("generate end to end", func(t *testing.T) { testGenerateEndToEnd(t, s) })
	t.Run("live previews", func(t *testing.T) { testLivePreviews(t, s) })
	t.Run("idempotency key", func(t *testing.T) { testIdempotency(t, s) })
	t.Run("star and delete images", func(t *testing.T) { testImageStarAndDelete(t, s) })
	t.Run("bulk delete images", func(t *testing.T) { testImageBulkDelete(t, s) })
	t.Run("paging", func(t *testing.T) { testPaging(t, s) })
	t.Run("image download link", func(t *testing.T) { testImageDownload(t, s) })
	t.Run("models", func(t *testing.T) { testModels(t, s) })
	t.Run("head", func(t *testing.T) { testHead(t, s) })
	t.Run("quote", func(t *testing.T) { testQuote(t, s) })
	t.Run("model not served", func(t *testing.T) { testModelNotServed(t, s) })
	t.Run("upload formats", func(t *testing.T) { testUploadFormats(t, s) })
	t.Run("upload refusals", func(t *testing.T) { testUploadRefusals(t, s) })
	t.Run("upload storage and isolation", func(t *testing.T) { testUploadStorageAndIsolation(t, s) })
	t.Run("image to image", func(t *testing.T) { testImageToImage(t, s) })
	t.Run("image to image refusals", func(t *testing.T) { testImageToImageRefusals(t, s) })
	t.Run("image to image source deleted", func(t *testing.T) { testImageToImageSourceDeleted(t, s) })
	t.Run("inpaint", func(t *testing.T) { testInpaint(t, s) })
	t.Run("insufficient credits", func(t *testing.T) { testInsufficientCredits(t, s) })
	t.Run("cancel refunds", func(t *testing.T) { testCancelRefunds(t, s) })
	t.Run("gpu worker lost mid-job", func(t *testing.T) { testWorkerLost(t, s) })
	t.Run("bad input", func(t *testing.T) { testBadInput(t, s) })
	t.Run("job without live status", func(t *testing.T) { testJobWithoutLiveStatus(t, s) })
	t.Run("streams end on shutdown", func(t *testing.T) { testStreamsEndOnShutdown(t, s) })
	t.Run("raw graph", func(t *testing.T) { testRawGraphs(t, s) })
	t.Run("isolation and auth", func(t *testing.T) { testIsolation(t, s) })
	t.Run("sign in", func(t *testing.T) { testSignIn(t, s) })
	t.Run("plans, me and rate limits", func(t *testing.T) { testAccount(t, s) })
	t.Run("health and version", func(t *testing.T) { testHealth(t, s) })
}

func testGenerateEndToEnd(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{
		"prompt": "a lighthouse at dusk", "model": "sd-1.5", "width": 320, "height": 256, "steps": 12, "batch_size": 2,
	}, "Idempotency-Key", "e2e-1")
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var g api.GenerationView
	r.decode(t, &g)
	if g.CreditsHeld != 2 || g.Price.PerImage != 1 || g.Links.Events != "/v1/generations/"+g.ID+"/events" {
		t.Fatalf("created %+v", g)
	}
	if c := s.credits(t, token); c.Held != 2 || c.Available != 98 {
		t.Fatalf("credits while running = %+v, want 2 held, 98 available", c)
	}

	events := s.events(t, g.ID, token)
	if len(events) == 0 || events[len(events)-1].State != catalog.JobCompleted {
		t.Fatalf("events ended with %+v", events)
	}
	sawRunning := false
	for _, e := range events {
		sawRunning = sawRunning || (e.State == catalog.JobRunning && e.Progress > 0 && e.Progress <= 1)
	}
	if !sawRunning {
		t.Fatalf("no progress event in %+v", events)
	}

	// The last event carries the finished job with its images' URLs.
	last := events[len(events)-1].Generation
	if last == nil || last.Status != catalog.JobCompleted || len(last.Images) != 2 || last.Images[0].URL == "" {
		t.Fatalf("last event's generation = %+v", last)
	}

	g = s.waitGeneration(t, g.ID, token, terminal)
	if g.Status != catalog.JobCompleted || g.CreditsSettled == nil || *g.CreditsSettled != 2 || len(g.Images) != 2 {
		t.Fatalf("finished %+v", g)
	}
	if g.StartedAt == nil || g.StartedAt.Before(g.CreatedAt) || g.CompletedAt == nil || g.StartedAt.After(*g.CompletedAt) {
		t.Fatalf("started_at %v, created_at %v, completed_at %v", g.StartedAt, g.CreatedAt, g.CompletedAt)
	}
	// A stream opened after the end is the one final event, dated when the
	// job ended.
	if after := s.events(t, g.ID, token); len(after) != 1 || after[0].State != catalog.JobCompleted ||
		!after[0].UpdatedAt.Equal(*g.CompletedAt) || after[0].StartedAt == nil || !after[0].StartedAt.Equal(*g.StartedAt) {
		t.Fatalf("events after the end: %+v (completed_at %v)", after, g.CompletedAt)
	}
	for _, img := range g.Images {
		resp, err := http.Get(img.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		pic, err := png.Decode(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("image %s does not decode: %v", img.Name, err)
		}
		if b := pic.Bounds(); b.Dx() != 320 || b.Dy() != 256 {
			t.Fatalf("image %s is %dx%d, want 320x256", img.Name, b.Dx(), b.Dy())
		}
		if resp, err := http.Get(img.ThumbnailURL); err != nil || resp.StatusCode != 200 {
			t.Fatalf("thumbnail: %v %v", resp, err)
		}
	}
	if c := s.credits(t, token); c.Held != 0 || c.Available != 98 {
		t.Fatalf("credits after = %+v, want 98 available and nothing held", c)
	}
	var list struct{ Images []api.ImageView }
	s.do(t, http.MethodGet, "/v1/images", token, nil).decode(t, &list)
	if len(list.Images) != 2 {
		t.Fatalf("images listed: %d", len(list.Images))
	}
	one := s.do(t, http.MethodGet, "/v1/images/"+list.Images[0].Name, token, nil)
	if one.status != http.StatusOK || !bytes.Contains(one.body, []byte("a lighthouse at dusk")) {
		t.Fatalf("get image: %d %s", one.status, one.body)
	}
}

func testIdempotency(t *testing.T, s *stack) {
	_, token := s.newUser(t, "basic", 50)
	body := map[string]any{"prompt": "twice", "model": "sdxl", "width": 1024, "height": 1024, "steps": 30}
	first := s.do(t, http.MethodPost, "/v1/generations", token, body, "Idempotency-Key", "same-key")
	if first.status != http.StatusAccepted {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	var a api.GenerationView
	first.decode(t, &a)
	second := s.do(t, http.MethodPost, "/v1/generations", token, body, "Idempotency-Key", "same-key")
	var b api.GenerationView
	second.decode(t, &b)
	if second.status != http.StatusOK || b.ID != a.ID {
		t.Fatalf("retry: %d, job %s vs %s; want 200 and the same job", second.status, b.ID, a.ID)
	}
	s.waitGeneration(t, a.ID, token, terminal)
	third := s.do(t, http.MethodPost, "/v1/generations", token, body, "Idempotency-Key", "same-key")
	if third.status != http.StatusOK {
		t.Fatalf("retry after completion: %d %s", third.status, third.body)
	}
	if c := s.credits(t, token); c.Available != 48 {
		t.Fatalf("balance %+v, want one charge of 2", c)
	}
	body["prompt"] = "something else"
	expectProblem(t, s.do(t, http.MethodPost, "/v1/generations", token, body, "Idempotency-Key", "same-key"), http.StatusConflict)
	var list struct{ Generations []api.GenerationView }
	s.do(t, http.MethodGet, "/v1/generations", token, nil).decode(t, &list)
	if len(list.Generations) != 1 {
		t.Fatalf("%d generations listed, want 1", len(list.Generations))
	}

	// Twenty at once with a new key: one creates the job (202), the others
	// are its repeats (200), whichever way each reached it.
	statuses := map[int]int{}
	ids := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	body["prompt"] = "at once"
	for range 20 {
		wg.Go(func() {
			r := s.do(t, http.MethodPost, "/v1/generations", token, body, "Idempotency-Key", "parallel-key")
			var g api.GenerationView
			_ = json.Unmarshal(r.body, &g)
			mu.Lock()
			defer mu.Unlock()
			statuses[r.status]++
			ids[g.ID] = true
		})
	}
	wg.Wait()
	if statuses[http.StatusAccepted] != 1 || statuses[http.StatusOK] != 19 || len(ids) != 1 {
		t.Fatalf("20 requests with one key answered %v for %d job(s); want one 202 and 19 200 for one job", statuses, len(ids))
	}
	for id := range ids {
		s.waitGeneration(t, id, token, terminal)
	}
	if c := s.credits(t, token); c.Available != 46 {
		t.Fatalf("balance %+v, want one more charge of 2", c)
	}
}

func testInsufficientCredits(t *testing.T, s *stack) {
	poor, token := s.newUser(t, "basic", 1)
	r := s.do(t, http.MethodPost, "/v1/generations", token,
		map[string]any{"prompt": "too dear", "model": "sdxl", "width": 1024, "height": 1024}, "Idempotency-Key", "poor-1")
	p := expectProblem(t, r, http.StatusPaymentRequired)
	if p.CreditsNeeded != 2 || p.CreditsAvailable != 1 {
		t.Fatalf("problem %+v", p)
	}
	var list struct{ Generations []api.GenerationView }
	s.do(t, http.MethodGet, "/v1/generations", token, nil).decode(t, &list)
	if len(list.Generations) != 0 || s.credits(t, token).Available != 1 {
		t.Fatalf("a refused job left traces: %+v", list.Generations)
	}
	// After a top-up, the same key may be used again.
	if _, err := s.store.Grant(context.Background(), store.GrantInput{UserID: poor.ID, Amount: 10, Source: "test",
		ValidFrom: time.Now().Add(-time.Minute), ValidUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r = s.do(t, http.MethodPost, "/v1/generations", token,
		map[string]any{"prompt": "too dear", "model": "sdxl", "width": 1024, "height": 1024}, "Idempotency-Key", "poor-1")
	if r.status != http.StatusAccepted {
		t.Fatalf("after top-up: %d %s", r.status, r.body)
	}
}

func testCancelRefunds(t *testing.T, s *stack) {
	u, token := s.newUser(t, "pro", 30)
	// 150 steps of 5 ms per image x 4 images: long enough to cancel mid-render.
	r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{
		"prompt": "slow", "model": "sd-1.5", "width": 512, "height": 512, "steps": 150, "batch_size": 4})
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var g api.GenerationView
	r.decode(t, &g)
	s.waitGeneration(t, g.ID, token, func(g api.GenerationView) bool { return g.Status == catalog.JobRunning })
	// The database itself knows the job runs, and since when.
	running, err := s.store.GetGeneration(context.Background(), u.ID, g.ID)
	deadline := time.Now().Add(10 * time.Second)
	for err == nil && running.Status != catalog.JobRunning && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		running, err = s.store.GetGeneration(context.Background(), u.ID, g.ID)
	}
	if err != nil || running.Status != catalog.JobRunning || running.StartedAt == nil {
		t.Fatalf("stored job = %+v, %v; want running with started_at", running, err)
	}
	c := s.do(t, http.MethodDelete, "/v1/generations/"+g.ID, token, nil)
	if c.status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", c.status, c.body)
	}
	// The cancel shows at once, before the GPU has stopped.
	var canceling api.GenerationView
	c.decode(t, &canceling)
	if canceling.Status != catalog.JobCanceling && canceling.Status != catalog.JobCanceled {
		t.Fatalf("status right after cancel = %s, want canceling", canceling.Status)
	}
	g = s.waitGeneration(t, g.ID, token, terminal)
	if g.Status != catalog.JobCanceled || *g.CreditsSettled != 0 {
		t.Fatalf("after cancel %+v", g)
	}
	if c := s.credits(t, token); c.Available != 30 || c.Held != 0 {
		t.Fatalf("credits after cancel %+v, want all 30 back", c)
	}
	// Partial objects are gone.
	ctx := context.Background()
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := s.objects.Get(ctx, objects.ImageKey(u.ID, g.ID+"_0"))
		if errors.Is(err, objects.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first image of a canceled job still stored: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	expectProblem(t, s.do(t, http.MethodDelete, "/v1/generations/"+g.ID, token, nil), http.StatusConflict)
}

func testBadInput(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	cases := []struct {
		name, body, field string
	}{
		{"invalid json", `{"prompt": "x",`, ""},
		{"not an object", `[1,2]`, ""},
		{"empty body", ``, ""},
		{"unknown model", `{"prompt":"x","model":"dalle"}`, "model"},
		{"width 0", `{"prompt":"x","width":0,"height":512}`, "width"},
		{"width over plan", `{"prompt":"x","model":"sdxl","width":4096,"height":1024}`, "width"},
		{"width not multiple of 8", `{"prompt":"x","width":513,"height":512}`, "width"},
		{"steps 10000", `{"prompt":"x","steps":10000}`, "steps"},
		{"negative seed", `{"prompt":"x","seed":-1}`, "seed"},
		{"batch over plan", `{"prompt":"x","batch_size":9}`, "batch_size"},
		{"missing prompt", `{"model":"sdxl"}`, "prompt"},
		{"wrong type", `{"prompt":"x","width":"wide"}`, "width"},
		{"unknown field", `{"prompt":"x","sampler":"euler"}`, "sampler"},
		{"cfg out of range", `{"prompt":"x","cfg_scale":99}`, "cfg_scale"},
		{"trailing data", `{"prompt":"x"} {"prompt":"y"}`, ""},
		{"graph not a graph", `{"prompt":"x","graph":[1]}`, "graph"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectFieldProblem(t, s.do(t, http.MethodPost, "/v1/generations", token, c.body), c.field)
		})
	}
	expectProblem(t, s.do(t, http.MethodPost, "/v1/generations", token, `{"prompt":"`+strings.Repeat("a", 200<<10)+`"}`),
		http.StatusRequestEntityTooLarge)
	// A graph of the wrong JSON type is named plainly, without Go's types.
	for _, body := range []string{`{"prompt":"x","graph":"x"}`, `{"prompt":"x","graph":[]}`, `{"prompt":"x","graph":{"nodes":[]}}`} {
		r := s.do(t, http.MethodPost, "/v1/quote", token, body)
		if expectFieldProblem(t, r, ""); strings.Contains(string(r.body), "Go value") || strings.Contains(string(r.body), "struct") {
			t.Errorf("%s: %s", body, r.body)
		}
	}
	expectProblem(t, s.do(t, http.MethodPost, "/v1/generations", token, `{"prompt":"x"}`, "Idempotency-Key", "has space"), http.StatusBadRequest)
	var before struct{ Generations []api.GenerationView }
	s.do(t, http.MethodGet, "/v1/generations", token, nil).decode(t, &before)
	if len(before.Generations) != 0 || s.credits(t, token).Available != 100 {
		t.Fatalf("bad input left traces: %d generations", len(before.Generations))
	}
	// Raw node-editor graphs are for plans with node editor access only.
	_, basic := s.newUser(t, "basic", 100)
	graph := map[string]any{"prompt": "x", "graph": sdGraph(512, 512, 30, nil)}
	p := expectProblem(t, s.do(t, http.MethodPost, "/v1/generations", basic, graph), http.StatusForbidden)
	if !strings.Contains(p.Type, "plan-forbids") {
		t.Fatalf("graph on basic: %+v", p)
	}
	if r := s.do(t, http.MethodPost, "/v1/generations", token, graph); r.status != http.StatusAccepted {
		t.Fatalf("graph on pro: %d %s", r.status, r.body)
	} else {
		var g api.GenerationView
		r.decode(t, &g)
		s.waitGeneration(t, g.ID, token, terminal)
		if !strings.Contains(string(g.Params), `"l2i"`) {
			t.Fatalf("graph not kept with the job: %s", g.Params)
		}
	}
	// FLUX at 1536x1536 is within Basic's limits but not its T4's memory:
	// refused before anything is held, with the numbers.
	r := s.do(t, http.MethodPost, "/v1/generations", basic, `{"prompt":"x","model":"flux","width":1536,"height":1536}`)
	expectFieldProblem(t, r, "width")
	if !strings.Contains(string(r.body), "GiB of GPU memory") {
		t.Fatalf("too large for the tier: %s", r.body)
	}
	var list struct{ Generations []api.GenerationView }
	s.do(t, http.MethodGet, "/v1/generations", basic, nil).decode(t, &list)
	if len(list.Generations) != 0 || s.credits(t, basic).Available != 100 {
		t.Fatalf("a refused graph left traces: %d generations", len(list.Generations))
	}
}

func testIsolation(t *testing.T, s *stack) {
	_, alice := s.newUser(t, "pro", 10)
	_, bob := s.newUser(t, "pro", 10)
	r := s.do(t, http.MethodPost, "/v1/generations", alice, map[string]any{"prompt": "mine", "width": 64, "height": 64, "steps": 2})
	var g api.GenerationView
	r.decode(t, &g)
	g = s.waitGeneration(t, g.ID, alice, terminal)
	missingID := "00000000-0000-0000-0000-000000000000"
	// Bob using Alice's ids gets exactly what a missing id gets: same status,
	// same body (but for the request id), nothing about Alice's job.
	routes := []struct{ method, alices, missing string }{
		{http.MethodGet, "/v1/generations/" + g.ID, "/v1/generations/" + missingID},
		{http.MethodGet, "/v1/generations/" + g.ID + "/events", "/v1/generations/" + missingID + "/events"},
		{http.MethodDelete, "/v1/generations/" + g.ID, "/v1/generations/" + missingID},
		{http.MethodGet, "/v1/images/" + g.Images[0].Name, "/v1/images/" + missingID + "_0"},
	}
	for _, rt := range routes {
		theirs := s.do(t, rt.method, rt.alices, bob, nil)
		absent := s.do(t, rt.method, rt.missing, bob, nil)
		expectProblem(t, theirs, http.StatusNotFound)
		if withoutRequestID(t, theirs.body) != withoutRequestID(t, absent.body) {
			t.Fatalf("%s %s answers differently from a missing id:\n%s\n%s", rt.method, rt.alices, theirs.body, absent.body)
		}
	}
	var list struct{ Generations []api.GenerationView }
	s.do(t, http.MethodGet, "/v1/generations", bob, nil).decode(t, &list)
	var imgs struct{ Images []api.ImageView }
	s.do(t, http.MethodGet, "/v1/images", bob, nil).decode(t, &imgs)
	if len(list.Generations) != 0 || len(imgs.Images) != 0 {
		t.Fatalf("bob sees alice's work: %d generations, %d images", len(list.Generations), len(imgs.Images))
	}
	if got := s.waitGeneration(t, g.ID, alice, terminal); got.Status != catalog.JobCompleted {
		t.Fatalf("bob's cancel reached alice's job: %s", got.Status)
	}
	expectProblem(t, s.do(t, http.MethodGet, "/v1/generations/not-a-uuid", bob, nil), http.StatusNotFound)
	expectProblem(t, s.do(t, http.MethodGet, "/v1/credits", "", nil), http.StatusUnauthorized)
	expectProblem(t, s.do(t, http.MethodGet, "/v1/credits", "wrong", nil), http.StatusUnauthorized)
}

func withoutRequestID(t *testing.T, body []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	delete(m, "request_id")
	b, _ := json.Marshal(m)
	return string(b)
}

func testHealth(t *testing.T, s *stack) {
	r := s.do(t, http.MethodGet, "/healthz", "", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"temporal":"ok"`) {
		t.Fatalf("healthz: %d %s", r.status, r.body)
	}
	if r := s.do(t, http.MethodGet, "/api/v1/app/version", "", nil); r.status != http.StatusOK {
		t.Fatalf("version: %d", r.status)
	}
	m := string(s.do(t, http.MethodGet, "/metrics", "", nil).body)
	for _, name := range []string{`easel_http_requests_total{method="POST",route="/v1/generations",status="202"}`,
		`easel_generation_admissions_total{outcome="insufficient_credits"`, "easel_images_generated_total", "easel_credits_settled_total"} {
		if !strings.Contains(m, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// A GPU worker that stops mid-job hands the render to another worker; the job
// ends settled or refunded, never both, and the images already stored are
// not rendered again.
func testWorkerLost(t *testing.T, s *stack) {
	_, token := s.newUser(t, "basic", 30)
	r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{
		"prompt": "resilient", "model": "sd-1.5", "width": 256, "height": 256, "steps": 100, "batch_size": 4})
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var g api.GenerationView
	r.decode(t, &g)
	s.waitGeneration(t, g.ID, token, func(g api.GenerationView) bool {
		return g.Progress != nil && g.Progress.State == catalog.JobRunning && g.Progress.Image >= 1
	})
	s.stopGPU("t4")
	time.Sleep(200 * time.Millisecond)
	s.startGPU("t4")
	g = s.waitGeneration(t, g.ID, token, terminal)
	c := s.credits(t, token)
	switch g.Status {
	case catalog.JobCompleted:
		if *g.CreditsSettled != 4 || len(g.Images) != 4 || c.Available != 26 {
			t.Fatalf("completed with %d credits, %d images, balance %+v", *g.CreditsSettled, len(g.Images), c)
		}
	case catalog.JobFailed:
		if *g.CreditsSettled != 0 || c.Available != 30 {
			t.Fatalf("failed but charged: %+v, balance %+v", g, c)
		}
	default:
		t.Fatalf("ended %s", g.Status)
	}
	if c.Held != 0 {
		t.Fatalf("credits still held: %+v", c)
	}
}

// A new user signs in through the development issuer's login endpoint and is
// created on first sight; expired or foreign tokens get 401, suspended users 403.
func testSignIn(t *testing.T, s *stack) {
	login := s.do(t, http.MethodPost, "/dev/oidc/login", "", map[string]any{"email": "newcomer@example.com", "name": "New Comer"})
	var tok struct {
		IDToken string `json:"id_token"`
	}
	login.decode(t, &tok)
	if login.status != http.StatusOK || tok.IDToken == "" {
		t.Fatalf("login: %d %s", login.status, login.body)
	}
	// A new user is on the free plan: a free subscription grants its 50
	// credits for the month.
	waitFor(t, "free plan credits", func() bool { return s.credits(t, tok.IDToken).Available == 50 })
	sub, status := s.subscription(t, tok.IDToken)
	if status != http.StatusOK || sub.Plan != store.FreePlan || sub.Status != catalog.SubActive {
		t.Fatalf("a new user's subscription: %d %+v", status, sub)
	}
	var exists bool
	if err := s.store.Pool().QueryRow(context.Background(),
		`SELECT last_login_at IS NOT NULL FROM users WHERE email = 'newcomer@example.com'`).Scan(&exists); err != nil || !exists {
		t.Fatalf("user not recorded on first sight: %v", err)
	}
	u, _ := s.newUser(t, "pro", 5)
	expired, err := s.issuer.Sign(oidc.Identity{Subject: u.CognitoSub, Email: u.Email, Name: u.Name}, -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	expectProblem(t, s.do(t, http.MethodGet, "/v1/credits", expired, nil), http.StatusUnauthorized)
	_, token := s.newUser(t, "pro", 5)
	if _, err := s.store.Pool().Exec(context.Background(), `UPDATE users SET is_active = FALSE WHERE email = $1`, u.Email); err != nil {
		t.Fatal(err)
	}
	fresh, _ := s.issuer.Sign(oidc.Identity{Subject: u.CognitoSub, Email: u.Email, Name: u.Name}, time.Minute)
	expectProblem(t, s.do(t, http.MethodGet, "/v1/credits", fresh, nil), http.StatusForbidden)
	if c := s.credits(t, token); c.Available != 5 {
		t.Fatalf("another user affected: %+v", c)
	}
}

func testAccount(t *testing.T, s *stack) {
	var plans struct {
		Plans []api.PlanView `json:"plans"`
	}
	s.do(t, http.MethodGet, "/v1/plans", "", nil).decode(t, &plans)
	if len(plans.Plans) != 4 || plans.Plans[0].Slug != "free" || plans.Plans[2].GPUTier != "a10g" || plans.Plans[3].MaxResolution != 4096 {
		t.Fatalf("plans %+v", plans.Plans)
	}
	_, token := s.newUser(t, "pro", 40)
	r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{"prompt": "me", "width": 64, "height": 64, "steps": 2})
	var g api.GenerationView
	r.decode(t, &g)
	s.waitGeneration(t, g.ID, token, terminal)
	var me struct {
		Plan    api.PlanView
		Credits struct{ Available int }
		Usage   struct{ Generations, Credits, Images int }
		Storage struct {
			UsedBytes  int64 `json:"used_bytes"`
			QuotaBytes int64 `json:"quota_bytes"`
		}
	}
	s.do(t, http.MethodGet, "/v1/me", token, nil).decode(t, &me)
	if me.Plan.Slug != "pro" || me.Credits.Available != 39 || me.Usage.Generations != 1 || me.Usage.Credits != 1 ||
		me.Usage.Images != 1 || me.Storage.UsedBytes <= 0 || me.Storage.QuotaBytes != 50<<30 {
		t.Fatalf("me %+v", me)
	}

	// Free allows 10 generation requests a minute; the 11th is refused with
	// Retry-After, whatever the body.
	_, free := s.newUser(t, "free", 0)
	for i := range 10 {
		r := s.do(t, http.MethodPost, "/v1/generations", free, `{}`)
		if r.status != http.StatusBadRequest || r.header.Get("RateLimit-Limit") != "10" {
			t.Fatalf("request %d: %d %v", i, r.status, r.header)
		}
	}
	r = s.do(t, http.MethodPost, "/v1/generations", free, `{}`)
	expectProblem(t, r, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" || r.header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("429 headers %v", r.header)
	}
	// A full storage quota refuses new work with the numbers.
	full, fullToken := s.newUser(t, "free", 10)
	if _, err := s.store.Pool().Exec(context.Background(), `INSERT INTO images (image_name, user_id, image_origin,
		image_category, width, height, file_size_bytes) VALUES ($1, $2, 'internal', 'general', 8, 8, $3)`,
		"big-"+full.ID, full.ID, int64(1)<<30); err != nil {
		t.Fatal(err)
	}
	r = s.do(t, http.MethodPost, "/v1/generations", fullToken, map[string]any{"prompt": "more"})
	expectProblem(t, r, http.StatusForbidden)
	if !strings.Contains(string(r.body), `"quota_bytes":1073741824`) {
		t.Fatalf("storage problem lacks the numbers: %s", r.body)
	}
	// Reads have their own budget.
	if c := s.do(t, http.MethodGet, "/v1/credits", free, nil); c.status != http.StatusOK {
		t.Fatalf("read after generate limit: %d", c.status)
	}
}

// A watcher of a running job sees small previews of the image on the
// way, then the finished job with its images' URLs.
func testLivePreviews(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	// 150 steps keep the render going long enough to be watched.
	r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{
		"prompt": "a slow sunrise", "model": "sd-1.5", "width": 320, "height": 256, "steps": 150})
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var g api.GenerationView
	r.decode(t, &g)
	previews := 0
	events := s.events(t, g.ID, token)
	for _, e := range events {
		if e.Preview == nil {
			continue
		}
		previews++
		if !strings.HasPrefix(e.Preview.DataURL, "data:image/png;base64,") || e.Preview.Width != 64 || e.Preview.Height != 51 {
			t.Fatalf("preview %+v, want a 64x51 PNG data URL", e.Preview)
		}
	}
	last := events[len(events)-1]
	if previews == 0 || last.Generation == nil || len(last.Generation.Images) != 1 || last.Generation.Images[0].URL == "" {
		t.Fatalf("%d events, %d with previews, last %+v: want previews, then the images' URLs", len(events), previews, last)
	}
}

// HEAD is answered wherever GET is: the same status and headers, no body.
func testHead(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 10)
	for _, c := range []struct {
		path, token string
		status      int
	}{
		{"/v1/me", token, http.StatusOK},
		{"/v1/me", "", http.StatusUnauthorized},
		{"/v1/plans", "", http.StatusOK},
		{"/healthz", "", http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodHead, s.http.URL+c.path, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || len(body) != 0 || resp.Header.Get("Content-Type") == "" {
			t.Errorf("HEAD %s: %d, %d bytes, Content-Type %q", c.path, resp.StatusCode, len(body), resp.Header.Get("Content-Type"))
		}
	}
	// A method a GET route refuses is answered with every method it
	// takes, HEAD among them.
	req, _ := http.NewRequest(http.MethodPut, s.http.URL+"/v1/credits", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("PUT /v1/credits: %d, Allow %q; want 405 with GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
}
