package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/easel/easel/internal/balancecache"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/notify"
	"github.com/easel/easel/internal/progress"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/webhook"
)

// Ledger holds the activities that move credits. They run on the control
// plane, next to the database, as local activities of the generation workflow.
type Ledger struct {
	Store    *store.Store
	Progress *progress.Hub
	Log      *slog.Logger
	// Balances, when set, is the API's balance cache; every ledger change
	// here is bracketed so no reader sees a balance from before it.
	Balances *balancecache.Cache
	// Notices, when set, sends the low-balance notice after a settle.
	Notices *notify.LowBalance
	// AfterAdmit, when set, runs once a hold is committed, before the
	// workflow hears of it: a fault hook for crash tests.
	AfterAdmit func(ctx context.Context, jobID string)
}

// Admit reserves the job's credits and records the job, in one transaction.
// Refusals are non-retryable errors of type InsufficientCredits or
// ConcurrencyLimit, with details.
func (l *Ledger) Admit(ctx context.Context, in AdmitInput) (AdmitResult, error) {
	params, err := json.Marshal(in.Params)
	if err != nil {
		return AdmitResult{}, fmt.Errorf("encode params: %w", err)
	}
	end := l.changing(ctx, in.UserID)
	g, err := l.Store.Admit(ctx, store.AdmitInput{
		MaxConcurrent: in.MaxConcurrent,
		Generation: store.Generation{
			ID: in.JobID, UserID: in.UserID, IdempotencyKey: in.IdempotencyKey, RequestHash: in.RequestHash,
			WorkflowID: in.WorkflowID, Model: in.Params.Model, Params: params, Plan: in.Plan,
			GPUTier: in.GPUTier, BatchSize: in.Params.BatchSize, CreditsHeld: in.Credits,
		},
	})
	end()
	if err == nil && l.AfterAdmit != nil {
		l.AfterAdmit(ctx, in.JobID)
	}
	var short *store.InsufficientCreditsError
	var busy *store.ConcurrencyLimitError
	switch {
	case errors.As(err, &short):
		return AdmitResult{}, temporal.NewNonRetryableApplicationError(short.Error(), TypeInsufficientCredits, nil,
			InsufficientCreditsDetails{Needed: short.Needed, Available: short.Available})
	case errors.As(err, &busy):
		return AdmitResult{}, temporal.NewNonRetryableApplicationError(busy.Error(), TypeConcurrencyLimit, nil,
			ConcurrencyLimitDetails{Limit: busy.Limit, Active: busy.Active})
	case err != nil:
		return AdmitResult{}, dataErrorFinal(err)
	}
	if l.Notices != nil {
		if err := l.Notices.AfterHold(ctx, in.UserID, g.CreditsHeld); err != nil {
			l.warn(ctx, "low-balance re-arm after hold", in.JobID, err)
		}
	}
	l.publish(ctx, progress.Status{JobID: in.JobID, State: catalog.JobQueued, Images: in.Params.BatchSize})
	return AdmitResult{JobID: g.ID, CreditsHeld: g.CreditsHeld, RequestHash: g.RequestHash, Status: g.Status,
		CreatedAt: g.CreatedAt}, nil
}

