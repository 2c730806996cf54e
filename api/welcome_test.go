package api_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/easel/easel/internal/oidc"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/workflows"
)

// Brand-new users signing in at once each see the free plan's 50 credits
// on their very first request, also when a user's first requests race each
// other; the free subscription's workflow, granting the same period again,
// adds nothing.
func TestFirstSignInShowsFreeCredits(t *testing.T) {
	s := newStack(t, time.Millisecond)
	const users, perUser = 6, 3
	type seen struct {
		sub       string
		available int
		status    int
		body      string
	}
	results := make(chan seen, users*perUser)
	var wg sync.WaitGroup
	for range users {
		sub := "sub-" + uuid.NewString()
		token, err := s.issuer.Sign(oidc.Identity{Subject: sub, Email: sub + "@example.com", Name: "New " + sub[4:12]}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for range perUser {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := s.do(t, http.MethodGet, "/v1/credits", token, nil)
				var c credits
				if r.status == http.StatusOK {
					r.decode(t, &c)
				}
				results <- seen{sub: sub, available: c.Available, status: r.status, body: string(r.body)}
			}()
		}
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != http.StatusOK || r.available != 50 {
			t.Errorf("first requests of %s: %d, %d credits (%s); want 200 with 50", r.sub, r.status, r.available, r.body)
		}
	}

	ctx := context.Background()
	rows, err := s.store.Pool().Query(ctx, `SELECT u.id::text, us.id::text FROM users u
		JOIN user_subscriptions us ON us.user_id = u.id WHERE u.email LIKE 'sub-%@example.com'`)
	if err != nil {
		t.Fatal(err)
	}
	subs := map[string]string{}
	for rows.Next() {
		var uid, sid string
		if err := rows.Scan(&uid, &sid); err != nil {
			t.Fatal(err)
		}
		subs[uid] = sid
	}
	if rows.Close(); rows.Err() != nil || len(subs) != users {
		t.Fatalf("free subscriptions %v (%v): want one for each of %d users", subs, rows.Err(), users)
	}
	for uid, sid := range subs {
		waitFor(t, "free workflow granted its first period", func() bool { return grantedOnce(t, s, sid) })
		d, err := s.temporal.DescribeWorkflowExecution(ctx, workflows.SubscriptionID(sid), "")
		if err != nil || d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Fatalf("free subscription workflow of %s: %v", uid, err)
		}
		gs, err := s.store.Grants(ctx, uid)
		if err != nil || len(gs) != 1 || gs[0].Total != 50 || gs[0].Source != store.SourceSubscription {
			t.Fatalf("grants of %s = %+v, %v: want the one free grant", uid, gs, err)
		}
		if got := s.available(t, uid); got != 50 {
			t.Fatalf("%s has %d credits after the workflow's grant, want 50", uid, got)
		}
		s.checkMoney(t, uid)
	}
}

// grantedOnce says whether the subscription's workflow has completed a
// GrantPeriod activity.
func grantedOnce(t *testing.T, s *stack, subID string) bool {
	t.Helper()
	it := s.temporal.GetWorkflowHistory(context.Background(), workflows.SubscriptionID(subID), "", false,
		enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	grants := map[int64]bool{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return false
		}
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "GrantPeriod" {
			grants[ev.GetEventId()] = true
		}
		if c := ev.GetActivityTaskCompletedEventAttributes(); c != nil && grants[c.GetScheduledEventId()] {
			return true
		}
	}
	return false
}
