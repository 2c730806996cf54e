package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/store"
)

// The reaper sweeps once per interval, survives a failed sweep, and starts a
// new run after its sweeps.
func TestHoldReaperSweepsThenContinues(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(HoldReaper)
	env.RegisterActivity(&activities.Reaper{})
	var at []time.Time
	var inputs []activities.ReapInput
	page := store.HoldCursor{CreatedAt: time.Unix(1_700_000_000, 0), JobID: "job-200"}
	env.OnActivity(reaperActivity.ReapStrandedHolds, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReapInput) (activities.ReapResult, error) {
			at = append(at, env.Now())
			inputs = append(inputs, in)
			switch len(at) {
			case 1:
				return activities.ReapResult{Released: 1, Cursor: page}, nil
			case 2:
				return activities.ReapResult{}, errors.New("database down")
			}
			return activities.ReapResult{Released: 1}, nil
		})
	env.ExecuteWorkflow(HoldReaper, HoldReaperInput{Interval: 10 * time.Minute, Sweeps: 4})
	var can *workflow.ContinueAsNewError
	if !errors.As(env.GetWorkflowError(), &can) {
		t.Fatalf("ended with %v, want continue-as-new", env.GetWorkflowError())
	}
	if len(at) < 4 {
		t.Fatalf("%d sweeps, want at least 4", len(at))
	}
	if gap := at[3].Sub(at[2]); gap < 10*time.Minute {
		t.Fatalf("sweeps %s apart, want the interval", gap)
	}
	// Each sweep looks back over more than one interval (no closed run is
	// missed between sweeps) and at holds older than StaleAfter.
	for i, in := range inputs {
		if lookBack := at[i].Sub(in.ClosedSince); lookBack <= 10*time.Minute {
			t.Errorf("sweep %d looks back %s, want more than the interval", i, lookBack)
		}
		// (a retried sweep runs seconds after its input was made)
		if age := at[i].Sub(in.StaleBefore); age < 10*time.Minute || age > 11*time.Minute {
			t.Errorf("sweep %d takes holds older than %s, want 10m (default)", i, age)
		}
	}
	// The page of stale holds carries on from where the last good sweep
	// stopped, also after a failed one.
	same := func(a, b store.HoldCursor) bool { return a.JobID == b.JobID && a.CreatedAt.Equal(b.CreatedAt) }
	if !same(inputs[1].Cursor, page) || !same(inputs[2].Cursor, page) || !same(inputs[3].Cursor, store.HoldCursor{}) {
		t.Errorf("cursors = %+v, %+v, %+v", inputs[1].Cursor, inputs[2].Cursor, inputs[3].Cursor)
	}
}

// A run's defaults are not written into the next run's input: a reaper that
// continues as new picks up the pacing of the code it runs on.
func TestHoldReaperKeepsDefaultsOutOfItsInput(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(HoldReaper)
	env.RegisterActivity(&activities.Reaper{})
	env.OnActivity(reaperActivity.ReapStrandedHolds, mock.Anything, mock.Anything).Return(activities.ReapResult{}, nil)
	env.ExecuteWorkflow(HoldReaper, HoldReaperInput{Sweeps: 1})
	var can *workflow.ContinueAsNewError
	if !errors.As(env.GetWorkflowError(), &can) {
		t.Fatalf("ended with %v, want continue-as-new", env.GetWorkflowError())
	}
	var next HoldReaperInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.Interval != 0 || next.StaleAfter != 0 || next.Sweeps != 1 {
		t.Fatalf("next run's input = %+v, want the defaults left out", next)
	}
}