// Finalize records the images, settles the hold at the real cost and writes
// the usage record, in one transaction.
func (l *Ledger) Finalize(ctx context.Context, in FinalizeInput) (FinalizeResult, error) {
	end := l.changing(ctx, in.UserID)
	g, err := l.Store.Finalize(ctx, store.FinalizeInput{
		JobID: in.JobID, UserID: in.UserID, Images: in.Images, Credits: in.Credits,
		ComputeSeconds: in.ComputeSeconds, Model: in.Params.Model, GPUTier: in.GPUTier, Steps: in.Params.Steps,
		Width: in.Params.Width, Height: in.Params.Height, BatchSize: in.Params.BatchSize, StartedAt: in.StartedAt,
		ListenFor: webhook.GenerationCompleted,
	})
	end()
	if errors.Is(err, store.ErrHoldVoided) {
		// The hold was released (a cancel won the race): nothing to charge.
		return FinalizeResult{}, temporal.NewNonRetryableApplicationError(err.Error(), TypeHoldVoided, err)
	}
	if errors.Is(err, store.ErrCancelRequested) {
		return FinalizeResult{}, temporal.NewNonRetryableApplicationError(err.Error(), TypeCancelRequested, err)
	}
	if err != nil {
		return FinalizeResult{}, dataErrorFinal(err)
	}
	settled := 0
	if g.CreditsSettled != nil {
		settled = *g.CreditsSettled
	}
	// Counted on every successful run; a replayed Finalize is rare (a crash
	// between commit and the workflow recording the result).
	creditsSettled.Add(float64(settled))
	var low *LowBalance
	if l.Notices != nil {
		// The money has moved: a notice that cannot be sent is logged (and
		// recorded on the notice), never a reason to fail or retry the job.
		n, err := l.Notices.AfterSettle(ctx, in.UserID)
		if err != nil {
			l.warn(ctx, "low-balance notice", in.JobID, err)
		}
		if n != nil {
			low = &LowBalance{NoticeID: n.ID, Available: n.Balance, Threshold: l.Notices.EffectiveThreshold()}
		}
	}
	jobsFinished.WithLabelValues(catalog.JobCompleted).Inc()
	if !g.CreatedAt.IsZero() {
		jobDuration.WithLabelValues(in.GPUTier).Observe(time.Since(g.CreatedAt).Seconds())
	}
	l.publish(ctx, progress.Status{JobID: in.JobID, State: catalog.JobCompleted, Progress: 1,
		Images: in.Params.BatchSize, Image: len(in.Images),
		Message: fmt.Sprintf("%d of %d images, %d credits", len(in.Images), in.Params.BatchSize, settled)})
	return FinalizeResult{CreditsSettled: settled, ImagesProduced: g.ImagesProduced, LowBalance: low,
		NoListeners: !g.Listened}, nil
}

// MarkRunning records that the job's render began (status running,
// started_at); it moves no money.
func (l *Ledger) MarkRunning(ctx context.Context, in MarkRunningInput) error {
	return l.Store.MarkRunning(ctx, in.UserID, in.JobID, in.StartedAt)
}

// Abort releases the job's hold and marks it failed or canceled.
func (l *Ledger) Abort(ctx context.Context, in AbortInput) (AbortResult, error) {
	end := l.changing(ctx, in.UserID)
	h, err := l.Store.Abort(ctx, in.JobID, in.Status, in.Reason)
	end()
	if err != nil {
		return AbortResult{}, dataErrorFinal(err)
	}
	if l.Notices != nil && h.Status == store.HoldVoided {
		// A release raises the balance: it may end a low-balance episode.
		if err := l.Notices.Observe(ctx, in.UserID); err != nil {
			l.warn(ctx, "low-balance re-arm after release", in.JobID, err)
		}
	}
	if h.Status == store.HoldVoided {
		jobsFinished.WithLabelValues(in.Status).Inc()
		l.publish(ctx, progress.Status{JobID: in.JobID, State: in.Status, Images: in.BatchSize, Message: in.Reason})
	}
	return AbortResult{HoldStatus: h.Status}, nil
}

// dataErrorFinal makes Postgres refusing a value (store.IsDataError: a NUL
// or invalid UTF-8 in text, say) a non-retryable InvalidRequest: the same
// value is refused on every attempt, and retrying it for the hour the
// ledger's retry policy allows would hang the job and the API waiting on
// it. Every other error is returned as it is, to be retried.
func dataErrorFinal(err error) error {
	if !store.IsDataError(err) {
		return err
	}
	return temporal.NewNonRetryableApplicationError("the database refused a value of this job: "+err.Error(),
		TypeInvalidRequest, err)
}

// changing brackets a ledger change for the balance cache; call the returned
// func once the change has returned, whatever its outcome. Cache failures are
// logged: the cached value also expires on its own (balancecache.TTL).
func (l *Ledger) changing(ctx context.Context, userID string) func() {
	return balanceChange(ctx, l.Balances, l.Log, userID)
}

func (l *Ledger) warn(ctx context.Context, msg, jobID string, err error) {
	if l.Log != nil {
		l.Log.WarnContext(ctx, msg, "job_id", jobID, "err", err)
	}
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
