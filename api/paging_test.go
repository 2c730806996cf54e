package api_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
)

// pageAll follows next_before from the first page of path (a list route
// with ?limit=) to the last, and returns every page's names or ids in order
// and the number of pages.
func pageAll[T any](t *testing.T, s *stack, token, path string, items func(page T) ([]string, *string)) ([]string, int) {
	t.Helper()
	var all []string
	q := path
	for pages := 1; pages <= 20; pages++ {
		r := s.do(t, http.MethodGet, q, token, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", q, r.status, r.body)
		}
		var page T
		r.decode(t, &page)
		got, next := items(page)
		all = append(all, got...)
		if next == nil {
			return all, pages
		}
		q = path + "&before=" + url.QueryEscape(*next)
	}
	t.Fatalf("GET %s: more than 20 pages", path)
	return nil, 0
}

type imagePage struct {
	Images     []api.ImageView `json:"images"`
	NextBefore *string         `json:"next_before"`
}

func imageNames(p imagePage) ([]string, *string) {
	names := make([]string, len(p.Images))
	for i, im := range p.Images {
		names[i] = im.Name
	}
	return names, p.NextBefore
}

type generationPage struct {
	Generations []api.GenerationView `json:"generations"`
	NextBefore  *string              `json:"next_before"`
}

func generationIDs(p generationPage) ([]string, *string) {
	ids := make([]string, len(p.Generations))
	for i, g := range p.Generations {
		ids[i] = g.ID
	}
	return ids, p.NextBefore
}

// Paging through images lists each once, in order, though a page ends in
// the middle of a batch (a batch's images share their created_at); jobs
// created in the same instant page the same way. An RFC 3339 time still
// works as ?before= (strictly older items), and a cursor the API did not
// make is refused. Uploads, webhook deliveries, usage records and admin's
// users page the same way through rows sharing an instant.
func testPaging(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	older := s.completedJob(t, token, 3, catalog.ModelSD15)
	newer := s.completedJob(t, token, 5, catalog.ModelSD15)
	var want []string // newest first; a batch in its order
	for _, g := range []api.GenerationView{newer, older} {
		for _, im := range g.Images {
			want = append(want, im.Name)
		}
	}

	got, pages := pageAll(t, s, token, "/v1/images?limit=3", imageNames)
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("paged images in %d pages = %v, want %v in 3", pages, got, want)
	}

	// The form ?before= took before cursors: strictly older images.
	at := newer.Images[0].CreatedAt.UTC().Format(time.RFC3339Nano)
	var page imagePage
	s.do(t, http.MethodGet, "/v1/images?before="+url.QueryEscape(at), token, nil).decode(t, &page)
	if names, _ := imageNames(page); !slices.Equal(names, want[len(newer.Images):]) {
		t.Errorf("images before %s = %v, want the older job's", at, names)
	}
	for _, bad := range []string{"yesterday", "bm90IGEgY3Vyc29y", "MjAzMC0wMS0wMVQwMDowMDowMFogbm90LWEtdXVpZA"} {
		expectFieldProblem(t, s.do(t, http.MethodGet, "/v1/generations?before="+bad, token, nil), "before")
	}
	expectFieldProblem(t, s.do(t, http.MethodGet, "/v1/images?before=%21", token, nil), "before")
	// The earliest time there is, as a time or in a cursor, is refused
	// rather than read as "from now" (which listed the first page).
	zeroCursor := base64.RawURLEncoding.EncodeToString([]byte("0001-01-01T00:00:00Z " + uuid.NewString()))
	for _, path := range []string{"/v1/generations?before=0001-01-01T00:00:00Z", "/v1/images?before=0001-01-01T00:00:00Z",
		"/v1/generations?before=" + zeroCursor} {
		expectFieldProblem(t, s.do(t, http.MethodGet, path, token, nil), "before")
	}

	// Two jobs admitted in the same microsecond.
	if _, err := s.store.Pool().Exec(context.Background(),
		`UPDATE generations SET created_at = $2 WHERE id = $1`, newer.ID, older.CreatedAt); err != nil {
		t.Fatal(err)
	}
	ids, _ := pageAll(t, s, token, "/v1/generations?limit=1", generationIDs)
	slices.Sort(ids)
	wantIDs := []string{newer.ID, older.ID}
	slices.Sort(wantIDs)
	if !slices.Equal(ids, wantIDs) {
		t.Errorf("paged jobs one at a time = %v, want %v once each", ids, wantIDs)
	}

	t.Run("uploads", func(t *testing.T) { testTiedUploads(t, s) })
	t.Run("webhook deliveries", func(t *testing.T) { testTiedDeliveries(t, s) })
	t.Run("usage", func(t *testing.T) { testTiedUsage(t, s) })
	t.Run("admin users", func(t *testing.T) { testTiedUsers(t, s) })
}

