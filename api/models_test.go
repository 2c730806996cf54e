package api_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine/sim"
)

func findModel(t *testing.T, v api.ModelsView, family string) api.ModelView {
	t.Helper()
	for _, m := range v.Models {
		if m.Family == family {
			return m
		}
	}
	t.Fatalf("GET /v1/models lacks %s: %+v", family, v)
	return api.ModelView{}
}

func (s *stack) models(t *testing.T, token string) api.ModelsView {
	t.Helper()
	var v api.ModelsView
	r := s.do(t, http.MethodGet, "/v1/models", token, nil)
	if r.decode(t, &v); r.status != http.StatusOK {
		t.Fatalf("GET /v1/models: %d %s", r.status, r.body)
	}
	return v
}

func (s *stack) quote(t *testing.T, token string, body map[string]any) api.QuoteView {
	t.Helper()
	var q api.QuoteView
	r := s.do(t, http.MethodPost, "/v1/quote", token, body)
	if r.decode(t, &q); r.status != http.StatusOK {
		t.Fatalf("POST /v1/quote %v: %d %s", body, r.status, r.body)
	}
	return q
}

// GET /v1/models lists every family with the caller's plan's limits and
// defaults, the models its tier's workers reported, and a default price
// that a quote for the defaults agrees with. A family that does not fit
// the tier's GPUs at its default size is listed as unavailable.
func testModels(t *testing.T, s *stack) {
	_, token := s.newUser(t, "free", 10)
	var v api.ModelsView
	waitFor(t, "the tier's workers reported their models", func() bool {
		v = s.models(t, token)
		return findModel(t, v, catalog.ModelSD15).Served != nil
	})
	if v.Plan != "free" || v.Tier == "" || len(v.Models) != len(catalog.Models) {
		t.Fatalf("models view %+v: want the free plan's tier and every family", v)
	}
	sd := findModel(t, v, catalog.ModelSD15)
	if !sd.Available || !*sd.Served || len(sd.Models) == 0 || sd.Defaults.Width != 512 || sd.Limits.MaxSquareSide < 512 {
		t.Fatalf("sd-1.5 on the free plan: %+v", sd)
	}
	q := s.quote(t, token, map[string]any{"prompt": "a fox", "model": catalog.ModelSD15})
	if q.Price.PerImage != sd.DefaultPrice || q.Request.Width != sd.Defaults.Width || q.Request.Steps != sd.Defaults.Steps {
		t.Fatalf("quote for the defaults %+v disagrees with the listed %+v", q, sd)
	}
	for _, m := range v.Models {
		if m.Limits.MaxSquareSide < m.Defaults.Width && (m.Available || m.Reason == "") {
			t.Errorf("%s does not fit at its defaults but is listed available: %+v", m.Family, m)
		}
	}
}

