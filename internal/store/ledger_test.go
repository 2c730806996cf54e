package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

func newUser(t *testing.T, s *store.Store) store.User {
	t.Helper()
	id := uuid.NewString()
	u, err := s.UpsertUser(context.Background(), id+"@example.com", "Test User", "sub-"+id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func grant(t *testing.T, s *store.Store, userID string, amount int, validFor time.Duration) store.Grant {
	t.Helper()
	now := time.Now()
	g, err := s.Grant(context.Background(), store.GrantInput{UserID: userID, Amount: amount, Source: "test",
		ValidFrom: now.Add(-time.Minute), ValidUntil: now.Add(validFor)})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func balance(t *testing.T, s *store.Store, userID string) store.Balance {
	t.Helper()
	b, err := s.Balance(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHoldSettleRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	grant(t, s, u.ID, 100, time.Hour)

	job := uuid.NewString()
	h, err := s.Hold(ctx, store.HoldInput{JobID: job, UserID: u.ID, Amount: 30})
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != store.HoldPending || h.Amount != 30 {
		t.Fatalf("hold = %+v", h)
	}
	if b := balance(t, s, u.ID); b.Available != 70 || b.Held != 30 || b.Granted != 100 {
		t.Fatalf("after hold balance = %+v, want available 70 held 30", b)
	}
	// Holding the same job again is a no-op.
	if _, err := s.Hold(ctx, store.HoldInput{JobID: job, UserID: u.ID, Amount: 30}); err != nil {
		t.Fatal(err)
	}
	if b := balance(t, s, u.ID); b.Available != 70 {
		t.Fatalf("repeat hold changed balance: %+v", b)
	}
	// Settle at less than held; a replay changes nothing.
	for range 2 {
		h, err = s.Settle(ctx, job, 20)
		if err != nil {
			t.Fatal(err)
		}
	}
	if h.Status != store.HoldPosted || h.SettledAmount != 20 {
		t.Fatalf("settled hold = %+v", h)
	}
	if b := balance(t, s, u.ID); b.Available != 80 || b.Held != 0 || b.Granted != 80 {
		t.Fatalf("after settle balance = %+v, want 80 available", b)
	}
	// Releasing a posted hold leaves the money where it is.
	if h, err = s.Release(ctx, job); err != nil || h.Status != store.HoldPosted {
		t.Fatalf("release posted: %+v, %v", h, err)
	}

	job2 := uuid.NewString()
	if _, err := s.Hold(ctx, store.HoldInput{JobID: job2, UserID: u.ID, Amount: 50}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if h, err = s.Release(ctx, job2); err != nil || h.Status != store.HoldVoided {
			t.Fatalf("release: %+v, %v", h, err)
		}
	}
	if _, err := s.Settle(ctx, job2, 10); !errors.Is(err, store.ErrHoldVoided) {
		t.Fatalf("settle voided hold: err = %v, want ErrHoldVoided", err)
	}
	if b := balance(t, s, u.ID); b.Available != 80 {
		t.Fatalf("after release balance = %+v, want 80", b)
	}
}

func TestHoldRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	grant(t, s, u.ID, 10, time.Hour)

	_, err := s.Hold(ctx, store.HoldInput{JobID: uuid.NewString(), UserID: u.ID, Amount: 11})
	var short *store.InsufficientCreditsError
	if !errors.As(err, &short) || short.Needed != 11 || short.Available != 10 {
		t.Fatalf("hold over balance: err = %v, want InsufficientCreditsError{11, 10}", err)
	}
	if _, err := s.Hold(ctx, store.HoldInput{JobID: uuid.NewString(), UserID: u.ID, Amount: 2, MaxConcurrent: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Hold(ctx, store.HoldInput{JobID: uuid.NewString(), UserID: u.ID, Amount: 2, MaxConcurrent: 1})
	var busy *store.ConcurrencyLimitError
	if !errors.As(err, &busy) || busy.Limit != 1 || busy.Active != 1 {
		t.Fatalf("second concurrent hold: err = %v, want ConcurrencyLimitError", err)
	}
}

// Settling draws on the soonest-expiring grant first and spills into the next.
func TestSettleConsumesSoonestExpiringFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	late := grant(t, s, u.ID, 100, 30*24*time.Hour)
	soon := grant(t, s, u.ID, 10, time.Hour)

	job := uuid.NewString()
	if _, err := s.Hold(ctx, store.HoldInput{JobID: job, UserID: u.ID, Amount: 25}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Settle(ctx, job, 25); err != nil {
		t.Fatal(err)
	}
	grants, err := s.Grants(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]int{}
	for _, g := range grants {
		used[g.ID] = g.Used
	}
	if used[soon.ID] != 10 || used[late.ID] != 15 {
		t.Fatalf("used = soon %d, late %d; want 10 and 15", used[soon.ID], used[late.ID])
	}
}

// A settle larger than the soonest grant's remainder draws the grants in
// order of expiry, each giving what it has left, with one usage
// transaction per grant drawn and none for a grant it did not reach.
func TestSettleDrawsAcrossGrants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	first := grant(t, s, u.ID, 10, time.Hour)
	second := grant(t, s, u.ID, 5, 2*time.Hour)
	third := grant(t, s, u.ID, 100, 3*time.Hour)
	untouched := grant(t, s, u.ID, 50, 4*time.Hour)
	settle := func(amount int) string {
		t.Helper()
		job := uuid.NewString()
		if _, err := s.Hold(ctx, store.HoldInput{JobID: job, UserID: u.ID, Amount: amount}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Settle(ctx, job, amount); err != nil {
			t.Fatal(err)
		}
		return job
	}
	settle(4) // the first grant has 6 left
	job := settle(12)

	rows, err := s.Pool().Query(ctx, `SELECT credit_id::text, -amount FROM credit_transactions
		WHERE reference_id = $1 AND transaction_type = 'usage'`, job)
	if err != nil {
		t.Fatal(err)
	}
	drawn := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		drawn[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{first.ID: 6, second.ID: 5, third.ID: 1}
	if len(drawn) != len(want) || drawn[first.ID] != 6 || drawn[second.ID] != 5 || drawn[third.ID] != 1 {
		t.Fatalf("usage transactions by grant = %v, want %v (none from %s)", drawn, want, untouched.ID)
	}
	if b := balance(t, s, u.ID); b.Granted != 165-16 || b.Held != 0 {
		t.Fatalf("balance = %+v, want 149 granted and nothing held", b)
	}
}

// Expired grants do not count towards the balance.
func TestExpiredGrantsDoNotCount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	now := time.Now()
	if _, err := s.Grant(ctx, store.GrantInput{UserID: u.ID, Amount: 40, Source: "test",
		ValidFrom: now.Add(-48 * time.Hour), ValidUntil: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	grant(t, s, u.ID, 5, time.Hour)
	if b := balance(t, s, u.ID); b.Available != 5 {
		t.Fatalf("balance = %+v, want 5 (expired grant excluded)", b)
	}
}

func TestGrantIdempotentByReference(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	in := store.GrantInput{UserID: u.ID, Amount: 50, Source: "subscription", ValidFrom: time.Now().Add(-time.Minute),
		ValidUntil: time.Now().Add(time.Hour), ReferenceID: "sub_1/2026-11"}
	a, err := s.Grant(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Grant(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID {
		t.Fatalf("two grants for one reference: %s and %s", a.ID, b.ID)
	}
	if bal := balance(t, s, u.ID); bal.Available != 50 {
		t.Fatalf("balance = %+v, want 50", bal)
	}
}

// 64 concurrent holds against one user: exactly as many succeed as the
// balance allows, and the balance never goes negative.
//
// Sequential: its workers fill the test pool's 32 connections, and
// parallel pools that size could exhaust the server's connections, which
// every test process shares.
func TestConcurrentHoldsNeverOverspend(t *testing.T) {
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	grant(t, s, u.ID, 100, time.Hour)

	const workers, amount = 64, 7 // 100/7 = 14 holds fit
	var wg sync.WaitGroup
	var mu sync.Mutex
	var held []string
	refused := 0
	for range workers {
		wg.Go(func() {
			job := uuid.NewString()
			_, err := s.Hold(ctx, store.HoldInput{JobID: job, UserID: u.ID, Amount: amount})
			mu.Lock()
			defer mu.Unlock()
			var short *store.InsufficientCreditsError
			switch {
			case err == nil:
				held = append(held, job)
			case errors.As(err, &short):
				refused++
			default:
				t.Errorf("hold: %v", err)
			}
		})
	}
	wg.Wait()
	if len(held) != 100/amount || refused != workers-100/amount {
		t.Fatalf("%d holds succeeded and %d were refused; want %d and %d", len(held), refused, 100/amount, workers-100/amount)
	}
	// Settle them all concurrently: the ledger ends exactly at 100 - 14*7.
	for _, job := range held {
		wg.Go(func() {
			if _, err := s.Settle(ctx, job, amount); err != nil {
				t.Errorf("settle: %v", err)
			}
		})
	}
	wg.Wait()
	b := balance(t, s, u.ID)
	if want := 100 - len(held)*amount; b.Available != want || b.Held != 0 {
		t.Fatalf("final balance = %+v, want %d available and nothing held", b, want)
	}
	var txSum int
	if err := s.Pool().QueryRow(ctx, `SELECT COALESCE(SUM(amount), 0) FROM credit_transactions WHERE user_id = $1`, u.ID).Scan(&txSum); err != nil {
		t.Fatal(err)
	}
	if txSum != b.Available {
		t.Fatalf("transactions sum to %d, balance is %d", txSum, b.Available)
	}
}