// tieInstant is the created_at the tie tests give their rows: one
// microsecond (Postgres' resolution), so that every page boundary but the
// last falls between rows of the same instant.
var tieInstant = time.Date(2025, 6, 15, 12, 0, 0, 123456000, time.UTC)

// tie gives the rows of table with these ids one created_at.
func (s *stack) tie(t *testing.T, table string, ids []string) {
	t.Helper()
	if _, err := s.store.Pool().Exec(context.Background(),
		`UPDATE `+table+` SET created_at = $2 WHERE id = ANY($1::uuid[])`, ids, tieInstant); err != nil {
		t.Fatalf("tie %s: %v", table, err)
	}
}

// expectEachOnce fails unless got holds the ids of want, each once (the
// order among rows of one instant is the list's own).
func expectEachOnce(t *testing.T, what string, got, want []string, pages int) {
	t.Helper()
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) || pages < 2 {
		t.Errorf("%s paged in %d pages = %v, want %v once each over several pages", what, pages, got, want)
	}
}

type uploadPage struct {
	Uploads    []api.UploadView `json:"uploads"`
	NextBefore *string          `json:"next_before"`
}

// Uploads made in one instant, paged two at a time, each come once.
func testTiedUploads(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 0)
	var want []string
	for range 5 {
		want = append(want, s.uploaded(t, token, picture(32, 32)).ID)
	}
	s.tie(t, "uploads", want)
	got, pages := pageAll(t, s, token, "/v1/uploads?limit=2", func(p uploadPage) ([]string, *string) {
		ids := make([]string, len(p.Uploads))
		for i, u := range p.Uploads {
			ids[i] = u.ID
		}
		return ids, p.NextBefore
	})
	expectEachOnce(t, "uploads", got, want, pages)
}

type deliveryPage struct {
	Deliveries []api.WebhookDeliveryView `json:"deliveries"`
	NextBefore *string                   `json:"next_before"`
}

func deliveryIDs(p deliveryPage) ([]string, *string) {
	ids := make([]string, len(p.Deliveries))
	for i, d := range p.Deliveries {
		ids[i] = d.ID
	}
	return ids, p.NextBefore
}

