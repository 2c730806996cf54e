package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/easel/easel/internal/balancecache"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
)

// Reaper releases credit holds that outlived their generation workflow.
// Every workflow releases its own hold on every exit path, on a disconnected
// context; a hold stays pending only if that release kept failing until the
// workflow ended anyway, an operator terminated the workflow, or the
// workflow was lost with its server. The reaper never touches a hold whose
// workflow still runs: that workflow owns it.
type Reaper struct {
	Store    *store.Store
	Temporal client.Client
	Balances *balancecache.Cache // optional
	Log      *slog.Logger
	// WorkflowID maps a job id to its generation workflow id, and JobID
	// back (false for another workflow's id).
	WorkflowID func(jobID string) string
	JobID      func(workflowID string) (string, bool)
	// WorkflowType is the generation workflow's type name in visibility.
	WorkflowType string
}

// ReapInput bounds one sweep.
type ReapInput struct {
	// ClosedSince: generation runs closed after it are checked for a hold
	// they left behind (seen within a sweep of their end).
	ClosedSince time.Time
	// StaleBefore: pending holds created before it are checked whatever
	// their workflow's state (catches workflows that are gone), a page per
	// sweep from Cursor.
	StaleBefore time.Time
	Cursor      store.HoldCursor
}

// ReapResult counts what one sweep did.
type ReapResult struct {
	Released int
	Running  int              // stale, but the workflow still runs
	Cursor   store.HoldCursor // where the next sweep of stale holds starts
}

// reapBatch bounds the page of stale holds per sweep; the next sweep takes
// the next page, and the sweep wraps around at the end.
const reapBatch = 200

// ReapStrandedHolds releases the pending holds of generation workflows that
// have ended: first those of runs closed recently, then a page of old holds.
func (r *Reaper) ReapStrandedHolds(ctx context.Context, in ReapInput) (ReapResult, error) {
	res := ReapResult{Cursor: in.Cursor}
	closed, err := r.closedJobs(ctx, in.ClosedSince)
	if err != nil {
		return res, err
	}
	recent, err := r.Store.PendingHolds(ctx, closed)
	if err != nil {
		return res, err
	}
	if err := r.reap(ctx, recent, &res); err != nil {
		return res, err
	}
	stale, err := r.Store.StaleHolds(ctx, in.StaleBefore, in.Cursor, reapBatch)
	if err != nil {
		return res, err
	}
	if err := r.reap(ctx, stale, &res); err != nil {
		return res, err
	}
	res.Cursor = store.HoldCursor{}
	if len(stale) == reapBatch {
		last := stale[len(stale)-1]
		res.Cursor = store.HoldCursor{CreatedAt: last.CreatedAt, JobID: last.JobID}
	}
	return res, nil
}

// reap releases each hold whose workflow no longer runs.
func (r *Reaper) reap(ctx context.Context, holds []store.Hold, res *ReapResult) error {
	for _, h := range holds {
		running, err := r.running(ctx, h.JobID)
		if err != nil {
			return err
		}
		if running {
			res.Running++
			continue
		}
		if err := r.release(ctx, h); err != nil {
			return err
		}
		res.Released++
	}
	return nil
}

// closedJobs lists the jobs whose generation runs closed since the given
// time, from Temporal's visibility store.
func (r *Reaper) closedJobs(ctx context.Context, since time.Time) ([]string, error) {
	if since.IsZero() || r.JobID == nil {
		return nil, nil
	}
	query := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus != 'Running' AND CloseTime > '%s'",
		r.WorkflowType, since.UTC().Format(time.RFC3339Nano))
	var jobs []string
	var page []byte
	for {
		resp, err := r.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: query, NextPageToken: page, PageSize: 1000})
		if err != nil {
			return nil, fmt.Errorf("list closed generation workflows: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			if job, ok := r.JobID(e.GetExecution().GetWorkflowId()); ok {
				jobs = append(jobs, job)
			}
		}
		if page = resp.GetNextPageToken(); len(page) == 0 {
			return jobs, nil
		}
	}
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
	_, err := r.Store.Abort(ctx, h.JobID, catalog.JobFailed, "the job's workflow ended without releasing its credit hold")
	end()
	if err != nil {
		return fmt.Errorf("release expired hold of job %s: %w", h.JobID, err)
	}
	if r.Log != nil {
		r.Log.WarnContext(ctx, "released a stranded credit hold", "job_id", h.JobID, "user_id", h.UserID,
			"credits", h.Amount, "expired_at", h.ExpiresAt)
	}
	return nil
}