// POST /v1/quote prices a request as a submission would, holds nothing,
// refuses a bad body with the same 400, and names what a submission would
// be refused for now (here: credits), with the same numbers the 402 gives.
func testQuote(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 1)
	body := map[string]any{"prompt": "a quiet harbour", "model": catalog.ModelSDXL, "width": 1024, "height": 1024,
		"steps": 30, "batch_size": 2}
	before := s.credits(t, token)
	q := s.quote(t, token, body)
	if q.Price.Total != 2*q.Price.PerImage || q.Price.PerImage < 1 || q.Plan != "pro" || q.Tier == "" {
		t.Fatalf("quote %+v", q)
	}
	if after := s.credits(t, token); after.Available != before.Available || after.Held != 0 {
		t.Fatalf("a quote moved credits: %+v -> %+v", before, after)
	}
	var jobs struct{ Generations []api.GenerationView }
	if s.do(t, http.MethodGet, "/v1/generations", token, nil).decode(t, &jobs); len(jobs.Generations) != 0 {
		t.Fatalf("a quote made jobs: %+v", jobs.Generations)
	}
	if q.Submittable || q.AvailableCredits != 1 || len(q.Refusals) != 1 || q.Refusals[0].Type != "insufficient-credits" ||
		q.Refusals[0].Status != http.StatusPaymentRequired {
		t.Fatalf("quote for %d credits with 1 available: %+v", q.Price.Total, q)
	}
	r := s.do(t, http.MethodPost, "/v1/generations", token, body)
	if p := expectProblem(t, r, http.StatusPaymentRequired); p.Detail != q.Refusals[0].Detail {
		t.Fatalf("the submission's 402 says %q, the quote said %q", p.Detail, q.Refusals[0].Detail)
	}
	_, rich := s.newUser(t, "pro", 100)
	if q := s.quote(t, rich, body); !q.Submittable || len(q.Refusals) != 0 || q.AvailableCredits != 100 {
		t.Fatalf("quote with 100 credits: %+v", q)
	}
	// A quote changes nothing: a key that may only read gets one.
	r = s.do(t, http.MethodPost, "/v1/api-keys", rich, map[string]any{"name": "quotes", "scopes": []string{"read"}})
	var key api.CreatedAPIKeyView
	if r.decode(t, &key); r.status != http.StatusCreated {
		t.Fatalf("read-only key: %d %s", r.status, r.body)
	}
	if q := s.quote(t, key.Key, body); !q.Submittable || q.Price.Total != 2*q.Price.PerImage {
		t.Fatalf("quote with a read-only key: %+v", q)
	}

	for field, bad := range map[string]map[string]any{
		"width":      {"prompt": "x", "model": catalog.ModelSDXL, "width": 1000000, "height": 1024},
		"model":      {"prompt": "x", "model": "dall-e"},
		"prompt":     {"model": catalog.ModelSD15},
		"batch_size": {"prompt": "x", "batch_size": 999},
	} {
		expectFieldProblem(t, s.do(t, http.MethodPost, "/v1/quote", token, bad), field)
		expectFieldProblem(t, s.do(t, http.MethodPost, "/v1/generations", token, bad), field)
	}
	expectFieldProblem(t, s.do(t, http.MethodPost, "/v1/quote", token, map[string]any{"prompt": "x", "colour": "red"}), "")

	// One side sent: the other is the model's native side.
	for _, tc := range []struct {
		body          map[string]any
		width, height int
	}{
		{map[string]any{"prompt": "x", "width": 768}, 768, 512},
		{map[string]any{"prompt": "x", "model": catalog.ModelSDXL, "height": 768}, 1024, 768},
	} {
		if q := s.quote(t, rich, tc.body); q.Request.Width != tc.width || q.Request.Height != tc.height {
			t.Errorf("quote %v: %dx%d, want %dx%d", tc.body, q.Request.Width, q.Request.Height, tc.width, tc.height)
		}
	}
	// An explicit 0 in a defaulted field is reported with every other
	// invalid field, not alone.
	p := expectProblem(t, s.do(t, http.MethodPost, "/v1/quote", rich, map[string]any{
		"prompt": "x", "width": 4000, "height": 512, "seed": 99999999999, "steps": 0, "batch_size": 0}), http.StatusBadRequest)
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	slices.Sort(fields)
	if want := []string{"batch_size", "seed", "steps", "width"}; !slices.Equal(fields, want) {
		t.Errorf("errors on %v, want %v: %+v", fields, want, p.Errors)
	}
}

// When the tier's workers report they cannot render a family, a request
// for it is refused at the door (quote and submission alike, 400 naming
// model), GET /v1/models says so, and families they serve still run.
func testModelNotServed(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	tier := s.models(t, token).Tier
	ctx := context.Background()
	s.stopGPU(tier)
	if err := s.deps.ServedModels.Clear(ctx, tier); err != nil {
		t.Fatal(err)
	}
	s.startGPUWith(tier, sim.New(sim.Config{Families: []string{catalog.ModelSD15}}))
	t.Cleanup(func() {
		s.stopGPU(tier)
		_ = s.deps.ServedModels.Clear(ctx, tier)
		s.startGPU(tier)
	})
	waitFor(t, "the restricted worker reported", func() bool {
		m := findModel(t, s.models(t, token), catalog.ModelSDXL)
		return m.Served != nil && !*m.Served
	})
	sdxl := findModel(t, s.models(t, token), catalog.ModelSDXL)
	if sdxl.Available || !strings.Contains(sdxl.Reason, "serves") {
		t.Fatalf("sdxl with no worker serving it: %+v", sdxl)
	}
	body := map[string]any{"prompt": "x", "model": catalog.ModelSDXL, "width": 1024, "height": 1024}
	expectFieldProblem(t, s.do(t, http.MethodPost, "/v1/quote", token, body), "model")
	expectFieldProblem(t, s.do(t, http.MethodPost, "/v1/generations", token, body), "model")
	if g := s.completedJob(t, token, 1, catalog.ModelSD15); len(g.Images) != 1 {
		t.Fatalf("sd-1.5 on the restricted worker: %+v", g)
	}
}
