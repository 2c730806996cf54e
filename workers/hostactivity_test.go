package workers_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/autoscale"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/devstack/temporalserver"
	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/progress"
	"github.com/easel/easel/internal/testenv"
	"github.com/easel/easel/workers"
)

// heldEngine renders nothing until released: its render keeps the GPU
// worker's slot in use for as long as the test needs.
type heldEngine struct {
	started chan struct{}
	release chan struct{}
}

func (heldEngine) Name() string { return "held" }

func (e heldEngine) Render(ctx context.Context, _ engine.Request, _ func(engine.Progress)) (engine.Image, error) {
	e.started <- struct{}{}
	select {
	case <-e.release:
	case <-ctx.Done():
	}
	return engine.Image{}, errors.New("released")
}

// renderOnce asks the t4 GPU queue for one render, as the generation
// workflow does, without retries.
func renderOnce(ctx workflow.Context, in activities.RenderInput) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{TaskQueue: catalog.GPUQueue(catalog.TierT4),
		StartToCloseTimeout: time.Minute, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
	return workflow.ExecuteActivity(ctx, "Render", in).Get(ctx, nil)
}

// A GPU worker that names its EC2 instance (GPU_INSTANCE_ID_FILE) is seen
// by the autoscaler's host activity, through Temporal worker heartbeats
// on the embedded server, as that instance: idle while it waits, busy
// while it renders, idle again afterwards; its stop removes the host.
func TestGPUWorkerHeartbeatsNameItsInstance(t *testing.T) {
	srv, _ := testenv.TemporalServer(t, temporalserver.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// As `easel worker` dials, but beating every second to keep the test short.
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.HostPort(), Namespace: srv.Namespace(),
		Logger: sdklog.NewStructuredLogger(quiet), WorkerHeartbeatInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	rdb := testenv.Redis(t)
	d := workers.Deps{Temporal: c, Redis: rdb, Progress: progress.NewHub(rdb)}

	const instance = "i-0123456789abcdef0"
	eng := heldEngine{started: make(chan struct{}, 1), release: make(chan struct{})}
	gpuWorker := workers.NewGPU(d, catalog.TierT4, eng, workers.GPUOptions{InstanceID: instance})
	startWorker(t, gpuWorker)
	caller := worker.New(c, "hostactivity-test", worker.Options{})
	caller.RegisterWorkflow(renderOnce)
	startWorker(t, caller)

	hb := &autoscale.WorkerHeartbeats{Service: c.WorkflowService(), Namespace: srv.Namespace()}
	// await polls the host activity until want holds of the instance.
	await := func(what string, want func(h autoscale.HostState, up bool) bool) {
		t.Helper()
		var hosts map[string]autoscale.HostState
		for ctx.Err() == nil {
			if hosts, err = hb.Hosts(ctx, catalog.TierT4); err != nil {
				t.Fatalf("host activity: %v", err)
			}
			if h, up := hosts[instance]; want(h, up) && len(hosts) <= 1 {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("%s: never; last saw %+v", what, hosts)
	}

	await("the host idle", func(h autoscale.HostState, up bool) bool {
		return up && h.BusyGPUs == 0 && !h.IdleSince.IsZero()
	})
	in := activities.RenderInput{JobID: uuid.NewString(), UserID: uuid.NewString(), Params: activities.Params{
		Prompt: "a lighthouse", Model: "sd-1.5", Width: 64, Height: 64, Steps: 2, BatchSize: 1, Seed: 7}}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "render-" + in.JobID, TaskQueue: "hostactivity-test"},
		renderOnce, in)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-eng.started:
	case <-ctx.Done():
		t.Fatal("the render never reached the engine")
	}
	await("the host busy with one GPU", func(h autoscale.HostState, up bool) bool {
		return up && h.BusyGPUs == 1 && h.IdleSince.IsZero()
	})
	close(eng.release)
	if err := run.Get(ctx, nil); err == nil {
		t.Fatal("the held render succeeded; it should have failed once released")
	}
	await("the host idle again", func(h autoscale.HostState, up bool) bool {
		return up && h.BusyGPUs == 0 && !h.IdleSince.IsZero()
	})
	gpuWorker.Stop()
	await("the host gone after its worker stopped", func(_ autoscale.HostState, up bool) bool { return !up })
}
