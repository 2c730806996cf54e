package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/temporal"

	"github.com/easel/easel/progress"
	"github.com/easel/easel/store"
)

// Ledger holds the activities that move credits. They run on the control
// plane, next to the database, as local activities of the generation workflow.
type Ledger struct {
	Store    *store.Store
	Progress *progress.Hub
	Log      *slog.Logger
}

// Admit reserves the job's credits and records the job, in one transaction.
// Refusals are non-retryable errors of type InsufficientCredits or
// ConcurrencyLimit, with details.
func (l *Ledger) Admit(ctx context.Context, in AdmitInput) (AdmitResult, error) {
	params, err := json.Marshal(in.Params)
	if err != nil {
		return AdmitResult{}, fmt.Errorf("encode params: %w", err)
	}
	g, err := l.Store.Admit(ctx, store.AdmitInput{
		MaxConcurrent: in.MaxConcurrent,
		Generation: store.Generation{
			ID: in.JobID, UserID: in.UserID, IdempotencyKey: in.IdempotencyKey, RequestHash: in.RequestHash,
			WorkflowID: in.WorkflowID, Model: in.Params.Model, Params: params, Plan: in.Plan,
			GPUTier: in.GPUTier, BatchSize: in.Params.BatchSize, CreditsHeld: in.Credits,
		},
	})
	var short *store.InsufficientCreditsError
	var busy *store.ConcurrencyLimitError
	switch {
	case errors.As(err, &short):
		return AdmitResult{}, temporal.NewNonRetryableApplicationError(short.Error(), ErrInsufficientCredits, nil,
			InsufficientCreditsDetails{Needed: short.Needed, Available: short.Available})
	case errors.As(err, &busy):
		return AdmitResult{}, temporal.NewNonRetryableApplicationError(busy.Error(), ErrConcurrencyLimit, nil,
			ConcurrencyLimitDetails{Limit: busy.Limit, Active: busy.Active})
	case err != nil:
		return AdmitResult{}, err
	}
	l.publish(ctx, progress.Status{JobID: in.JobID, State: progress.StateQueued, Images: in.Params.BatchSize})
	return AdmitResult{JobID: g.ID, CreditsHeld: g.CreditsHeld, RequestHash: g.RequestHash, Status: g.Status,
		CreatedAt: g.CreatedAt}, nil
}

// Finalize records the images, settles the hold at the real cost and writes
// the usage record, in one transaction.
func (l *Ledger) Finalize(ctx context.Context, in FinalizeInput) (FinalizeResult, error) {
	g, err := l.Store.Finalize(ctx, store.FinalizeInput{
		JobID: in.JobID, UserID: in.UserID, Images: in.Images, Credits: in.Credits,
		ComputeSeconds: in.ComputeSeconds, Model: in.Params.Model, GPUTier: in.GPUTier, Steps: in.Params.Steps,
		Width: in.Params.Width, Height: in.Params.Height, BatchSize: in.Params.BatchSize,
	})
	if errors.Is(err, store.ErrHoldVoided) {
		// The hold was released (a cancel won the race): nothing to charge.
		return FinalizeResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "HoldVoided", err)
	}
	if err != nil {
		return FinalizeResult{}, err
	}
	settled := 0
	if g.CreditsSettled != nil {
		settled = *g.CreditsSettled
	}
	// Counted on every successful run; a replayed Finalize is rare (a crash
	// between commit and the workflow recording the result).
	creditsSettled.Add(float64(settled))
	jobsFinished.WithLabelValues(store.StatusCompleted).Inc()
	l.publish(ctx, progress.Status{JobID: in.JobID, State: progress.StateCompleted, Progress: 1,
		Images: in.Params.BatchSize, Image: len(in.Images),
		Message: fmt.Sprintf("%d of %d images, %d credits", len(in.Images), in.Params.BatchSize, settled)})
	return FinalizeResult{CreditsSettled: settled, ImagesProduced: g.ImagesProduced}, nil
}

// Abort releases the job's hold and marks it failed or canceled.
func (l *Ledger) Abort(ctx context.Context, in AbortInput) (AbortResult, error) {
	h, err := l.Store.Abort(ctx, in.JobID, in.Status, in.Reason)
	if err != nil {
		return AbortResult{}, err
	}
	if h.Status == store.HoldVoided {
		jobsFinished.WithLabelValues(in.Status).Inc()
		l.publish(ctx, progress.Status{JobID: in.JobID, State: in.Status, Images: in.BatchSize, Message: in.Reason})
	}
	return AbortResult{HoldStatus: h.Status}, nil
}

// publish reports status to Redis. Live progress is best effort: a Redis
// outage must not fail a job whose money has already moved.
func (l *Ledger) publish(ctx context.Context, s progress.Status) {
	if l.Progress == nil {
		return
	}
	if err := l.Progress.Publish(ctx, s); err != nil && l.Log != nil {
		l.Log.WarnContext(ctx, "publish job status", "job_id", s.JobID, "err", err)
	}
}
