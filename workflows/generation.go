// Package workflows holds Easel's deterministic workflow code: the generation
// saga (reserve credits, render on a GPU tier, settle or refund). All I/O
// happens in package activities.
package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
)

// GenerationWorkflow is the generation workflow's registered type name.
const GenerationWorkflow = "Generation"

const generationPrefix = "generation/"

// GenerationID is the workflow id of a job.
func GenerationID(jobID string) string { return generationPrefix + jobID }

// GenerationJob is the job id of a generation workflow id; false for any
// other workflow's id.
func GenerationJob(workflowID string) (string, bool) {
	return strings.CutPrefix(workflowID, generationPrefix)
}

// AdmitUpdate is the update the API sends with the start of a generation; it
// returns once the job's credits are held (or refused).
const AdmitUpdate = "admit"

// Priority keys on the GPU queues: lower runs sooner. Free renders wait
// behind paid ones on the tier they share (t4).
const (
	PriorityHigh     = 1
	PriorityStandard = 3
	PriorityFree     = 4
)

// GenerationInput starts a job. The API fills it from the authenticated user,
// their plan and the validated request.
type GenerationInput struct {
	JobID          string
	UserID         string
	IdempotencyKey string
	RequestHash    string
	Plan           string
	GPUTier        string
	PriorityKey    int
	MaxConcurrent  int
	Params         activities.Params
	PricePerImage  int
	// RenderHeartbeat bounds how long a silent GPU worker keeps a job before
	// it is retried elsewhere (default 30 s).
	RenderHeartbeat time.Duration
	// Webhook is the request's own webhook_url, told of the job's end as
	// the user's endpoints are (nil: none).
	Webhook *activities.RequestWebhook `json:",omitempty"`
}

// GenerationResult is how the job ended.
type GenerationResult struct {
	Status         string
	ImagesProduced int
	CreditsHeld    int
	CreditsSettled int
	Error          string
}

// Generation is the saga of one job: admit (hold credits), render on the
// tier's GPU queue, then settle for the images produced, or release the hold
// and delete partial objects on failure, timeout or cancellation.
func Generation(ctx workflow.Context, in GenerationInput) (GenerationResult, error) {
	admitted, err := admit(ctx, in)
	if err != nil {
		return admissionFailed(ctx, in, err)
	}
	res := GenerationResult{CreditsHeld: admitted.CreditsHeld}
	if ctx.Err() != nil {
		// Cancelled while the hold was being taken: give it back.
		return abort(ctx, in, res, catalog.JobCanceled, "canceled by user", nil)
	}
	watchRenderStart(ctx, in)

	rendered, renderErr := render(ctx, in)
	if ctx.Err() != nil {
		// Cancelled: refund everything, whatever was rendered.
		return abort(ctx, in, res, catalog.JobCanceled, "canceled by user", allImageNames(in))
	}
	if len(rendered.Images) == 0 {
		return abort(ctx, in, res, catalog.JobFailed, failureReason(renderErr), allImageNames(in))
	}
	return finalize(ctx, in, res, rendered)
}

// admit takes the job's hold. The workflow runs the Admit activity itself,
// first thing, rather than from the admit update: an update is durable only
// once the workflow task that accepted it is persisted, while the hold it
// writes is durable at once, so a server crash between the two would leave a
// hold whose update never comes back. Run by the workflow, the admission is
// simply replayed (Admit is idempotent by job id) and the job goes on. The
// admit update only waits for the answer; every admit of a run gets the same.
func admit(ctx workflow.Context, in GenerationInput) (activities.AdmitResult, error) {
	var (
		done    bool
		result  activities.AdmitResult
		refusal error
		first   string // the first admit update's id: the request that created the run
	)
	answer := func(ctx workflow.Context) (activities.AdmitResult, error) {
		if info := workflow.GetCurrentUpdateInfo(ctx); first == "" && info != nil {
			first = info.ID
		}
		if err := workflow.Await(ctx, func() bool { return done }); err != nil {
			return activities.AdmitResult{}, err
		}
		r := result
		r.FirstUpdateID = first
		return r, refusal
	}
	if err := workflow.SetUpdateHandler(ctx, AdmitUpdate, answer); err != nil {
		return activities.AdmitResult{}, fmt.Errorf("register admit update: %w", err)
	}
	// A cancel must not interrupt a hold half-taken: admit to the end, then
	// the caller sees the cancel and releases.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	refusal = workflow.ExecuteLocalActivity(ledgerContext(dctx), ledgerActivity.Admit, admitInput(ctx, in)).Get(dctx, &result)
	done = true
	if refusal != nil {
		// Let the waiting admit updates answer before the run fails.
		_ = workflow.Await(dctx, func() bool { return workflow.AllHandlersFinished(dctx) })
	}
	return result, refusal
}

