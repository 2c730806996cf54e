package api_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
)

// TestAdmin needs the server to register the admin routes
// (RegisterAdminRoutes).
func TestAdmin(t *testing.T) {
	s := newStack(t, 5*time.Millisecond)
	t.Run("non-admins are refused", func(t *testing.T) { testAdminOnly(t, s) })
	t.Run("grant credits", func(t *testing.T) { testAdminGrant(t, s) })
	t.Run("grant bad input", func(t *testing.T) { testAdminGrantBadInput(t, s) })
	t.Run("list and detail", func(t *testing.T) { testAdminUsers(t, s) })
	t.Run("suspend and reactivate", func(t *testing.T) { testAdminSuspend(t, s) })
}

// newAdmin makes a user and promotes them the way an operator would, in the
// database.
func (s *stack) newAdmin(t *testing.T, plan string) (store.User, string) {
	t.Helper()
	u, token := s.newUser(t, plan, 0)
	if _, err := s.store.Pool().Exec(context.Background(), `UPDATE users SET role = 'admin' WHERE id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	return u, token
}

type adminRoute struct{ method, path string }

func adminRoutes(id string) []adminRoute {
	return []adminRoute{
		{http.MethodPost, "/v1/admin/grants"},
		{http.MethodGet, "/v1/admin/users"},
		{http.MethodGet, "/v1/admin/users/" + id},
		{http.MethodGet, "/v1/admin/users/not-a-uuid"},
		{http.MethodPost, "/v1/admin/users/" + id + "/suspend"},
		{http.MethodPost, "/v1/admin/users/" + id + "/reactivate"},
	}
}

func testAdminOnly(t *testing.T, s *stack) {
	u, token := s.newUser(t, "pro", 10)
	admin, adminToken := s.newAdmin(t, "pro")
	// An admin's API key is refused too: keys are for scripts, not for
	// minting credits.
	key := createAPIKey(t, s, adminToken, map[string]any{"name": "ci"}).Key

	var first problemBody
	for _, caller := range []string{"Bearer " + token, "Bearer " + key, "bearer " + key} {
		for _, rt := range adminRoutes(admin.ID) {
			p := expectProblem(t, s.do(t, rt.method, rt.path, "", map[string]any{"email": u.Email, "credits": 5, "reason": "x"},
				"Authorization", caller), http.StatusForbidden)
			if p.Type != "https://easel.dev/problems/admin-only" {
				t.Fatalf("%s %s: problem %+v", rt.method, rt.path, p)
			}
			if first.Type == "" {
				first = p
			}
			if p.Title != first.Title || p.Detail != first.Detail {
				t.Fatalf("%s %s answered %+v, %s answered %+v", rt.method, rt.path, p, adminRoutes(admin.ID)[0].path, first)
			}
		}
	}
	// Nothing happened on the user's behalf.
	if c := s.credits(t, token); c.Available != 10 {
		t.Fatalf("credits after refused grants = %+v", c)
	}
	if r := s.do(t, http.MethodGet, "/v1/me", adminToken, nil); r.status != http.StatusOK {
		t.Fatalf("admin /v1/me after refused calls: %d %s", r.status, r.body)
	}
}

func testAdminGrant(t *testing.T, s *stack) {
	u, token := s.newUser(t, "free", 3)
	admin, adminToken := s.newAdmin(t, "free")

	body := map[string]any{"email": u.Email, "credits": 400, "reason": "beta tester"}
	r := s.do(t, http.MethodPost, "/v1/admin/grants", adminToken, body, "Idempotency-Key", "grant-"+u.ID)
	if r.status != http.StatusCreated {
		t.Fatalf("grant: %d %s", r.status, r.body)
	}
	var g api.AdminGrantView
	r.decode(t, &g)
	if g.UserID != u.ID || g.AdminUserID != admin.ID || g.Credits != 400 || g.Reason != "beta tester" || g.CreditID == nil ||
		g.ValidUntil.Sub(g.ValidFrom) != 30*24*time.Hour {
		t.Fatalf("grant %+v", g)
	}

	var credits struct {
		Available int
		Grants    []api.GrantView
	}
	s.do(t, http.MethodGet, "/v1/credits", token, nil).decode(t, &credits)
	found := false
	for _, cg := range credits.Grants {
		found = found || cg.ID == *g.CreditID && cg.Source == store.AdminGrantSource && cg.Total == 400
	}
	if credits.Available != 403 || !found {
		t.Fatalf("user's credits after the grant = %+v, want 403 available and grant %s", credits, *g.CreditID)
	}

	// A retry with the same key returns the first grant and grants nothing.
	r = s.do(t, http.MethodPost, "/v1/admin/grants", adminToken, body, "Idempotency-Key", "grant-"+u.ID)
	var again api.AdminGrantView
	if r.status != http.StatusOK {
		t.Fatalf("retried grant: %d %s", r.status, r.body)
	}
	r.decode(t, &again)
	if again.ID != g.ID || *again.CreditID != *g.CreditID {
		t.Fatalf("retry gave %+v, want %+v", again, g)
	}
	if c := s.credits(t, token); c.Available != 403 {
		t.Fatalf("credits after a retried grant = %+v", c)
	}
	// The same key for a different grant is refused.
	body["credits"] = 401
	expectProblem(t, s.do(t, http.MethodPost, "/v1/admin/grants", adminToken, body, "Idempotency-Key", "grant-"+u.ID), http.StatusConflict)

	// By id, with an explicit window.
	from, until := time.Now().Add(-time.Hour).UTC().Truncate(time.Second), time.Now().Add(48*time.Hour).UTC().Truncate(time.Second)
	r = s.do(t, http.MethodPost, "/v1/admin/grants", adminToken, map[string]any{"user_id": u.ID, "credits": 7, "reason": "sorry",
		"valid_from": from.Format(time.RFC3339), "valid_until": until.Format(time.RFC3339)})
	if r.status != http.StatusCreated {
		t.Fatalf("grant by id: %d %s", r.status, r.body)
	}
	r.decode(t, &g)
	if !g.ValidFrom.Equal(from) || !g.ValidUntil.Equal(until) {
		t.Fatalf("grant window %v..%v, want %v..%v", g.ValidFrom, g.ValidUntil, from, until)
	}
	if c := s.credits(t, token); c.Available != 410 {
		t.Fatalf("credits after the second grant = %+v", c)
	}

	expectProblem(t, s.do(t, http.MethodPost, "/v1/admin/grants", adminToken,
		map[string]any{"email": "nobody-" + u.ID + "@example.com", "credits": 1, "reason": "x"}), http.StatusNotFound)
	expectProblem(t, s.do(t, http.MethodPost, "/v1/admin/grants", adminToken,
		map[string]any{"user_id": uuid.NewString(), "credits": 1, "reason": "x"}), http.StatusNotFound)
}

func testAdminGrantBadInput(t *testing.T, s *stack) {
	u, _ := s.newUser(t, "free", 0)
	_, adminToken := s.newAdmin(t, "free")
	long := make([]byte, 501)
	for i := range long {
		long[i] = 'a'
	}
	cases := []struct {
		name  string
		body  any
		field string
	}{
		{"no target", map[string]any{"credits": 1, "reason": "x"}, "user_id"},
		{"both targets", map[string]any{"user_id": u.ID, "email": u.Email, "credits": 1, "reason": "x"}, "user_id"},
		{"bad user id", map[string]any{"user_id": "42", "credits": 1, "reason": "x"}, "user_id"},
		{"no credits", map[string]any{"email": u.Email, "reason": "x"}, "credits"},
		{"too many credits", map[string]any{"email": u.Email, "credits": 1_000_001, "reason": "x"}, "credits"},
		{"credits not a number", map[string]any{"email": u.Email, "credits": "5", "reason": "x"}, "credits"},
		{"no reason", map[string]any{"email": u.Email, "credits": 1}, "reason"},
		{"long reason", map[string]any{"email": u.Email, "credits": 1, "reason": string(long)}, "reason"},
		{"bad valid_from", map[string]any{"email": u.Email, "credits": 1, "reason": "x", "valid_from": "tomorrow"}, "valid_from"},
		{"window backwards", map[string]any{"email": u.Email, "credits": 1, "reason": "x",
			"valid_from": "2030-01-02T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z"}, "valid_until"},
		{"unknown field", map[string]any{"email": u.Email, "credits": 1, "reason": "x", "plan": "pro"}, "plan"},
		// Past year 9999 in UTC no JSON answer could carry the grant.
		{"valid_until past year 9999", map[string]any{"email": u.Email, "credits": 1, "reason": "x",
			"valid_until": "9999-12-31T23:59:59-23:00"}, "valid_until"},
		{"valid_until in eleven years", map[string]any{"email": u.Email, "credits": 1, "reason": "x",
			"valid_until": time.Now().AddDate(11, 0, 0).UTC().Format(time.RFC3339)}, "valid_until"},
		{"valid_from before year 1", map[string]any{"email": u.Email, "credits": 1, "reason": "x",
			"valid_from": "0001-01-01T00:00:00+23:00", "valid_until": "2030-01-01T00:00:00Z"}, "valid_from"},
	}
	for _, tc := range cases {
		p := expectProblem(t, s.do(t, http.MethodPost, "/v1/admin/grants", adminToken, tc.body), http.StatusBadRequest)
		if len(p.Errors) == 0 || p.Errors[0].Field != tc.field {
			t.Errorf("%s: problem %+v, want a field error on %s", tc.name, p, tc.field)
		}
	}
	p := expectProblem(t, s.do(t, http.MethodPost, "/v1/admin/grants", adminToken,
		map[string]any{"email": u.Email, "credits": 1, "reason": "x"}, "Idempotency-Key", "has space"), http.StatusBadRequest)
	if len(p.Errors) == 0 || p.Errors[0].Field != "Idempotency-Key" {
		t.Errorf("bad key: problem %+v", p)
	}
	var n int
	if err := s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM credits WHERE user_id = $1`, u.ID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d credits rows after refused grants (%v)", n, err)
	}
}

