package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

// The first sign-in creates the user on the free plan; repeated sign-ins
// with the same claims write nothing (last_login_at stays); changed claims
// or a sign-in 10 minutes later refresh the row.
func TestSignInWritesOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	s := store.New(testenv.Postgres(t))
	ctx := context.Background()
	sub := "sub-" + uuid.NewString()
	email := sub + "@example.com"
	lastLogin := func() time.Time {
		var at time.Time
		if err := s.Pool().QueryRow(ctx, `SELECT last_login_at FROM users WHERE cognito_sub = $1`, sub).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	first, err := s.SignIn(ctx, email, "Ada", sub)
	if err != nil || !first.Created {
		t.Fatalf("first sign-in %+v, %v: want a new user", first, err)
	}
	at := lastLogin()
	again, err := s.SignIn(ctx, email, "Ada", sub)
	if err != nil || again.Created || again.ID != first.ID || !lastLogin().Equal(at) {
		t.Fatalf("repeat sign-in %+v, %v (last login %v -> %v): want the same user, nothing written", again, err, at, lastLogin())
	}
	renamed, err := s.SignIn(ctx, email, "Ada Lovelace", sub)
	if err != nil || renamed.Name != "Ada Lovelace" || renamed.ID != first.ID || renamed.Created {
		t.Fatalf("renamed sign-in %+v, %v", renamed, err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE users SET last_login_at = now() - interval '11 minutes' WHERE cognito_sub = $1`, sub); err != nil {
		t.Fatal(err)
	}
	stale := lastLogin()
	if _, err := s.SignIn(ctx, email, "Ada Lovelace", sub); err != nil || !lastLogin().After(stale) {
		t.Fatalf("sign-in after 11 minutes: %v, last login %v -> %v: want it refreshed", err, stale, lastLogin())
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE users SET is_active = FALSE WHERE cognito_sub = $1`, sub); err != nil {
		t.Fatal(err)
	}
	if u, err := s.SignIn(ctx, email, "Ada Lovelace", sub); err != nil || u.Active {
		t.Fatalf("suspended user signs in as %+v, %v: want Active false", u, err)
	}
}

// BenchmarkSignIn measures an authenticated request's sign-in of a known
// user with unchanged claims: SignIn (one read) against the upsert it used
// to start with, in the same run.
//
//	go test -run '^$' -bench SignIn -benchtime 2000x ./internal/store/
func BenchmarkSignIn(b *testing.B) {
	s := store.New(testenv.Postgres(b))
	ctx := context.Background()
	sub := "sub-" + uuid.NewString()
	email := sub + "@example.com"
	if _, err := s.SignIn(ctx, email, "Bench", sub); err != nil {
		b.Fatal(err)
	}
	b.Run("upsert-first", func(b *testing.B) {
		for b.Loop() {
			var id string
			err := s.Pool().QueryRow(ctx, `
				INSERT INTO users (email, name, cognito_sub, last_login_at) VALUES ($1, $2, $3, now())
				ON CONFLICT (cognito_sub) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, last_login_at = now()
				WHERE users.email <> EXCLUDED.email OR users.name <> EXCLUDED.name
				   OR users.last_login_at IS NULL OR users.last_login_at < now() - interval '10 minutes'
				RETURNING id`, email, "Bench", sub).Scan(&id)
			if err != nil {
				// No row: unchanged claims; the old path then read the user.
				if _, err := s.Pool().Exec(ctx, `SELECT id FROM users WHERE cognito_sub = $1`, sub); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("read-first", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.SignIn(ctx, email, "Bench", sub); err != nil {
				b.Fatal(err)
			}
		}
	})
}
