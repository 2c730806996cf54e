package store_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

func TestLowBalanceNoticeOncePerCrossing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)

	n, ok, err := s.ClaimLowBalanceNotice(ctx, u.ID, 7)
	if err != nil || !ok {
		t.Fatalf("first claim: ok=%v err=%v", ok, err)
	}
	if n.Email != u.Email || n.Kind != store.NoticeLowBalance || n.Balance != 7 || n.UserID != u.ID {
		t.Fatalf("notice %+v", n)
	}
	// Still low: no second notice for the same episode.
	if _, ok, err := s.ClaimLowBalanceNotice(ctx, u.ID, 3); err != nil || ok {
		t.Fatalf("second claim in the same episode: ok=%v err=%v", ok, err)
	}
	if err := s.MarkNoticeSent(ctx, n.ID, nil); err != nil {
		t.Fatal(err)
	}
	// Back above the threshold, then down again: a new crossing.
	if err := s.RearmLowBalanceNotice(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.ClaimLowBalanceNotice(ctx, u.ID, 5); err != nil || !ok {
		t.Fatalf("claim after re-arm: ok=%v err=%v", ok, err)
	}
	ns, err := s.Notices(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 2 || ns[1].SentAt == nil || ns[0].SentAt != nil {
		t.Fatalf("notices %+v, want two, the older marked sent", ns)
	}
	// Re-arming a user never notified is harmless.
	if err := s.RearmLowBalanceNotice(ctx, newUser(t, s).ID); err != nil {
		t.Fatal(err)
	}
}

// Two settles racing for the same user claim one notice between them.
func TestLowBalanceNoticeConcurrentClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	for range 5 {
		u := newUser(t, s)
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, ok, err := s.ClaimLowBalanceNotice(ctx, u.ID, 4)
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d claims won, want 1", wins.Load())
		}
		if ns, err := s.Notices(ctx, u.ID); err != nil || len(ns) != 1 {
			t.Fatalf("notices %+v %v, want one", ns, err)
		}
	}
}

// Concurrent real settles that leave the user low record one notice.
func TestLowBalanceAfterConcurrentSettles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	grant(t, s, u.ID, 12, time.Hour)
	jobs := []string{uuid.NewString(), uuid.NewString()}
	for _, j := range jobs {
		if _, err := s.Hold(ctx, store.HoldInput{JobID: j, UserID: u.ID, Amount: 3}); err != nil {
			t.Fatal(err)
		}
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Settle(ctx, j, 3); err != nil {
				t.Error(err)
				return
			}
			b, err := s.Balance(ctx, u.ID)
			if err != nil {
				t.Error(err)
				return
			}
			if b.Available < 10 {
				if _, ok, err := s.ClaimLowBalanceNotice(ctx, u.ID, b.Available); err != nil {
					t.Error(err)
				} else if ok {
					wins.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d notices claimed, want 1", wins.Load())
	}
}

func TestUsageRecordsPaging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u, other := newUser(t, s), newUser(t, s)
	at := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	// Three records share a timestamp: the cursor must neither skip nor repeat them.
	for i, ts := range []time.Time{at, at, at, at.Add(time.Hour), at.AddDate(0, 1, 0)} {
		if _, err := s.Pool().Exec(ctx, `
			INSERT INTO usage_records (user_id, job_id, action_type, model_used, gpu_tier, steps, width, height,
			                           batch_size, compute_seconds, credits_consumed, created_at)
			VALUES ($1, $2, 'generation', 'sd-1.5', 't4', 20, 512, 512, 1, 1.5, $3, $4)`,
			u.ID, uuid.NewString(), i+1, ts); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, `
		INSERT INTO usage_records (user_id, job_id, action_type, model_used, gpu_tier, steps, width, height,
		                           batch_size, compute_seconds, credits_consumed, created_at)
		VALUES ($1, 'other', 'generation', 'sd-1.5', 't4', 20, 512, 512, 1, 1.5, 100, $2)`, other.ID, at); err != nil {
		t.Fatal(err)
	}
	from, to := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	var cur store.UsageCursor
	for {
		recs, err := s.UsageRecords(ctx, u.ID, from, to, cur, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if seen[r.ID] {
				t.Fatalf("record %s repeated", r.ID)
			}
			seen[r.ID] = true
		}
		if len(recs) < 2 {
			break
		}
		cur = store.UsageCursor{Before: recs[len(recs)-1].CreatedAt, BeforeID: recs[len(recs)-1].ID}
	}
	if len(seen) != 4 {
		t.Fatalf("walked %d records in March, want 4", len(seen))
	}
	sum, err := s.UsageBetween(ctx, u.ID, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Generations != 4 || sum.Credits != 1+2+3+4 {
		t.Fatalf("summary %+v", sum)
	}
}
