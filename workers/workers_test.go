package workers_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine/sim"
	"github.com/easel/easel/internal/objects"
	"github.com/easel/easel/internal/progress"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
	"github.com/easel/easel/workers"
	"github.com/easel/easel/workflows"
)

// newDeps connects the workers to real services: Postgres, Redis,
// versitygw and an embedded Temporal server.
func newDeps(t *testing.T) workers.Deps {
	t.Helper()
	ctx := context.Background()
	bucket, err := objects.New(ctx, testenv.S3(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := testenv.Redis(t)
	return workers.Deps{Temporal: testenv.Temporal(t, workflows.SearchAttributes),
		Store: store.New(testenv.Postgres(t)), Redis: rdb, Progress: progress.NewHub(rdb), Objects: bucket}
}

func startWorker(t *testing.T, w interface {
	Start() error
	Stop()
}) {
	t.Helper()
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
}

// A generation runs end to end on the two workers the package builds, as
// `easel worker` and `easel dev` build them: the control worker holds and
// settles the credits, the GPU worker of the user's tier renders and
// stores the image, and the control worker has started the hold reaper.
func TestControlAndGPUWorkersSettleAGeneration(t *testing.T) {
	d := newDeps(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	startWorker(t, workers.NewControl(d))
	gpuWorker := workers.NewGPU(d, catalog.TierT4, sim.New(sim.Config{}), workers.GPUOptions{})
	if gpuWorker.Render.Tier != catalog.TierT4 || gpuWorker.Render.GPUs == nil || gpuWorker.Render.Progress == nil {
		t.Fatalf("render activity wired as %+v", gpuWorker.Render)
	}
	startWorker(t, gpuWorker)

	u, err := d.Store.UpsertUser(ctx, uuid.NewString()+"@example.com", "Worker Test", "sub-"+uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := d.Store.Grant(ctx, store.GrantInput{UserID: u.ID, Amount: 10, Source: "test",
		ValidFrom: now.Add(-time.Hour), ValidUntil: now.Add(time.Hour), ReferenceID: "workers-test/" + u.ID}); err != nil {
		t.Fatal(err)
	}
	job := uuid.NewString()
	in := workflows.GenerationInput{JobID: job, UserID: u.ID, IdempotencyKey: job, RequestHash: "h", Plan: "free",
		GPUTier: catalog.TierT4, PriorityKey: workflows.PriorityStandard, MaxConcurrent: 1, PricePerImage: 3,
		Params: activities.Params{Prompt: "a lighthouse", Model: "sd-1.5", Width: 64, Height: 64, Steps: 2,
			BatchSize: 1, Seed: 7}}
	run, err := d.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.GenerationID(job),
		TaskQueue: catalog.ControlQueue}, workflows.GenerationWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.GenerationResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("generation: %v", err)
	}
	if res.Status != catalog.JobCompleted || res.ImagesProduced != 1 || res.CreditsSettled != 3 {
		t.Fatalf("result = %+v, want completed with 1 image and 3 credits settled", res)
	}
	bal, err := d.Store.Balance(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bal.Available != 7 || bal.Held != 0 {
		t.Fatalf("balance after settling 3 of 10 = %+v", bal)
	}
	images, err := d.Store.ListImages(ctx, u.ID, store.Page{Limit: 10}, store.ImageFilter{})
	if err != nil || len(images) != 1 {
		t.Fatalf("images = %v, %v", images, err)
	}
	if _, err := d.Objects.Get(ctx, images[0].Key); err != nil {
		t.Fatalf("the image is not in the bucket: %v", err)
	}
	desc, err := d.Temporal.DescribeWorkflowExecution(ctx, workflows.HoldReaperID, "")
	if err != nil {
		t.Fatalf("hold reaper: %v", err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("hold reaper is %v", st)
	}
}

// Every control worker starts the hold reaper; a second one joins the run
// the first started instead of starting another.
func TestControlWorkersShareOneHoldReaper(t *testing.T) {
	d := newDeps(t)
	ctx := context.Background()
	startWorker(t, workers.NewControl(d))
	first, err := d.Temporal.DescribeWorkflowExecution(ctx, workflows.HoldReaperID, "")
	if err != nil {
		t.Fatal(err)
	}
	startWorker(t, workers.NewControl(d))
	second, err := d.Temporal.DescribeWorkflowExecution(ctx, workflows.HoldReaperID, "")
	if err != nil {
		t.Fatal(err)
	}
	a, b := first.GetWorkflowExecutionInfo().GetExecution().GetRunId(), second.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	if a != b {
		t.Fatalf("hold reaper runs %s then %s, want one", a, b)
	}
}