// admissionFailed ends a run whose hold could not be taken. A refusal (402,
// 429) leaves nothing behind; any other failure may have committed a hold
// whose answer was lost, so the run releases whatever the job holds.
func admissionFailed(ctx workflow.Context, in GenerationInput, err error) (GenerationResult, error) {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && (appErr.Type() == activities.TypeInsufficientCredits || appErr.Type() == activities.TypeConcurrencyLimit) {
		return GenerationResult{Status: catalog.JobFailed, Error: err.Error()}, err
	}
	return abort(ctx, in, GenerationResult{}, catalog.JobFailed, "admission failed: "+failureReason(err), nil)
}

func admitInput(ctx workflow.Context, in GenerationInput) activities.AdmitInput {
	return activities.AdmitInput{
		JobID: in.JobID, UserID: in.UserID, IdempotencyKey: in.IdempotencyKey, RequestHash: in.RequestHash,
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Plan: in.Plan, GPUTier: in.GPUTier,
		Params: in.Params, Credits: in.PricePerImage * in.Params.BatchSize, MaxConcurrent: in.MaxConcurrent,
	}
}

// watchRenderStart marks the job running when a GPU worker of an earlier
// version reports that its render began (activities.RenderStartedSignal).
// Today's GPU workers put the start in the job's live status instead, which
// the API reads and records (no signal, no extra workflow task or marker);
// the handler stays so that runs in flight during an upgrade, whose history
// holds the signal and its MarkRunning marker, replay unchanged. Only the
// first report counts; later ones (retries) are drained so none is left
// unhandled.
func watchRenderStart(ctx workflow.Context, in GenerationInput) {
	starts := workflow.GetSignalChannel(ctx, activities.RenderStartedSignal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		var first activities.RenderStarted
		if !starts.Receive(ctx, &first) || ctx.Err() != nil {
			return
		}
		err := workflow.ExecuteLocalActivity(ledgerContext(ctx), ledgerActivity.MarkRunning, activities.MarkRunningInput{
			JobID: in.JobID, UserID: in.UserID, StartedAt: first.StartedAt}).Get(ctx, nil)
		if err != nil && ctx.Err() == nil {
			workflow.GetLogger(ctx).Warn("mark job running", "job_id", in.JobID, "error", err)
		}
		for starts.Receive(ctx, nil) {
		}
	})
}

// render runs the Render activity on the tier's GPU queue. On failure it
// still returns the images the last attempt stored, taken from the error's
// details or the last heartbeat.
func render(ctx workflow.Context, in GenerationInput) (activities.RenderResult, error) {
	hb := in.RenderHeartbeat
	if hb <= 0 {
		hb = 30 * time.Second
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           catalog.GPUQueue(in.GPUTier),
		StartToCloseTimeout: time.Hour,
		HeartbeatTimeout:    hb,
		WaitForCancellation: true,
		Priority:            temporal.Priority{PriorityKey: in.PriorityKey, FairnessKey: in.UserID},
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        3,
			NonRetryableErrorTypes: []string{activities.TypeInvalidRequest},
		},
	})
	var res activities.RenderResult
	err := workflow.ExecuteActivity(actx, renderActivity.Render, activities.RenderInput{
		JobID: in.JobID, UserID: in.UserID, Params: in.Params}).Get(ctx, &res)
	if err == nil {
		return res, nil
	}
	return partialResult(err), err
}

// partialResult recovers the images stored before a render failed.
func partialResult(err error) activities.RenderResult {
	var res activities.RenderResult
	var appErr *temporal.ApplicationError
	var timeoutErr *temporal.TimeoutError
	switch {
	case errors.As(err, &appErr) && appErr.HasDetails():
		_ = appErr.Details(&res)
	case errors.As(err, &timeoutErr) && timeoutErr.HasLastHeartbeatDetails():
		_ = timeoutErr.LastHeartbeatDetails(&res)
	}
	return res
}

