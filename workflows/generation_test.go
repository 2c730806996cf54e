package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/webhook"
)

type harness struct {
	testsuite.WorkflowTestSuite
	env       *testsuite.TestWorkflowEnvironment
	in        GenerationInput
	admitErr  error
	admitted  *activities.AdmitResult
	admitFn   func(activities.AdmitInput) (activities.AdmitResult, error)
	finalized []activities.FinalizeInput
	aborted   []activities.AbortInput
	deleted   [][]string
	events    []activities.WebhookEventInput
	// lowBalance is what Finalize reports about the low-balance notice.
	lowBalance *activities.LowBalance
	// noListeners is what Finalize reports about the user's endpoints.
	noListeners bool
	// finalizeErr, when set, is what Finalize fails with.
	finalizeErr error
}

func newHarness(t *testing.T, batch int) *harness {
	h := &harness{}
	h.env = h.NewTestWorkflowEnvironment()
	h.env.RegisterWorkflow(Generation)
	h.env.RegisterActivity(&activities.Ledger{})
	h.env.RegisterActivity(&activities.Render{})
	h.env.RegisterActivity(&activities.Objects{})
	h.env.RegisterActivity(&activities.Webhooks{})
	h.in = GenerationInput{JobID: "job-1", UserID: "user-1", Plan: "pro", GPUTier: catalog.TierA10G, PriorityKey: PriorityHigh,
		MaxConcurrent: 4, PricePerImage: 3,
		Params: activities.Params{Prompt: "a lighthouse", Model: "sdxl", Width: 1024, Height: 1024, Steps: 30, BatchSize: batch}}
	h.admitFn = func(in activities.AdmitInput) (activities.AdmitResult, error) {
		return activities.AdmitResult{JobID: in.JobID, CreditsHeld: in.Credits, Status: catalog.JobQueued}, nil
	}
	h.env.OnActivity(ledgerActivity.Admit, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AdmitInput) (activities.AdmitResult, error) {
			return h.admitFn(in)
		})
	h.env.OnActivity(ledgerActivity.Finalize, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FinalizeInput) (activities.FinalizeResult, error) {
			h.finalized = append(h.finalized, in)
			if h.finalizeErr != nil {
				return activities.FinalizeResult{}, h.finalizeErr
			}
			return activities.FinalizeResult{CreditsSettled: in.Credits, ImagesProduced: len(in.Images),
				LowBalance: h.lowBalance, NoListeners: h.noListeners}, nil
		})
	h.env.OnActivity(ledgerActivity.Abort, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AbortInput) (activities.AbortResult, error) {
			h.aborted = append(h.aborted, in)
			return activities.AbortResult{HoldStatus: store.HoldVoided}, nil
		})
	h.env.OnActivity(objectsActivity.DeleteImages, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeleteImagesInput) error {
			h.deleted = append(h.deleted, in.Names)
			return nil
		})
	h.env.OnActivity(webhookActivity.EmitWebhookEvent, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.WebhookEventInput) (activities.WebhookEventResult, error) {
			h.events = append(h.events, in)
			return activities.WebhookEventResult{}, nil
		})
	return h
}

// event returns the only webhook event the run emitted, decoded.
func (h *harness) event(t *testing.T) (activities.WebhookEventInput, GenerationEventJob) {
	t.Helper()
	if len(h.events) != 1 {
		t.Fatalf("webhook events %+v, want exactly one", h.events)
	}
	var d GenerationEventData
	if err := json.Unmarshal(h.events[0].Data, &d); err != nil {
		t.Fatal(err)
	}
	return h.events[0], d.Generation
}

// admit sends the admit update as the API does, right after the start.
func (h *harness) admit(t *testing.T) {
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(AdmitUpdate, "admit", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("admit rejected: %v", err) },
			OnAccept: func() {},
			OnComplete: func(r any, err error) {
				h.admitErr = err
				if ar, ok := r.(activities.AdmitResult); ok && err == nil {
					h.admitted = &ar
				}
			},
		})
	}, 0)
}

func images(n int) []store.ImageRecord {
	out := make([]store.ImageRecord, n)
	for i := range out {
		out[i] = store.ImageRecord{Name: activities.ImageName("job-1", i), Key: "k", Width: 1024, Height: 1024}
	}
	return out
}

func (h *harness) result(t *testing.T) (GenerationResult, error) {
	t.Helper()
	if !h.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var r GenerationResult
	err := h.env.GetWorkflowError()
	if err == nil {
		if gerr := h.env.GetWorkflowResult(&r); gerr != nil {
			t.Fatal(gerr)
		}
	}
	return r, err
}

