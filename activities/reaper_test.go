package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
	"github.com/easel/easel/workflows"
)

// userWithCredits creates a user with credits valid for the next hour.
func userWithCredits(t *testing.T, s *store.Store, credits int) store.User {
	t.Helper()
	ctx := context.Background()
	u, err := s.UpsertUser(ctx, uuid.NewString()+"@example.com", "reaper", "sub-"+uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Grant(ctx, store.GrantInput{UserID: u.ID, Amount: credits, Source: "test",
		ValidFrom: time.Now().Add(-time.Hour), ValidUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return u
}

func waitForever(ctx workflow.Context) error {
	return workflow.Await(ctx, func() bool { return false })
}

// The reaper releases a stale hold whose workflow is gone, and leaves alone
// one whose workflow still runs, and a young one.
func TestReaperReleasesOnlyOrphanedHolds(t *testing.T) {
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	tc := testenv.Temporal(t, nil)
	u := userWithCredits(t, s, 100)
	orphan, running, fresh := uuid.NewString(), uuid.NewString(), uuid.NewString()
	for _, id := range []string{orphan, running, fresh} {
		if _, err := s.Hold(ctx, store.HoldInput{JobID: id, UserID: u.ID, Amount: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE credit_holds SET created_at = now() - interval '11 minutes' WHERE id = ANY($1)`,
		[]string{orphan, running}); err != nil {
		t.Fatal(err)
	}
	// The running job's workflow, under the id the reaper looks up.
	if _, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.GenerationID(running),
		TaskQueue: "reaper-test-idle"}, waitForever); err != nil {
		t.Fatal(err)
	}
	r := &activities.Reaper{Store: s, Temporal: tc, WorkflowID: workflows.GenerationID}
	sweep := activities.ReapInput{StaleBefore: time.Now().Add(-10 * time.Minute)}
	res, err := r.ReapStrandedHolds(ctx, sweep)
	if err != nil || res.Released != 1 || res.Running != 1 {
		t.Fatalf("sweep = %+v, %v", res, err)
	}
	for id, want := range map[string]string{orphan: store.HoldVoided, running: store.HoldPending, fresh: store.HoldPending} {
		if h, err := s.GetHold(ctx, id); err != nil || h.Status != want {
			t.Errorf("hold %s = %+v, %v; want %s", id, h, err, want)
		}
	}
	if b, err := s.Balance(ctx, u.ID); err != nil || b.Available != 80 || b.Held != 20 {
		t.Fatalf("balance = %+v, %v", b, err)
	}
	again, err := r.ReapStrandedHolds(ctx, sweep)
	if err != nil || again.Released != 0 {
		t.Fatalf("second sweep = %+v, %v", again, err)
	}
}

func endAtOnce(workflow.Context) error { return nil }

// A hold left behind by a workflow that has just closed is released at the
// next sweep, minutes after, not when it turns stale; a hold whose job has a
// newer run that still runs is left to that run.
func TestReaperReleasesHoldsOfClosedRunsAtOnce(t *testing.T) {
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	tc := testenv.Temporal(t, nil)
	u := userWithCredits(t, s, 100)
	const queue = "reaper-test-closed"
	w := worker.New(tc, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(endAtOnce, workflow.RegisterOptions{Name: "EndAtOnce"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	closed, rerun := uuid.NewString(), uuid.NewString()
	for _, id := range []string{closed, rerun} {
		if _, err := s.Hold(ctx, store.HoldInput{JobID: id, UserID: u.ID, Amount: 10}); err != nil {
			t.Fatal(err)
		}
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.GenerationID(id), TaskQueue: queue},
			"EndAtOnce")
		if err != nil {
			t.Fatal(err)
		}
		if err := run.Get(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A later run of the same job, still running, owns the hold now.
	if _, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.GenerationID(rerun),
		TaskQueue: "reaper-test-idle"}, waitForever); err != nil {
		t.Fatal(err)
	}
	r := &activities.Reaper{Store: s, Temporal: tc, WorkflowID: workflows.GenerationID,
		JobID: workflows.GenerationJob, WorkflowType: "EndAtOnce"}
	in := activities.ReapInput{ClosedSince: time.Now().Add(-time.Minute), StaleBefore: time.Now().Add(-10 * time.Minute)}
	deadline := time.Now().Add(15 * time.Second)
	for {
		// Visibility lags the close a little; sweeps repeat until it shows.
		if _, err := r.ReapStrandedHolds(ctx, in); err != nil {
			t.Fatal(err)
		}
		if h, err := s.GetHold(ctx, closed); err == nil && h.Status == store.HoldVoided {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the hold of the closed run is still pending")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if h, err := s.GetHold(ctx, rerun); err != nil || h.Status != store.HoldPending {
		t.Fatalf("hold of the running rerun = %+v, %v; want pending", h, err)
	}
	if b, err := s.Balance(ctx, u.ID); err != nil || b.Available != 90 || b.Held != 10 {
		t.Fatalf("balance = %+v, %v", b, err)
	}
}
