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

func TestGrantPeriodIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	in := store.PeriodGrant{SubscriptionID: uuid.NewString(), UserID: u.ID, PlanSlug: "pro", Credits: 500,
		PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0), PaymentIntentID: "pi_" + uuid.NewString(),
		AmountCents: 1999, Currency: "usd"}

	before := balance(t, s, u.ID)
	var first string
	for i := range 3 {
		id, err := s.GrantPeriod(ctx, in)
		if err != nil {
			t.Fatalf("grant %d: %v", i, err)
		}
		if i == 0 {
			first = id
		} else if id != first {
			t.Fatalf("replay %d granted %s, first was %s", i, id, first)
		}
	}
	if after := balance(t, s, u.ID); after.Available != before.Available+500 {
		t.Fatalf("available %d -> %d, want +500", before.Available, after.Available)
	}
	grants, err := s.Grants(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(grants) != 1 || grants[0].Source != store.SourceSubscription ||
		grants[0].ReferenceID != store.PeriodReference(in.SubscriptionID, start) ||
		!grants[0].ValidFrom.Equal(in.PeriodStart) || !grants[0].ValidUntil.Equal(in.PeriodEnd) {
		t.Fatalf("grants = %+v", grants)
	}
	pays, err := s.Payments(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(pays) != 1 || pays[0].Amount != "19.99" || pays[0].Currency != "USD" ||
		pays[0].Status != "succeeded" || pays[0].PaymentIntentID != in.PaymentIntentID {
		t.Fatalf("payments = %+v", pays)
	}
}

// Concurrent replays (a retried activity racing its first attempt) still
// make one grant: the user's ledger lock serializes them.
func TestGrantPeriodConcurrentReplays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	start := time.Now().Add(-time.Minute)
	in := store.PeriodGrant{SubscriptionID: uuid.NewString(), UserID: u.ID, PlanSlug: "pro", Credits: 100,
		PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0), PaymentIntentID: "pi_" + uuid.NewString(),
		AmountCents: 500}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.GrantPeriod(ctx, in); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if b := balance(t, s, u.ID); b.Available != 100 {
		t.Fatalf("available = %d, want 100", b.Available)
	}
}

func TestGrantPeriodFreeAndNewPeriod(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	sub := uuid.NewString()
	start := time.Now().Add(-time.Minute)
	free := store.PeriodGrant{SubscriptionID: sub, UserID: u.ID, PlanSlug: "free", Credits: 50,
		PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0)}
	if _, err := s.GrantPeriod(ctx, free); err != nil {
		t.Fatal(err)
	}
	if pays, err := s.Payments(ctx, u.ID); err != nil || len(pays) != 0 {
		t.Fatalf("free period payments = %+v, %v", pays, err)
	}
	// The next period is a different reference: a second grant.
	next := free
	next.PeriodStart, next.PeriodEnd = free.PeriodEnd, free.PeriodEnd.AddDate(0, 1, 0)
	id1, _ := s.GrantPeriod(ctx, free)
	id2, err := s.GrantPeriod(ctx, next)
	if err != nil || id1 == id2 {
		t.Fatalf("next period grant = %s (first %s), %v", id2, id1, err)
	}
}

func TestGrantPeriodRefusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	start := time.Now()
	ok := store.PeriodGrant{SubscriptionID: "sub", UserID: u.ID, Credits: 10, PeriodStart: start,
		PeriodEnd: start.Add(time.Hour)}
	bad := ok
	bad.Credits = 0
	if _, err := s.GrantPeriod(ctx, bad); !errors.Is(err, store.ErrInvalidPeriod) {
		t.Fatalf("zero credits: %v", err)
	}
	bad = ok
	bad.PeriodEnd = start
	if _, err := s.GrantPeriod(ctx, bad); !errors.Is(err, store.ErrInvalidPeriod) {
		t.Fatalf("empty period: %v", err)
	}
	bad = ok
	bad.UserID = uuid.NewString()
	if _, err := s.GrantPeriod(ctx, bad); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
}
