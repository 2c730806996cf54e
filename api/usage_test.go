package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"testing"
	"time"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
)

type usageBody struct {
	From, To time.Time
	Summary  store.UsageSummary
	Records  []struct {
		JobID          string    `json:"job_id"`
		ActionType     string    `json:"action_type"`
		Model          string    `json:"model"`
		GPUTier        string    `json:"gpu_tier"`
		Steps          int       `json:"steps"`
		Width          int       `json:"width"`
		Height         int       `json:"height"`
		BatchSize      int       `json:"batch_size"`
		ComputeSeconds float64   `json:"compute_seconds"`
		Credits        int       `json:"credits"`
		CreatedAt      time.Time `json:"created_at"`
	}
	NextBefore *string `json:"next_before"`
}

func TestUsage(t *testing.T) {
	s := newStack(t, 5*time.Millisecond)
	t.Run("generation is billed, cached balance settles, low balance noticed", func(t *testing.T) { testUsageAfterGeneration(t, s) })
	t.Run("filters, paging and isolation", func(t *testing.T) { testUsageFilters(t, s) })
	t.Run("bad filters", func(t *testing.T) { testUsageBadFilters(t, s) })
	t.Run("csv", func(t *testing.T) { testUsageCSV(t, s) })
}

func testUsageAfterGeneration(t *testing.T, s *stack) {
	u, token := s.newUser(t, "pro", 11)
	// Read the balance first so a cached value exists to go stale.
	if c := s.credits(t, token); c.Available != 11 {
		t.Fatalf("credits before %+v", c)
	}
	r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{
		"prompt": "a quiet harbour", "model": "sd-1.5", "width": 320, "height": 256, "steps": 12, "batch_size": 2,
	}, "Idempotency-Key", "usage-1")
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var g api.GenerationView
	r.decode(t, &g)
	if c := s.credits(t, token); c.Held != 2 || c.Available != 9 {
		t.Fatalf("credits while running %+v", c)
	}
	g = s.waitGeneration(t, g.ID, token, terminal)
	if g.Status != catalog.JobCompleted {
		t.Fatalf("finished %+v", g)
	}
	if c := s.credits(t, token); c.Held != 0 || c.Available != 9 || c.Granted != 9 {
		t.Fatalf("credits after %+v, want the settled 9", c)
	}
	var body usageBody
	r = s.do(t, http.MethodGet, "/v1/usage", token, nil)
	if r.status != http.StatusOK {
		t.Fatalf("usage: %d %s", r.status, r.body)
	}
	r.decode(t, &body)
	if len(body.Records) != 1 || body.Records[0].JobID != g.ID || body.Records[0].Credits != 2 ||
		body.Records[0].Model != "sd-1.5" || body.Records[0].BatchSize != 2 || body.Records[0].Width != 320 {
		t.Fatalf("records %+v", body.Records)
	}
	if body.Summary.Generations != 1 || body.Summary.Images != 2 || body.Summary.Credits != 2 {
		t.Fatalf("summary %+v", body.Summary)
	}
	// 11 - 2 = 9 crossed under 10: exactly one notice, recorded as sent.
	ns, err := s.store.Notices(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].Balance != 9 || ns[0].SentAt == nil {
		t.Fatalf("notices %+v", ns)
	}
}

// addUsage writes a usage record at a chosen time.
func addUsage(t *testing.T, s *stack, userID, jobID string, credits int, at time.Time) {
	t.Helper()
	if _, err := s.store.Pool().Exec(context.Background(), `
		INSERT INTO usage_records (user_id, job_id, action_type, model_used, gpu_tier, steps, width, height,
		                           batch_size, compute_seconds, credits_consumed, created_at)
		VALUES ($1, $2, 'generation', 'sdxl', 'a10g', 30, 1024, 1024, 1, 2.5, $3, $4)`,
		userID, jobID, credits, at); err != nil {
		t.Fatal(err)
	}
}