func TestGenerationSettlesFullBatch(t *testing.T) {
	h := newHarness(t, 2)
	h.env.OnActivity(renderActivity.Render, mock.Anything, mock.Anything).Return(activities.RenderResult{Images: images(2), ComputeSeconds: 3}, nil).Once()
	h.admit(t)
	h.env.ExecuteWorkflow(Generation, h.in)
	r, err := h.result(t)
	if err != nil {
		t.Fatal(err)
	}
	if h.admitted == nil || h.admitted.CreditsHeld != 6 {
		t.Fatalf("admit result = %+v, want 6 credits held", h.admitted)
	}
	if r.Status != catalog.JobCompleted || r.CreditsSettled != 6 || r.ImagesProduced != 2 {
		t.Fatalf("result = %+v", r)
	}
	if len(h.finalized) != 1 || h.finalized[0].ComputeSeconds != 3 || len(h.aborted) != 0 || len(h.deleted) != 0 {
		t.Fatalf("finalized %d aborted %d deleted %v", len(h.finalized), len(h.aborted), h.deleted)
	}
	ev, job := h.event(t)
	if ev.Type != webhook.GenerationCompleted || ev.UserID != "user-1" ||
		ev.ID != activities.WebhookEventID(webhook.GenerationCompleted, "job-1") || job.ID != "job-1" ||
		job.Status != catalog.JobCompleted || job.CreditsSettled != 6 || job.ImagesProduced != 2 ||
		len(job.Images) != 2 || job.Images[1] != "job-1_1" || job.Links.Self != "/v1/generations/job-1" {
		t.Fatalf("webhook event %+v, job %+v", ev, job)
	}
}

func TestGenerationRendersOnTierQueueWithPriority(t *testing.T) {
	h := newHarness(t, 1)
	var queue string
	h.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "Render" {
			queue = info.TaskQueue
		}
	})
	h.env.OnActivity(renderActivity.Render, mock.Anything, mock.Anything).Return(activities.RenderResult{Images: images(1)}, nil)
	h.admit(t)
	h.env.ExecuteWorkflow(Generation, h.in)
	if _, err := h.result(t); err != nil {
		t.Fatal(err)
	}
	if queue != "gpu-a10g" {
		t.Fatalf("render ran on %q, want gpu-a10g", queue)
	}
}

func TestGenerationRefundsAfterGPUFailure(t *testing.T) {
	h := newHarness(t, 1)
	calls := 0
	h.env.OnActivity(renderActivity.Render, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RenderInput) (activities.RenderResult, error) {
			calls++
			return activities.RenderResult{}, temporal.NewApplicationError("CUDA out of memory", activities.TypeRenderFailed)
		})
	h.admit(t)
	h.env.ExecuteWorkflow(Generation, h.in)
	r, err := h.result(t)
	if err == nil {
		t.Fatalf("workflow succeeded: %+v", r)
	}
	if calls != 3 {
		t.Fatalf("render attempts = %d, want 3 (retries)", calls)
	}
	if len(h.finalized) != 0 || len(h.aborted) != 1 || h.aborted[0].Status != catalog.JobFailed {
		t.Fatalf("finalized %v aborted %+v", h.finalized, h.aborted)
	}
	if len(h.deleted) != 1 || len(h.deleted[0]) != 1 {
		t.Fatalf("partial objects not deleted: %v", h.deleted)
	}
	if ev, job := h.event(t); ev.Type != webhook.GenerationFailed || job.Error != "CUDA out of memory" || job.CreditsSettled != 0 {
		t.Fatalf("webhook event %+v, job %+v", ev, job)
	}
}

func TestGenerationCancelMidRenderRefunds(t *testing.T) {
	h := newHarness(t, 1)
	h.env.OnActivity(renderActivity.Render, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, _ activities.RenderInput) (activities.RenderResult, error) {
			h.env.CancelWorkflow() // the user cancels while the GPU is busy
			<-ctx.Done()
			return activities.RenderResult{}, ctx.Err()
		})
	h.admit(t)
	h.env.ExecuteWorkflow(Generation, h.in)
	_, err := h.result(t)
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("workflow error = %v, want canceled", err)
	}
	if len(h.finalized) != 0 || len(h.aborted) != 1 || h.aborted[0].Status != catalog.JobCanceled {
		t.Fatalf("finalized %v aborted %+v", h.finalized, h.aborted)
	}
	if ev, job := h.event(t); ev.Type != webhook.GenerationCanceled || job.Status != catalog.JobCanceled {
		t.Fatalf("webhook event %+v, job %+v", ev, job)
	}
}