func failureReason(err error) string {
	if err == nil {
		return "render produced no image"
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return err.Error()
}

// finalize settles the job for the images produced and deletes the objects
// of images that were never finished.
func finalize(ctx workflow.Context, in GenerationInput, res GenerationResult, r activities.RenderResult) (GenerationResult, error) {
	// The settle must happen even if a cancel arrives now: the images exist.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var fr activities.FinalizeResult
	err := workflow.ExecuteLocalActivity(ledgerContext(dctx), ledgerActivity.Finalize, activities.FinalizeInput{
		JobID: in.JobID, UserID: in.UserID, GPUTier: in.GPUTier, Params: in.Params, Images: r.Images,
		Credits: in.PricePerImage * min(len(r.Images), in.Params.BatchSize), ComputeSeconds: r.ComputeSeconds,
		StartedAt: r.StartedAt,
	}).Get(dctx, &fr)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == activities.TypeCancelRequested {
		// The cancel reached the job's row before the settle: it was
		// answered as accepted, so the job ends canceled and refunded.
		return abort(ctx, in, res, catalog.JobCanceled, "canceled by user", allImageNames(in))
	}
	if err != nil {
		return abort(ctx, in, res, catalog.JobFailed, "settle failed: "+failureReason(err), allImageNames(in))
	}
	deleteImages(dctx, in, missingNames(in, r))
	res.Status, res.ImagesProduced, res.CreditsSettled = catalog.JobCompleted, fr.ImagesProduced, fr.CreditsSettled
	if !fr.NoListeners || in.Webhook != nil {
		// Finalize read whether anyone takes the event: a job nobody
		// listens to ends with one local activity, not two.
		emitGenerationEnd(ctx, in, res, settledNames(in, r))
	}
	emitCreditsLow(ctx, in.UserID, fr.LowBalance)
	return res, nil
}

// abort releases the hold and deletes the job's objects, on a disconnected
// context so that a cancelled workflow still refunds.
func abort(ctx workflow.Context, in GenerationInput, res GenerationResult, status, reason string, names []string) (GenerationResult, error) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var ar activities.AbortResult
	err := workflow.ExecuteLocalActivity(ledgerContext(dctx), ledgerActivity.Abort, activities.AbortInput{
		JobID: in.JobID, UserID: in.UserID, Status: status, Reason: reason, BatchSize: in.Params.BatchSize,
	}).Get(dctx, &ar)
	if err != nil {
		return res, fmt.Errorf("release hold of job %s: %w", in.JobID, err)
	}
	deleteImages(dctx, in, names)
	res.Status, res.Error = status, reason
	if ar.HoldStatus == store.HoldVoided {
		// This run ended the job (a hold already posted means it was
		// settled; no hold means the job never existed).
		emitGenerationEnd(ctx, in, res, nil)
	}
	if status == catalog.JobCanceled {
		return res, temporal.NewCanceledError(reason)
	}
	return res, temporal.NewNonRetryableApplicationError(reason, "GenerationFailed", nil)
}

// deleteImages removes objects; a failure is logged, not fatal: the money is
// already right, and an orphaned object is a storage cost, not a charge.
func deleteImages(ctx workflow.Context, in GenerationInput, names []string) {
	if len(names) == 0 {
		return
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           catalog.ControlQueue,
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 10, MaximumInterval: time.Minute},
	})
	err := workflow.ExecuteActivity(actx, objectsActivity.DeleteImages, activities.DeleteImagesInput{
		UserID: in.UserID, Names: names}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("delete job objects", "job_id", in.JobID, "error", err)
	}
}

func allImageNames(in GenerationInput) []string {
	names := make([]string, in.Params.BatchSize)
	for i := range names {
		names[i] = activities.ImageName(in.JobID, i)
	}
	return names
}

// settledNames are the images a settle paid for: the first BatchSize
// rendered.
func settledNames(in GenerationInput, r activities.RenderResult) []string {
	names := make([]string, 0, len(r.Images))
	for _, img := range r.Images[:min(len(r.Images), in.Params.BatchSize)] {
		names = append(names, img.Name)
	}
	return names
}

func missingNames(in GenerationInput, r activities.RenderResult) []string {
	have := make(map[string]bool, len(r.Images))
	for _, img := range r.Images {
		have[img.Name] = true
	}
	var missing []string
	for _, n := range allImageNames(in) {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	return missing
}

// ledgerContext runs ledger activities locally on the control worker: they
// are short Postgres transactions, and skipping a task-queue round trip
// halves the admit latency the API waits on.
func ledgerContext(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: time.Hour,
		StartToCloseTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    100 * time.Millisecond,
			BackoffCoefficient: 2,
			MaximumInterval:    10 * time.Second,
			NonRetryableErrorTypes: []string{activities.TypeInsufficientCredits, activities.TypeConcurrencyLimit,
				activities.TypeHoldVoided, activities.TypeCancelRequested},
		},
	})
}

// Activity references: nil receivers whose method values name the
// activities to schedule (ExecuteActivity(ctx, ledgerActivity.Admit, ...));
// the workers register the real ones.
var (
	ledgerActivity  *activities.Ledger
	renderActivity  *activities.Render
	objectsActivity *activities.Objects
)
