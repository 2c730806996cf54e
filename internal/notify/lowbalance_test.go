package notify_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/notify"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

type recorder struct {
	mu   sync.Mutex
	sent []notify.Notice
	err  error
}

func (r *recorder) Send(_ context.Context, n notify.Notice) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, n)
	return r.err
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

// spend holds and settles amount credits, like one finished job.
func spend(t *testing.T, s *store.Store, userID string, amount int) {
	t.Helper()
	ctx := context.Background()
	job := uuid.NewString()
	if _, err := s.Hold(ctx, store.HoldInput{JobID: job, UserID: userID, Amount: amount}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Settle(ctx, job, amount); err != nil {
		t.Fatal(err)
	}
}

func give(t *testing.T, s *store.Store, userID string, amount int) {
	t.Helper()
	if _, err := s.Grant(context.Background(), store.GrantInput{UserID: userID, Amount: amount, Source: "test",
		ValidFrom: time.Now().Add(-time.Minute), ValidUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
}

func TestLowBalanceOncePerCrossing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	id := uuid.NewString()
	u, err := s.UpsertUser(ctx, id+"@example.com", "n", "sub-"+id)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	lb := &notify.LowBalance{Store: s, Sender: rec}
	give(t, s, u.ID, 15)

	spend(t, s, u.ID, 4) // 11: not low
	if n, err := lb.AfterSettle(ctx, u.ID); err != nil || n != nil {
		t.Fatalf("at 11: claimed=%v err=%v", n, err)
	}
	spend(t, s, u.ID, 3) // 8: crossing
	if n, err := lb.AfterSettle(ctx, u.ID); err != nil || n == nil || n.Balance != 8 || n.ID == "" {
		t.Fatalf("at 8: claimed=%+v err=%v", n, err)
	}
	spend(t, s, u.ID, 3) // 5: same episode
	if n, err := lb.AfterSettle(ctx, u.ID); err != nil || n != nil {
		t.Fatalf("at 5: claimed=%v err=%v", n, err)
	}
	if rec.count() != 1 || rec.sent[0].To != u.Email || rec.sent[0].Kind != store.NoticeLowBalance {
		t.Fatalf("sent %+v", rec.sent)
	}

	// A grant lifts the balance to 25; a 20-credit hold drops it to 5. The
	// hold saw 25 just before, so the episode ended: a new notice follows.
	give(t, s, u.ID, 20)
	job := uuid.NewString()
	if _, err := s.Hold(ctx, store.HoldInput{JobID: job, UserID: u.ID, Amount: 20}); err != nil {
		t.Fatal(err)
	}
	if err := lb.AfterHold(ctx, u.ID, 20); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Settle(ctx, job, 20); err != nil {
		t.Fatal(err)
	}
	rec.err = errors.New("mail down")
	if n, err := lb.AfterSettle(ctx, u.ID); n == nil || err == nil {
		t.Fatalf("second crossing: claimed=%v err=%v, want an attempt that failed", n, err)
	}
	ns, err := s.Notices(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 2 || ns[0].Error != "mail down" || ns[0].SentAt != nil || ns[1].SentAt == nil || ns[1].Balance != 8 {
		t.Fatalf("notices %+v", ns)
	}
}

func TestLowBalanceConcurrentSettles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	id := uuid.NewString()
	u, err := s.UpsertUser(ctx, id+"@example.com", "n", "sub-"+id)
	if err != nil {
		t.Fatal(err)
	}
	give(t, s, u.ID, 20)
	rec := &recorder{}
	lb := &notify.LowBalance{Store: s, Sender: rec}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			job := uuid.NewString()
			if _, err := s.Hold(ctx, store.HoldInput{JobID: job, UserID: u.ID, Amount: 4}); err != nil {
				t.Error(err)
				return
			}
			if _, err := s.Settle(ctx, job, 4); err != nil {
				t.Error(err)
				return
			}
			if _, err := lb.AfterSettle(ctx, u.ID); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if rec.count() != 1 {
		t.Fatalf("%d notices sent, want 1", rec.count())
	}
}