// One event delivered to several endpoints at once, and several events
// delivered to one endpoint at once: both delivery lists, paged two at a
// time, list each delivery once.
func testTiedDeliveries(t *testing.T, s *stack) {
	u, token := s.newUser(t, "pro", 0)
	ctx, pool := context.Background(), s.store.Pool()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	endpoints := []string{uuid.NewString(), uuid.NewString()}
	for _, ep := range endpoints {
		exec(`INSERT INTO webhook_endpoints (id, user_id, url, secret) VALUES ($1, $2, 'https://example.com/hook', 'whsec_test')`, ep, u.ID)
	}
	// Delivered already, so that no worker picks them up.
	deliver := func(event, endpoint string) string {
		t.Helper()
		id := uuid.NewString()
		exec(`INSERT INTO webhook_deliveries (id, user_id, event_id, endpoint_id, url, status, created_at, finished_at)
			VALUES ($1, $2, $3, $4, 'https://example.com/hook', 'delivered', $5, $5)`, id, u.ID, event, endpoint, tieInstant)
		return id
	}
	var all, toFirst []string
	for i := range 3 {
		ev := uuid.NewString()
		exec(`INSERT INTO webhook_events (id, user_id, type, payload) VALUES ($1, $2, 'credits.low', $3)`, ev, u.ID,
			fmt.Sprintf(`{"id": %q, "type": "credits.low", "timestamp": "2025-06-15T12:00:00Z", "data": {"available": %d,
			"threshold": 10, "links": {"credits": "/v1/credits", "plans": "/v1/plans"}}}`, ev, i))
		for j, ep := range endpoints {
			id := deliver(ev, ep)
			all = append(all, id)
			if j == 0 {
				toFirst = append(toFirst, id)
			}
		}
	}
	got, pages := pageAll(t, s, token, "/v1/webhook-deliveries?limit=2", deliveryIDs)
	expectEachOnce(t, "deliveries", got, all, pages)
	got, pages = pageAll(t, s, token, "/v1/webhook-endpoints/"+endpoints[0]+"/deliveries?limit=2", deliveryIDs)
	expectEachOnce(t, "one endpoint's deliveries", got, toFirst, pages)
}

type usagePage struct {
	Records []struct {
		JobID string `json:"job_id"`
	} `json:"records"`
	NextBefore *string `json:"next_before"`
}

// Usage records of one instant, paged two at a time, each come once.
func testTiedUsage(t *testing.T, s *stack) {
	u, token := s.newUser(t, "pro", 0)
	var want []string
	for range 5 {
		job := uuid.NewString()
		if _, err := s.store.Pool().Exec(context.Background(), `INSERT INTO usage_records
			(user_id, job_id, action_type, model_used, gpu_tier, steps, width, height, batch_size,
			 compute_seconds, credits_consumed, created_at)
			VALUES ($1, $2, 'generate', 'sd15', 'standard', 20, 512, 512, 1, 1.5, 1, $3)`, u.ID, job, tieInstant); err != nil {
			t.Fatal(err)
		}
		want = append(want, job)
	}
	got, pages := pageAll(t, s, token, "/v1/usage?from=2025-06-01&to=2025-07-01&limit=2", func(p usagePage) ([]string, *string) {
		jobs := make([]string, len(p.Records))
		for i, r := range p.Records {
			jobs[i] = r.JobID
		}
		return jobs, p.NextBefore
	})
	expectEachOnce(t, "usage records", got, want, pages)
}

type userPage struct {
	Users      []api.AdminUserListItem `json:"users"`
	NextBefore *string                 `json:"next_before"`
}

// Users signed up in one instant, paged two at a time, each come once.
func testTiedUsers(t *testing.T, s *stack) {
	_, adminToken := s.newAdmin(t, "free")
	tag := "tie-" + uuid.NewString()[:8] + "-"
	var want []string
	for range 5 {
		u, _ := s.newUser(t, "free", 0)
		want = append(want, u.ID)
	}
	// A shared tag in their emails lists only these users.
	if _, err := s.store.Pool().Exec(context.Background(),
		`UPDATE users SET email = $2 || email WHERE id = ANY($1::uuid[])`, want, tag); err != nil {
		t.Fatal(err)
	}
	s.tie(t, "users", want)
	got, pages := pageAll(t, s, adminToken, "/v1/admin/users?limit=2&email="+tag, func(p userPage) ([]string, *string) {
		ids := make([]string, len(p.Users))
		for i, u := range p.Users {
			ids[i] = u.ID
		}
		return ids, p.NextBefore
	})
	expectEachOnce(t, "users", got, want, pages)
}