// A cancel that reached the job's row after the render but before the
// settle wins: the job ends canceled, nothing is charged and its images
// are deleted.
func TestGenerationCancelBeforeSettleRefunds(t *testing.T) {
	h := newHarness(t, 2)
	h.env.OnActivity(renderActivity.Render, mock.Anything, mock.Anything).Return(
		activities.RenderResult{Images: images(2), ComputeSeconds: 2}, nil)
	h.finalizeErr = temporal.NewNonRetryableApplicationError("job cancel requested before it was settled",
		activities.TypeCancelRequested, nil)
	h.admit(t)
	h.env.ExecuteWorkflow(Generation, h.in)
	_, err := h.result(t)
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("workflow error = %v, want canceled", err)
	}
	if len(h.finalized) != 1 || len(h.aborted) != 1 || h.aborted[0].Status != catalog.JobCanceled {
		t.Fatalf("finalized %d times, aborted %+v", len(h.finalized), h.aborted)
	}
	if len(h.deleted) != 1 || len(h.deleted[0]) != 2 {
		t.Fatalf("rendered images not deleted: %v", h.deleted)
	}
	if ev, job := h.event(t); ev.Type != webhook.GenerationCanceled || job.CreditsSettled != 0 {
		t.Fatalf("webhook event %+v, job %+v", ev, job)
	}
}

func TestGenerationSettlesPartialBatch(t *testing.T) {
	h := newHarness(t, 4)
	h.env.OnActivity(renderActivity.Render, mock.Anything, mock.Anything).Return(activities.RenderResult{},
		temporal.NewNonRetryableApplicationError("engine died", activities.TypeInvalidRequest, nil,
			activities.RenderResult{Images: images(2), ComputeSeconds: 2}))
	h.admit(t)
	h.env.ExecuteWorkflow(Generation, h.in)
	r, err := h.result(t)
	if err != nil {
		t.Fatal(err)
	}
	if h.admitted.CreditsHeld != 12 || r.CreditsSettled != 6 || r.ImagesProduced != 2 {
		t.Fatalf("held %d settled %d produced %d; want 12, 6 (2 of 4 images), 2", h.admitted.CreditsHeld, r.CreditsSettled, r.ImagesProduced)
	}
	if len(h.deleted) != 1 || len(h.deleted[0]) != 2 || h.deleted[0][0] != "job-1_2" {
		t.Fatalf("unfinished images not cleaned up: %v", h.deleted)
	}
}

func TestGenerationInsufficientCreditsRunsNothing(t *testing.T) {
	h := newHarness(t, 1)
	h.admitFn = func(activities.AdmitInput) (activities.AdmitResult, error) {
		return activities.AdmitResult{}, temporal.NewNonRetryableApplicationError("insufficient credits",
			activities.TypeInsufficientCredits, nil, activities.InsufficientCreditsDetails{Needed: 3, Available: 1})
	}
	rendered := false
	h.env.OnActivity(renderActivity.Render, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.RenderInput) (activities.RenderResult, error) {
			rendered = true
			return activities.RenderResult{}, nil
		})
	h.admit(t)
	h.env.ExecuteWorkflow(Generation, h.in)
	_, err := h.result(t)
	var appErr *temporal.ApplicationError
	if !errors.As(h.admitErr, &appErr) || appErr.Type() != activities.TypeInsufficientCredits {
		t.Fatalf("admit error = %v, want %s", h.admitErr, activities.TypeInsufficientCredits)
	}
	var d activities.InsufficientCreditsDetails
	if err := appErr.Details(&d); err != nil || d.Needed != 3 || d.Available != 1 {
		t.Fatalf("details = %+v, %v", d, err)
	}
	if err == nil || rendered || len(h.finalized)+len(h.aborted) != 0 {
		t.Fatalf("workflow err %v rendered %v finalized %v aborted %v", err, rendered, h.finalized, h.aborted)
	}
	if len(h.events) != 0 {
		t.Fatalf("a refused admission (no job) emitted %+v", h.events)
	}
}

