package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/easel/easel/balancecache"
	"github.com/easel/easel/store"
)

// Reaper releases credit holds that outlived their generation workflow.
// Every workflow releases its own hold, on a disconnected context; a hold
// stays pending only if that release kept failing until the workflow ended
// anyway, or an operator terminated the workflow. The reaper never touches
// a hold whose workflow still runs: that workflow owns it.
type Reaper struct {
	Store    *store.Store
	Temporal client.Client
	Balances *balancecache.Cache // optional
	Log      *slog.Logger
	// WorkflowID maps a job id to its generation workflow id.
	WorkflowID func(jobID string) string
}

// ReapResult counts what one sweep did.
type ReapResult struct {
	Released int
	Running  int // expired, but the workflow still runs
}

// reapBatch bounds one sweep; the next sweep takes the rest.
const reapBatch = 200

// ReapExpiredHolds releases the expired holds of ended workflows.
func (r *Reaper) ReapExpiredHolds(ctx context.Context) (ReapResult, error) {
	holds, err := r.Store.ExpiredHolds(ctx, reapBatch)
	if err != nil {
		return ReapResult{}, err
	}
	var res ReapResult
	for _, h := range holds {
		running, err := r.running(ctx, h.JobID)
		if err != nil {
			return res, err
		}
		if running {
			res.Running++
			continue
		}
		if err := r.release(ctx, h); err != nil {
			return res, err
		}
		res.Released++
	}
	return res, nil
}

func (r *Reaper) running(ctx context.Context, jobID string) (bool, error) {
	d, err := r.Temporal.DescribeWorkflowExecution(ctx, r.WorkflowID(jobID), "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("describe workflow of job %s: %w", jobID, err)
	}
	return d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}

func (r *Reaper) release(ctx context.Context, h store.Hold) error {
	end := balanceChange(ctx, r.Balances, r.Log, h.UserID)
	_, err := r.Store.Abort(ctx, h.JobID, store.StatusFailed, "credit hold expired after its workflow ended")
	end()
	if err != nil {
		return fmt.Errorf("release expired hold of job %s: %w", h.JobID, err)
	}
	if r.Log != nil {
		r.Log.WarnContext(ctx, "released an expired credit hold", "job_id", h.JobID, "user_id", h.UserID,
			"credits", h.Amount, "expired_at", h.ExpiresAt)
	}
	return nil
}
