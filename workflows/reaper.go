package workflows

import (
	"cmp"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
)

// The hold reaper's workflow type and the id of its one run.
const (
	HoldReaperWorkflow = "HoldReaper"
	HoldReaperID       = "hold-reaper"
)

// HoldReaperInput paces the reaper.
type HoldReaperInput struct {
	Interval time.Duration // between sweeps (default 2 minutes)
	Sweeps   int           // sweeps before continue-as-new (default 180: 6 hours)
	// StaleAfter is the age from which a pending hold is checked whatever
	// its workflow's state (default 10 minutes).
	StaleAfter time.Duration
	// Cursor carries the sweep of stale holds across runs.
	Cursor store.HoldCursor
}

// Nil receiver names the reaper's activity; the worker registers the real one.
var reaperActivity *activities.Reaper

// HoldReaper releases credit holds whose generation workflow has ended,
// forever: one sweep per interval, a new run every Sweeps sweeps so the
// history stays small. Each sweep looks at runs closed since a little
// before the previous sweep (the windows overlap, so none is missed) and at
// a page of holds older than StaleAfter.
func HoldReaper(ctx workflow.Context, in HoldReaperInput) error {
	// Defaults are applied here and never written back into the input the
	// next run gets, so a new release's defaults reach a running reaper.
	interval := cmp.Or(max(in.Interval, 0), 2*time.Minute)
	sweeps := cmp.Or(max(in.Sweeps, 0), 180)
	staleAfter := cmp.Or(max(in.StaleAfter, 0), 10*time.Minute)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           catalog.ControlQueue,
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 3},
	})
	for range sweeps {
		now := workflow.Now(ctx)
		var res activities.ReapResult
		err := workflow.ExecuteActivity(actx, reaperActivity.ReapStrandedHolds, activities.ReapInput{
			ClosedSince: now.Add(-3 * interval), StaleBefore: now.Add(-staleAfter), Cursor: in.Cursor,
		}).Get(ctx, &res)
		if err != nil {
			// The next sweep tries again; a failed sweep changes nothing.
			workflow.GetLogger(ctx).Error("hold reaper sweep failed", "error", err)
		} else {
			in.Cursor = res.Cursor
			if res.Released > 0 {
				workflow.GetLogger(ctx).Warn("hold reaper sweep", "released", res.Released, "still_running", res.Running)
			}
		}
		if err := workflow.Sleep(ctx, interval); err != nil {
			return err
		}
	}
	return workflow.NewContinueAsNewError(ctx, HoldReaper, in)
}