// Two admit updates (a retried POST) hold credits once and return the same job.
func TestGenerationDuplicateAdmitHoldsOnce(t *testing.T) {
	h := newHarness(t, 1)
	admits := 0
	h.admitFn = func(in activities.AdmitInput) (activities.AdmitResult, error) {
		admits++
		return activities.AdmitResult{JobID: in.JobID, CreditsHeld: in.Credits}, nil
	}
	h.env.OnActivity(renderActivity.Render, mock.Anything, mock.Anything).Return(activities.RenderResult{Images: images(1)}, nil)
	var second activities.AdmitResult
	h.admit(t)
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(AdmitUpdate, "admit-2", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("second admit rejected: %v", err) },
			OnAccept: func() {},
			OnComplete: func(r any, err error) {
				if err == nil {
					second = r.(activities.AdmitResult)
				}
			},
		})
	}, 0)
	h.env.ExecuteWorkflow(Generation, h.in)
	if _, err := h.result(t); err != nil {
		t.Fatal(err)
	}
	if admits != 1 || second.JobID != "job-1" || second.CreditsHeld != 3 || len(h.finalized) != 1 {
		t.Fatalf("admit ran %d times, second answer %+v, finalized %d", admits, second, len(h.finalized))
	}
}

// A run whose admit update was lost (the server crashed after the hold's
// commit, before the workflow task that accepted the update was persisted)
// admits by itself and runs the job to its end.
func TestGenerationAdmitsWithoutTheUpdate(t *testing.T) {
	h := newHarness(t, 1)
	h.env.SetTestTimeout(10 * time.Second)
	h.env.OnActivity(renderActivity.Render, mock.Anything, mock.Anything).Return(activities.RenderResult{Images: images(1)}, nil).Once()
	h.env.ExecuteWorkflow(Generation, h.in)
	r, err := h.result(t)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != catalog.JobCompleted || r.CreditsSettled != 3 || len(h.finalized) != 1 {
		t.Fatalf("result = %+v, finalized %d", r, len(h.finalized))
	}
}

// A cancel that arrives while the hold is being taken still ends with the
// hold released and nothing rendered.
func TestGenerationCanceledWhileAdmittingReleasesTheHold(t *testing.T) {
	h := newHarness(t, 2)
	h.admitFn = func(in activities.AdmitInput) (activities.AdmitResult, error) {
		h.env.CancelWorkflow()
		return activities.AdmitResult{JobID: in.JobID, CreditsHeld: in.Credits, Status: catalog.JobQueued}, nil
	}
	h.admit(t)
	h.env.ExecuteWorkflow(Generation, h.in)
	_, err := h.result(t)
	var canceled *temporal.CanceledError
	if !errors.As(err, &canceled) {
		t.Fatalf("workflow error = %v, want canceled", err)
	}
	if len(h.aborted) != 1 || h.aborted[0].Status != catalog.JobCanceled || len(h.finalized) != 0 {
		t.Fatalf("aborted %+v finalized %d", h.aborted, len(h.finalized))
	}
}

// An admission that fails for another reason than the user's money or plan
// (the database, for an hour) may have committed a hold whose answer was
// lost: the run releases whatever the job holds before it ends.
func TestGenerationFailedAdmissionReleasesAnyHold(t *testing.T) {
	h := newHarness(t, 1)
	h.admitFn = func(activities.AdmitInput) (activities.AdmitResult, error) {
		return activities.AdmitResult{}, errors.New("connection reset by peer")
	}
	h.admit(t)
	h.env.ExecuteWorkflow(Generation, h.in)
	if _, err := h.result(t); err == nil {
		t.Fatal("workflow succeeded, want failed")
	}
	if h.admitErr == nil {
		t.Fatal("the admit update answered no error")
	}
	if len(h.aborted) != 1 || h.aborted[0].Status != catalog.JobFailed {
		t.Fatalf("aborted %+v, want one release as failed", h.aborted)
	}
}

// The GPU worker's report that the render began marks the job running, once.
func TestGenerationMarksRunningWhenRenderStarts(t *testing.T) {
	h := newHarness(t, 1)
	var marked []activities.MarkRunningInput
	h.env.OnActivity(ledgerActivity.MarkRunning, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.MarkRunningInput) error {
			marked = append(marked, in)
			return nil
		})
	started := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	h.env.OnActivity(renderActivity.Render, mock.Anything, mock.Anything).After(time.Minute).Return(
		activities.RenderResult{Images: images(1), StartedAt: started}, nil).Once()
	for i, at := range []time.Duration{time.Second, 2 * time.Second} {
		h.env.RegisterDelayedCallback(func() {
			h.env.SignalWorkflow(activities.RenderStartedSignal, activities.RenderStarted{Attempt: int32(i + 1),
				StartedAt: started.Add(at)})
		}, at)
	}
	h.admit(t)
	h.env.ExecuteWorkflow(Generation, h.in)
	if _, err := h.result(t); err != nil {
		t.Fatal(err)
	}
	if len(marked) != 1 || !marked[0].StartedAt.Equal(started.Add(time.Second)) || marked[0].JobID != "job-1" {
		t.Fatalf("marked running %+v, want once with the first start", marked)
	}
	if len(h.finalized) != 1 || !h.finalized[0].StartedAt.Equal(started) {
		t.Fatalf("finalize %+v, want the render's first start", h.finalized)
	}
}

