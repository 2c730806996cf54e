package autoscale

import (
	"context"
	"fmt"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/testenv"
)

// backlogMaker schedules n renders on the t4 queue and waits for them: with
// no GPU worker yet, they are the backlog the autoscaler must read. They mix
// priority and fairness keys, as generations do, so the count must cover
// every priority.
func backlogMaker(ctx workflow.Context, n int) error {
	var fs []workflow.Future
	for i := range n {
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue: catalog.GPUQueue(catalog.TierT4), StartToCloseTimeout: time.Minute,
			Priority: temporal.Priority{PriorityKey: 1 + 2*(i%2), FairnessKey: fmt.Sprintf("user-%d", i%3)}})
		fs = append(fs, workflow.ExecuteActivity(actx, "Render"))
	}
	for _, f := range fs {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// TestAutoscalerOnEmbeddedTemporal runs the real activities and workflow on
// the embedded server: the backlog read through DescribeTaskQueue stats, a
// scale-up through a LocalPool whose worker drains the backlog.
func TestAutoscalerOnEmbeddedTemporal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded Temporal server")
	}
	c := testenv.Temporal(t, map[string]enumspb.IndexedValueType{"GpuTier": enumspb.INDEXED_VALUE_TYPE_KEYWORD})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool := NewLocalPool(func(_ context.Context, tier string) (func(), error) { return startRenderWorker(c, tier) })
	t.Cleanup(pool.Close)
	acts := &Activities{Service: c.WorkflowService(), Namespace: "default", Driver: pool}
	startWorker(t, c, catalog.ControlQueue, func(w worker.Worker) {
		Register(w, acts)
		w.RegisterWorkflowWithOptions(backlogMaker, workflow.RegisterOptions{Name: "BacklogMaker"})
	})
	gen, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: catalog.ControlQueue}, "BacklogMaker", 15)
	if err != nil {
		t.Fatal(err)
	}
	o := awaitBacklog(ctx, t, acts, 15)
	if o.Capacity != 0 || o.BacklogAge <= 0 {
		t.Fatalf("observation %+v, want no capacity and a backlog age", o)
	}
	run := startTestAutoscaler(ctx, t, c)
	if err := gen.Get(ctx, nil); err != nil {
		t.Fatalf("renders did not finish after the scale-up: %v", err)
	}
	checkStatus(ctx, t, c, run)
}

func startWorker(t *testing.T, c client.Client, queue string, register func(worker.Worker)) {
	t.Helper()
	w := worker.New(c, queue, worker.Options{})
	register(w)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
}

func startRenderWorker(c client.Client, tier string) (func(), error) {
	w := worker.New(c, catalog.GPUQueue(tier), worker.Options{DisableWorkflowWorker: true})
	w.RegisterActivityWithOptions(func(context.Context) error { return nil }, activity.RegisterOptions{Name: "Render"})
	if err := w.Start(); err != nil {
		return nil, err
	}
	return w.Stop, nil
}

// awaitBacklog polls ObserveTier until the server's stats count n tasks:
// matching publishes backlog stats shortly after the tasks land.
func awaitBacklog(ctx context.Context, t *testing.T, a *Activities, n int64) Observation {
	t.Helper()
	env := activityEnv()
	env.RegisterActivity(a)
	var o Observation
	for ctx.Err() == nil {
		v, err := env.ExecuteActivity(a.ObserveTier, ObserveInput{Tier: catalog.TierT4})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Get(&o); err != nil {
			t.Fatal(err)
		}
		if o.Backlog == n {
			return o
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("backlog stayed at %d, want %d", o.Backlog, n)
	return o
}

// startTestAutoscaler starts the t4 autoscaler with a 1 s poll and no
// cooldown, twice (the second start must find the first), then ensures it
// with a new max.
func startTestAutoscaler(ctx context.Context, t *testing.T, c client.Client) client.WorkflowRun {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Windows, cfg.Min, cfg.Max, cfg.PollInterval = nil, 0, 2, time.Second
	cfg.ScaleUp = []Rule{{Above: 10, Step: 1}}
	run, err := StartWorkflow(ctx, c, catalog.TierT4, cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := StartWorkflow(ctx, c, catalog.TierT4, cfg)
	if err != nil || again.GetRunID() != run.GetRunID() || run.GetID() != "autoscaler/t4" {
		t.Fatalf("second start: %v, run %s vs %s", err, again.GetRunID(), run.GetRunID())
	}
	cfg.Max = 3
	st, err := EnsureWorkflow(ctx, c, catalog.TierT4, cfg)
	if err != nil || st.Config.Max != 3 {
		t.Fatalf("ensure with max 3: %v, status %+v", err, st)
	}
	return run
}

func checkStatus(ctx context.Context, t *testing.T, c client.Client, run client.WorkflowRun) {
	t.Helper()
	v, err := c.QueryWorkflow(ctx, run.GetID(), "", StateQuery)
	if err != nil {
		t.Fatal(err)
	}
	var s Status
	if err := v.Get(&s); err != nil {
		t.Fatal(err)
	}
	if len(s.Decisions) == 0 || s.Decisions[0].Desired != 1 || s.Decisions[0].Outcome != OutcomeApplied || s.Decisions[0].Backlog != 15 {
		t.Fatalf("status %+v, want a first decision 0 -> 1 on a backlog of 15", s)
	}
	if err := c.TerminateWorkflow(ctx, run.GetID(), "", "test done"); err != nil {
		t.Fatal(err)
	}
}
