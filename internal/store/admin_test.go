package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

func newAdmin(t *testing.T, s *store.Store) store.User {
	t.Helper()
	u := newUser(t, s)
	if _, err := s.SetUserRole(context.Background(), u.ID, store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	return u
}

func adminGrantInput(admin, target store.User, credits int) store.AdminGrantInput {
	now := time.Now()
	return store.AdminGrantInput{AdminUserID: admin.ID, UserID: target.ID, Credits: credits,
		ValidFrom: now.Add(-time.Minute), ValidUntil: now.AddDate(0, 0, 30), Reason: "load test"}
}

func countRows(t *testing.T, s *store.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAdminGrantWritesAuditAndCredits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	admin, u := newAdmin(t, s), newUser(t, s)
	grant(t, s, u.ID, 5, time.Hour)

	in := adminGrantInput(admin, store.User{}, 250)
	in.Email = strings.ToUpper(u.Email) // addresses match regardless of case
	tg, g, err := s.AdminGrant(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if tg.AdminUserID != admin.ID || tg.TargetUserID != u.ID || tg.Credits != 250 || tg.CreditID != g.ID ||
		tg.Reason != "load test" || tg.Replayed {
		t.Fatalf("audit row %+v for grant %+v", tg, g)
	}
	if g.UserID != u.ID || g.Total != 250 || g.Source != store.AdminGrantSource {
		t.Fatalf("grant %+v", g)
	}
	if b := balance(t, s, u.ID); b.Available != 255 {
		t.Fatalf("balance %+v, want 255 available", b)
	}
	if n := countRows(t, s, `SELECT count(*) FROM credit_transactions WHERE credit_id = $1 AND transaction_type = 'grant'`, g.ID); n != 1 {
		t.Fatalf("%d grant transactions, want 1", n)
	}
	list, err := s.TestGrants(ctx, u.ID)
	if err != nil || len(list) != 1 || list[0].ID != tg.ID {
		t.Fatalf("test grants = %+v, %v", list, err)
	}
}

func TestAdminGrantIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	admin, u, other := newAdmin(t, s), newUser(t, s), newUser(t, s)

	in := adminGrantInput(admin, u, 100)
	in.IdempotencyKey = "retry-1"
	tg1, g1, err := s.AdminGrant(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	in.ValidFrom, in.ValidUntil = in.ValidFrom.Add(time.Second), in.ValidUntil.Add(time.Second) // a retry's defaults move
	tg2, g2, err := s.AdminGrant(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if tg2.ID != tg1.ID || g2.ID != g1.ID || !tg2.Replayed {
		t.Fatalf("retry gave %+v / %+v, want %+v / %+v replayed", tg2, g2, tg1, g1)
	}
	if b := balance(t, s, u.ID); b.Available != 100 {
		t.Fatalf("balance %+v after a retried grant, want 100", b)
	}
	if n := countRows(t, s, `SELECT count(*) FROM test_plan_grants WHERE target_user_id = $1`, u.ID); n != 1 {
		t.Fatalf("%d audit rows, want 1", n)
	}

	// The same key for another user or amount is another request.
	for _, changed := range []store.AdminGrantInput{adminGrantInput(admin, other, 100), adminGrantInput(admin, u, 101)} {
		changed.IdempotencyKey = "retry-1"
		if _, _, err := s.AdminGrant(ctx, changed); !errors.Is(err, store.ErrIdempotencyConflict) {
			t.Fatalf("reused key = %v, want ErrIdempotencyConflict", err)
		}
	}
	if b := balance(t, s, other.ID); b.Available != 0 {
		t.Fatalf("other user's balance %+v", b)
	}
}

func TestAdminGrantRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	admin, u := newAdmin(t, s), newUser(t, s)

	missing := adminGrantInput(admin, store.User{ID: uuid.NewString()}, 10)
	if _, _, err := s.AdminGrant(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user id = %v, want ErrNotFound", err)
	}
	byEmail := adminGrantInput(admin, store.User{}, 10)
	byEmail.Email = "nobody@example.com"
	if _, _, err := s.AdminGrant(ctx, byEmail); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown email = %v, want ErrNotFound", err)
	}
	if _, _, err := s.AdminGrant(ctx, adminGrantInput(u, admin, 10)); !errors.Is(err, store.ErrNotAdmin) {
		t.Fatalf("grant by a non-admin = %v, want ErrNotAdmin", err)
	}
	for _, bad := range []func(*store.AdminGrantInput){
		func(in *store.AdminGrantInput) { in.Credits = 0 },
		func(in *store.AdminGrantInput) { in.Credits = store.MaxAdminGrantCredits + 1 },
		func(in *store.AdminGrantInput) { in.Reason = " " },
		func(in *store.AdminGrantInput) { in.ValidUntil = in.ValidFrom },
	} {
		in := adminGrantInput(admin, u, 10)
		bad(&in)
		if _, _, err := s.AdminGrant(ctx, in); err == nil {
			t.Fatalf("grant %+v succeeded", in)
		}
	}
	if n := countRows(t, s, `SELECT count(*) FROM credits WHERE user_id = $1`, u.ID); n != 0 {
		t.Fatalf("%d credits rows after refused grants", n)
	}
}

func TestAdminUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	admin, u := newAdmin(t, s), newUser(t, s)
	grant(t, s, u.ID, 42, time.Hour)

	list, err := s.AdminListUsers(ctx, store.AdminUserFilter{Email: strings.ToUpper(u.Email[:13])})
	if err != nil || len(list) != 1 || list[0].ID != u.ID || list[0].PlanSlug != store.FreePlan || list[0].Available != 42 {
		t.Fatalf("filtered list = %+v, %v", list, err)
	}
	// LIKE wildcards in the filter match only themselves.
	if list, err := s.AdminListUsers(ctx, store.AdminUserFilter{Email: "%"}); err != nil || len(list) != 0 {
		t.Fatalf("wildcard filter = %+v, %v", list, err)
	}
	all, err := s.AdminListUsers(ctx, store.AdminUserFilter{Page: store.Page{Limit: 1}})
	if err != nil || len(all) != 1 || all[0].ID != u.ID {
		t.Fatalf("first page = %+v, %v", all, err)
	}
	next, err := s.AdminListUsers(ctx, store.AdminUserFilter{Page: store.Page{Limit: 1, Before: all[0].CreatedAt}})
	if err != nil || len(next) != 1 || next[0].ID != admin.ID || next[0].Role != store.RoleAdmin {
		t.Fatalf("second page = %+v, %v", next, err)
	}

	first, err := s.FirstAdmin(ctx)
	if err != nil || first.ID != admin.ID {
		t.Fatalf("first admin = %+v, %v", first, err)
	}
	off, err := s.SetUserActive(ctx, u.ID, false)
	if err != nil || off.Active {
		t.Fatalf("suspend = %+v, %v", off, err)
	}
	if got, err := s.GetUser(ctx, u.ID); err != nil || got.Active {
		t.Fatalf("suspended user reads %+v, %v", got, err)
	}
	if on, err := s.SetUserActive(ctx, u.ID, true); err != nil || !on.Active {
		t.Fatalf("reactivate = %+v, %v", on, err)
	}
	if _, err := s.SetUserActive(ctx, uuid.NewString(), false); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("suspend unknown = %v, want ErrNotFound", err)
	}
	if _, err := s.SetUserRole(ctx, u.ID, "root"); err == nil {
		t.Fatal("unknown role accepted")
	}
}