func testUsageFilters(t *testing.T, s *stack) {
	u, token := s.newUser(t, "pro", 0)
	other, _ := s.newUser(t, "pro", 0)
	jan := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	addUsage(t, s, u.ID, "jan-1", 3, jan)
	addUsage(t, s, u.ID, "jan-2", 4, jan.Add(time.Hour))
	addUsage(t, s, u.ID, "jan-3", 5, jan.Add(2*time.Hour))
	addUsage(t, s, u.ID, "feb-1", 7, time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC))
	addUsage(t, s, other.ID, "other-jan", 100, jan)

	var body usageBody
	r := s.do(t, http.MethodGet, "/v1/usage?from=2025-01-01&to=2025-02-01", token, nil)
	if r.status != http.StatusOK {
		t.Fatalf("usage: %d %s", r.status, r.body)
	}
	r.decode(t, &body)
	if !body.From.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) || !body.To.Equal(time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("range %s..%s", body.From, body.To)
	}
	if body.Summary.Generations != 3 || body.Summary.Credits != 12 || body.Summary.ComputeSeconds != 7.5 {
		t.Fatalf("summary %+v", body.Summary)
	}
	if len(body.Records) != 3 || body.Records[0].JobID != "jan-3" || body.Records[2].JobID != "jan-1" {
		t.Fatalf("records %+v", body.Records)
	}
	// RFC 3339 bounds; to is exclusive.
	body = usageBody{}
	s.do(t, http.MethodGet, "/v1/usage?from=2025-01-15T10:30:00Z&to=2025-02-01T00:00:00Z", token, nil).decode(t, &body)
	if len(body.Records) != 2 || body.Records[0].JobID != "jan-3" || body.Summary.Credits != 9 {
		t.Fatalf("rfc3339 window: %+v", body)
	}
	// Paging: limit 2, then before.
	body = usageBody{}
	s.do(t, http.MethodGet, "/v1/usage?from=2025-01-01&to=2025-03-01&limit=2", token, nil).decode(t, &body)
	if len(body.Records) != 2 || body.NextBefore == nil || body.Summary.Generations != 4 {
		t.Fatalf("page 1 %+v", body)
	}
	next := usageBody{}
	s.do(t, http.MethodGet, "/v1/usage?from=2025-01-01&to=2025-03-01&limit=2&before="+*body.NextBefore, token, nil).decode(t, &next)
	if len(next.Records) != 2 || next.Records[0].JobID != "jan-2" || next.Records[1].JobID != "jan-1" {
		t.Fatalf("page 2 %+v", next.Records)
	}
	// Only to: the month ending there.
	body = usageBody{}
	s.do(t, http.MethodGet, "/v1/usage?to=2025-02-01", token, nil).decode(t, &body)
	if !body.From.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) || body.Summary.Generations != 3 {
		t.Fatalf("to only: %+v", body)
	}
	// Default window is this month: nothing of 2025's January here.
	body = usageBody{}
	s.do(t, http.MethodGet, "/v1/usage", token, nil).decode(t, &body)
	now := time.Now().UTC()
	if !body.From.Equal(time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)) || len(body.Records) != 0 {
		t.Fatalf("default window %+v", body)
	}
	for _, rec := range next.Records {
		if rec.JobID == "other-jan" {
			t.Fatal("another user's usage leaked")
		}
	}
}

func testUsageBadFilters(t *testing.T, s *stack) {
	_, token := s.newUser(t, "free", 0)
	for _, tc := range []struct{ query, field string }{
		{"from=yesterday", "from"},
		{"to=2025-13-01", "to"},
		{"from=2025-02-01&to=2025-01-01", "to"},
		{"from=2025-01-01&to=2025-01-01", "to"},
		{"from=2024-01-01&to=2025-01-03", "to"},
		{"limit=0", "limit"},
		{"before=soon", "before"},
		{"to=9999-12-31T23:59:59-23:00", "to"}, // year 10000 in UTC
	} {
		for _, path := range []string{"/v1/usage?", "/v1/usage.csv?"} {
			if path == "/v1/usage.csv?" && (tc.field == "limit" || tc.field == "before") {
				continue // the export does not page
			}
			p := expectProblem(t, s.do(t, http.MethodGet, path+tc.query, token, nil), http.StatusBadRequest)
			if len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
				t.Fatalf("%s%s: errors %+v, want field %s", path, tc.query, p.Errors, tc.field)
			}
		}
	}
	// 366 days is allowed (a leap year).
	if r := s.do(t, http.MethodGet, "/v1/usage?from=2024-01-01&to=2025-01-01", token, nil); r.status != http.StatusOK {
		t.Fatalf("leap year: %d %s", r.status, r.body)
	}
	expectProblem(t, s.do(t, http.MethodGet, "/v1/usage", "", nil), http.StatusUnauthorized)
}

func testUsageCSV(t *testing.T, s *stack) {
	u, token := s.newUser(t, "pro", 0)
	other, _ := s.newUser(t, "pro", 0)
	at := time.Date(2025, 5, 2, 8, 0, 0, 0, time.UTC)
	addUsage(t, s, u.ID, "may-1", 2, at)
	addUsage(t, s, u.ID, "may-2", 3, at.Add(time.Minute))
	addUsage(t, s, other.ID, "other-may", 9, at)

	r := s.do(t, http.MethodGet, "/v1/usage.csv?from=2025-05-01&to=2025-06-01", token, nil)
	if r.status != http.StatusOK {
		t.Fatalf("csv: %d %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	if cd := r.header.Get("Content-Disposition"); cd != `attachment; filename="usage-2025-05-01-2025-06-01.csv"` {
		t.Fatalf("content disposition %q", cd)
	}
	rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"job_id", "action_type", "model", "gpu_tier", "steps", "width", "height", "batch_size", "compute_seconds", "credits", "created_at"},
		{"may-2", "generation", "sdxl", "a10g", "30", "1024", "1024", "1", "2.5", "3", "2025-05-02T08:01:00Z"},
		{"may-1", "generation", "sdxl", "a10g", "30", "1024", "1024", "1", "2.5", "2", "2025-05-02T08:00:00Z"},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %q", rows)
	}
	for i := range want {
		for j := range want[i] {
			if rows[i][j] != want[i][j] {
				t.Fatalf("row %d: %q, want %q", i, rows[i], want[i])
			}
		}
	}
	// An empty range is still a file with its header.
	r = s.do(t, http.MethodGet, "/v1/usage.csv?from=2020-01-01&to=2020-02-01", token, nil)
	if rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll(); err != nil || len(rows) != 1 {
		t.Fatalf("empty range: %q %v", rows, err)
	}
}
