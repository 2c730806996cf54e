package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/store"
	"github.com/easel/easel/testenv"
	"github.com/easel/easel/workflows"
)

func waitForever(ctx workflow.Context) error {
	return workflow.Await(ctx, func() bool { return false })
}

// The reaper releases an expired hold whose workflow is gone, and leaves
// alone one whose workflow still runs, and one that has not expired.
func TestReaperReleasesOnlyOrphanedHolds(t *testing.T) {
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	tc := testenv.Temporal(t, nil)
	u, err := s.UpsertUser(ctx, uuid.NewString()+"@example.com", "reaper", "sub-"+uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Grant(ctx, store.GrantInput{UserID: u.ID, Amount: 100, Source: "test",
		ValidFrom: time.Now().Add(-time.Hour), ValidUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	orphan, running, fresh := uuid.NewString(), uuid.NewString(), uuid.NewString()
	for _, id := range []string{orphan, running, fresh} {
		if _, err := s.Hold(ctx, store.HoldInput{JobID: id, UserID: u.ID, Amount: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE credit_holds SET expires_at = now() - interval '1 minute' WHERE id = ANY($1)`,
		[]string{orphan, running}); err != nil {
		t.Fatal(err)
	}
	// The running job's workflow, under the id the reaper looks up.
	if _, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.GenerationID(running),
		TaskQueue: "reaper-test-idle"}, waitForever); err != nil {
		t.Fatal(err)
	}
	r := &activities.Reaper{Store: s, Temporal: tc, WorkflowID: workflows.GenerationID}
	res, err := r.ReapExpiredHolds(ctx)
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
	again, err := r.ReapExpiredHolds(ctx)
	if err != nil || again.Released != 0 {
		t.Fatalf("second sweep = %+v, %v", again, err)
	}
}