func testAdminUsers(t *testing.T, s *stack) {
	u, userToken := s.newUser(t, "pro", 25)
	_, adminToken := s.newAdmin(t, "free")
	if r := s.do(t, http.MethodPost, "/v1/admin/grants", adminToken,
		map[string]any{"user_id": u.ID, "credits": 5, "reason": "detail test"}); r.status != http.StatusCreated {
		t.Fatalf("grant: %d %s", r.status, r.body)
	}

	var list struct {
		Users      []api.AdminUserListItem `json:"users"`
		NextBefore *string                 `json:"next_before"`
	}
	r := s.do(t, http.MethodGet, "/v1/admin/users?email="+url.QueryEscape(u.Email), adminToken, nil)
	if r.status != http.StatusOK {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	r.decode(t, &list)
	if len(list.Users) != 1 || list.Users[0].ID != u.ID || list.Users[0].Plan != "pro" || list.Users[0].CreditsAvailable != 30 ||
		!list.Users[0].IsActive || list.Users[0].Role != store.RoleUser || list.Users[0].CreatedAt.IsZero() || list.NextBefore != nil {
		t.Fatalf("filtered list %s", r.body)
	}
	// Paging: one at a time, newest first, following next_before.
	s.do(t, http.MethodGet, "/v1/admin/users?limit=1", adminToken, nil).decode(t, &list)
	if len(list.Users) != 1 || list.NextBefore == nil {
		t.Fatalf("first page %+v", list)
	}
	newest := list.Users[0]
	s.do(t, http.MethodGet, "/v1/admin/users?limit=1&before="+url.QueryEscape(*list.NextBefore), adminToken, nil).decode(t, &list)
	if len(list.Users) != 1 || list.Users[0].ID == newest.ID || !list.Users[0].CreatedAt.Before(newest.CreatedAt) {
		t.Fatalf("second page %+v after %+v", list, newest)
	}
	p := expectProblem(t, s.do(t, http.MethodGet, "/v1/admin/users?limit=0", adminToken, nil), http.StatusBadRequest)
	if len(p.Errors) == 0 || p.Errors[0].Field != "limit" {
		t.Fatalf("bad limit: %+v", p)
	}

	var detail struct {
		User    api.AdminUserView
		Plan    api.PlanView
		Credits struct {
			Available, Held, Granted int
			Grants                   []api.GrantView
		}
		Usage struct {
			Generations int
		}
		Storage struct {
			UsedBytes  int64 `json:"used_bytes"`
			QuotaBytes int64 `json:"quota_bytes"`
		}
		AdminGrants  []api.AdminGrantView `json:"admin_grants"`
		Subscription *api.SubscriptionView
		Jobs         []api.AdminJobView `json:"recent_generations"`
	}
	// One job, done, so that the administrator finds it and its workflow.
	r = s.do(t, http.MethodPost, "/v1/generations", userToken, map[string]any{
		"prompt": "admin detail", "model": "sd-1.5", "width": 256, "height": 256, "steps": 2})
	var job api.GenerationView
	r.decode(t, &job)
	s.waitGeneration(t, job.ID, userToken, terminal)
	r = s.do(t, http.MethodGet, "/v1/admin/users/"+u.ID, adminToken, nil)
	if r.status != http.StatusOK {
		t.Fatalf("detail: %d %s", r.status, r.body)
	}
	r.decode(t, &detail)
	if detail.User.ID != u.ID || detail.User.Email != u.Email || detail.Plan.Slug != "pro" || detail.Credits.Available != 29 ||
		detail.Credits.Granted != 29 || len(detail.Credits.Grants) != 2 || detail.Storage.QuotaBytes == 0 ||
		len(detail.AdminGrants) != 1 || detail.AdminGrants[0].Reason != "detail test" {
		t.Fatalf("detail %s", r.body)
	}
	if sub := detail.Subscription; sub == nil || sub.Plan != "pro" || sub.UserID != u.ID || sub.WorkflowID != "subscription/"+sub.ID {
		t.Fatalf("detail's subscription %s", r.body)
	}
	if len(detail.Jobs) != 1 || detail.Jobs[0].ID != job.ID || detail.Jobs[0].Status != "completed" ||
		detail.Jobs[0].WorkflowID != "generation/"+job.ID || detail.Jobs[0].CreditsSettled == nil || *detail.Jobs[0].CreditsSettled != 1 {
		t.Fatalf("detail's jobs %s", r.body)
	}
	expectProblem(t, s.do(t, http.MethodGet, "/v1/admin/users/"+uuid.NewString(), adminToken, nil), http.StatusNotFound)
	expectProblem(t, s.do(t, http.MethodGet, "/v1/admin/users/not-a-uuid", adminToken, nil), http.StatusNotFound)
}

func testAdminSuspend(t *testing.T, s *stack) {
	u, token := s.newUser(t, "pro", 100)
	admin, adminToken := s.newAdmin(t, "free")
	// A job under way when the account is frozen is canceled with it.
	r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{"prompt": "before the freeze",
		"width": 64, "height": 64, "steps": 150, "batch_size": 4}) // about 3 s of rendering
	var job api.GenerationView
	if r.decode(t, &job); r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}

	r = s.do(t, http.MethodPost, "/v1/admin/users/"+u.ID+"/suspend", adminToken, nil)
	var v api.AdminUserView
	if r.status != http.StatusOK {
		t.Fatalf("suspend: %d %s", r.status, r.body)
	}
	r.decode(t, &v)
	if v.ID != u.ID || v.IsActive {
		t.Fatalf("suspended %+v", v)
	}
	if p := expectProblem(t, s.do(t, http.MethodGet, "/v1/me", token, nil), http.StatusForbidden); p.Type != "https://easel.dev/problems/account-suspended" {
		t.Fatalf("suspended user's request: %+v", p)
	}

	r = s.do(t, http.MethodPost, "/v1/admin/users/"+u.ID+"/reactivate", adminToken, nil)
	if r.status != http.StatusOK {
		t.Fatalf("reactivate: %d %s", r.status, r.body)
	}
	r.decode(t, &v)
	if !v.IsActive {
		t.Fatalf("reactivated %+v", v)
	}
	if r := s.do(t, http.MethodGet, "/v1/me", token, nil); r.status != http.StatusOK {
		t.Fatalf("reactivated user's request: %d %s", r.status, r.body)
	}
	job = s.waitGeneration(t, job.ID, token, terminal)
	if job.Status != catalog.JobCanceled || job.CreditsSettled == nil || *job.CreditsSettled != 0 {
		t.Fatalf("the job under way at the suspension ended %s, settled %v; want canceled, nothing settled", job.Status, job.CreditsSettled)
	}
	if c := s.credits(t, token); c.Available != 100 || c.Held != 0 {
		t.Fatalf("credits after the suspension's cancel = %+v, want all 100 back", c)
	}

	if p := expectProblem(t, s.do(t, http.MethodPost, "/v1/admin/users/"+admin.ID+"/suspend", adminToken, nil), http.StatusConflict); p.Type != "https://easel.dev/problems/cannot-suspend-self" {
		t.Fatalf("self-suspend: %+v", p)
	}
	if r := s.do(t, http.MethodGet, "/v1/me", adminToken, nil); r.status != http.StatusOK {
		t.Fatalf("admin after refused self-suspend: %d %s", r.status, r.body)
	}
	expectProblem(t, s.do(t, http.MethodPost, "/v1/admin/users/"+uuid.NewString()+"/suspend", adminToken, nil), http.StatusNotFound)
	expectProblem(t, s.do(t, http.MethodPost, "/v1/admin/users/nope/reactivate", adminToken, nil), http.StatusNotFound)
}
