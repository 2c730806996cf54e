package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
)

// HoldReaperID is the id of the one hold reaper workflow.
const HoldReaperID = "hold-reaper"

// HoldReaperInput paces the reaper.
type HoldReaperInput struct {
	Interval time.Duration // between sweeps (default 15 minutes)
	Sweeps   int           // sweeps before continue-as-new (default 96: a day)
}

// Nil receiver names the reaper's activity; the worker registers the real one.
var reaper *activities.Reaper

// HoldReaper sweeps expired credit holds whose generation workflow has
// ended and releases them, forever: one sweep per interval, a new run per
// day so the history stays small.
func HoldReaper(ctx workflow.Context, in HoldReaperInput) error {
	if in.Interval <= 0 {
		in.Interval = 15 * time.Minute
	}
	if in.Sweeps <= 0 {
		in.Sweeps = 96
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           ControlQueue,
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 3},
	})
	for range in.Sweeps {
		var res activities.ReapResult
		if err := workflow.ExecuteActivity(actx, reaper.ReapExpiredHolds).Get(ctx, &res); err != nil {
			// The next sweep tries again; a failed sweep changes nothing.
			workflow.GetLogger(ctx).Error("hold reaper sweep failed", "error", err)
		} else if res.Released > 0 || res.Running > 0 {
			workflow.GetLogger(ctx).Info("hold reaper sweep", "released", res.Released, "still_running", res.Running)
		}
		if err := workflow.Sleep(ctx, in.Interval); err != nil {
			return err
		}
	}
	return workflow.NewContinueAsNewError(ctx, HoldReaper, in)
}