// An image-to-image job's sources travel to the GPU by name only (the
// render reads the pictures from the bucket); a render that finds them
// gone is not retried, and the job is refunded.
func TestGenerationCarriesSourcesAndFailsAtOnceWithoutThem(t *testing.T) {
	h := newHarness(t, 1)
	strength := 0.4
	h.in.Params.InitImage, h.in.Params.Strength, h.in.Params.Mask = "6c0f3b1a-0000-4000-8000-000000000000", &strength,
		"6c0f3b1a-0000-4000-8000-000000000001"
	var got []activities.RenderInput
	h.env.OnActivity(renderActivity.Render, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RenderInput) (activities.RenderResult, error) {
			got = append(got, in)
			return activities.RenderResult{}, temporal.NewNonRetryableApplicationError(
				"engine: invalid request: the init image was deleted after the job was admitted", activities.TypeInvalidRequest, nil)
		})
	h.admit(t)
	h.env.ExecuteWorkflow(Generation, h.in)
	r, err := h.result(t)
	if err == nil || r.Status != "" && r.Status != catalog.JobFailed {
		t.Fatalf("result %+v, %v: want the job failed", r, err)
	}
	if len(got) != 1 {
		t.Fatalf("render ran %d times, want once (not retried)", len(got))
	}
	p := got[0].Params
	if p.InitImage != h.in.Params.InitImage || p.Strength == nil || *p.Strength != 0.4 || p.Mask != h.in.Params.Mask {
		t.Fatalf("render got params %+v, want the sources", p)
	}
	if len(h.aborted) != 1 || h.aborted[0].Status != catalog.JobFailed || len(h.finalized) != 0 {
		t.Fatalf("aborted %+v, finalized %d: want the hold released", h.aborted, len(h.finalized))
	}
}

// A settle that takes the balance under the threshold (the low-balance
// notice was claimed) is a credits.low webhook, keyed by the notice, after
// the job's own.
func TestGenerationTellsWebhooksOfALowBalance(t *testing.T) {
	h := newHarness(t, 1)
	h.lowBalance = &activities.LowBalance{NoticeID: "notice-9", Available: 4, Threshold: 10}
	h.env.OnActivity(renderActivity.Render, mock.Anything, mock.Anything).Return(activities.RenderResult{Images: images(1)}, nil)
	h.admit(t)
	h.env.ExecuteWorkflow(Generation, h.in)
	if _, err := h.result(t); err != nil {
		t.Fatal(err)
	}
	if len(h.events) != 2 || h.events[0].Type != webhook.GenerationCompleted || h.events[1].Type != webhook.CreditsLow ||
		h.events[1].ID != activities.WebhookEventID(webhook.CreditsLow, "notice-9") {
		t.Fatalf("events %+v", h.events)
	}
	var d CreditsLowEventData
	if err := json.Unmarshal(h.events[1].Data, &d); err != nil || d.Available != 4 || d.Threshold != 10 {
		t.Fatalf("credits.low data %s: %v", h.events[1].Data, err)
	}
}

// A job whose user has no endpoint for generation.completed ends without
// the event's local activity, unless the request named its own webhook.
func TestGenerationSkipsAnEventNobodyTakes(t *testing.T) {
	for _, request := range []bool{false, true} {
		h := newHarness(t, 1)
		h.noListeners = true
		if request {
			h.in.Webhook = &activities.RequestWebhook{URL: "https://example.com/hook"}
		}
		h.env.OnActivity(renderActivity.Render, mock.Anything, mock.Anything).Return(activities.RenderResult{Images: images(1)}, nil)
		h.admit(t)
		h.env.ExecuteWorkflow(Generation, h.in)
		if r, err := h.result(t); err != nil || r.Status != catalog.JobCompleted || len(h.finalized) != 1 {
			t.Fatalf("request webhook %v: result %+v, %v, finalized %d", request, r, err, len(h.finalized))
		}
		if request {
			if ev, _ := h.event(t); ev.Type != webhook.GenerationCompleted || ev.Request == nil {
				t.Fatalf("event %+v, want generation.completed to the request's webhook", ev)
			}
		} else if len(h.events) != 0 {
			t.Fatalf("events %+v, want none", h.events)
		}
	}
}
