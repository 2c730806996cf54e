package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
)

// The reaper sweeps once per interval, survives a failed sweep, and starts a
// new run after its sweeps.
func TestHoldReaperSweepsThenContinues(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(HoldReaper)
	env.RegisterActivity(&activities.Reaper{})
	var at []time.Time
	env.OnActivity(reaper.ReapExpiredHolds, mock.Anything).Return(func(context.Context) (activities.ReapResult, error) {
		at = append(at, env.Now())
		if len(at) == 2 {
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
}
