package api_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

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
// make is refused.
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
}
