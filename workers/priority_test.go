package workers_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/testenv"
	"github.com/easel/easel/workflows"
)

// These tests check, on the embedded Temporal server, what the generation
// workflow relies on when it schedules Render on a GPU queue with
// temporal.Priority{PriorityKey: 1 (priority plans) or 3, FairnessKey: user
// id}: a Pro render jumps a Free backlog, and one tenant's backlog does not
// starve another tenant. Each test queues its renders with no worker
// polling, waits until matching holds the whole backlog, then starts a
// worker with a single slot and records the order in which renders start.
//
// With the seeded plans each tier's queue holds a single PriorityKey (Free
// and Basic on t4 at 3, Pro on a10g and Enterprise on a100 at 1), so the
// priority test models a tier shared by a priority and a standard plan.

// queuedRender is one Render activity to enqueue, with the priority keys the
// generation workflow would give it.
type queuedRender struct {
	ID          string
	UserID      string
	PriorityKey int
}

// enqueueRenders schedules one Render per task on queue, all in its first
// workflow task, with the same Priority the generation workflow sets, and
// waits for them.
func enqueueRenders(ctx workflow.Context, queue string, tasks []queuedRender) error {
	fs := make([]workflow.Future, 0, len(tasks))
	for _, task := range tasks {
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue:           queue,
			StartToCloseTimeout: 30 * time.Second,
			Priority:            temporal.Priority{PriorityKey: task.PriorityKey, FairnessKey: task.UserID},
			// A retry would start a render twice and blur the order.
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
		})
		fs = append(fs, workflow.ExecuteActivity(actx, "Render", task.ID))
	}
	for _, f := range fs {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// startRecorder stands in for the GPU worker: a single render slot on queue
// whose Render records the order of starts (by render id) and takes a few
// milliseconds.
type startRecorder struct {
	mu    sync.Mutex
	order []string
	want  int
	done  chan struct{}
}

func (r *startRecorder) Render(ctx context.Context, id string) error {
	r.mu.Lock()
	r.order = append(r.order, id)
	if len(r.order) == r.want {
		close(r.done)
	}
	r.mu.Unlock()
	select {
	case <-time.After(3 * time.Millisecond):
	case <-ctx.Done():
	}
	return nil
}

// priorityEnv is a client on an embedded server, a workflow worker for
// enqueueRenders on its own queue, and a render queue of the test's own that
// no worker polls until drain.
type priorityEnv struct {
	c         client.Client
	ctx       context.Context
	controlTQ string
	renderTQ  string
	workflows []client.WorkflowRun
	namespace string
}

func newPriorityEnv(t *testing.T, c client.Client, name string) *priorityEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	e := &priorityEnv{c: c, ctx: ctx, controlTQ: "priority-test-control-" + name,
		renderTQ: catalog.GPUQueue("priority-test-" + name), namespace: "default"}
	// The workflow worker is on another queue than the renders, so no render
	// is handed to it eagerly: every one goes through matching.
	w := worker.New(c, e.controlTQ, worker.Options{DisableEagerActivities: true})
	w.RegisterWorkflowWithOptions(enqueueRenders, workflow.RegisterOptions{Name: "EnqueueRenders"})
	if err := w.Start(); err != nil {
		t.Fatalf("start workflow worker: %v", err)
	}
	t.Cleanup(w.Stop)
	return e
}

// enqueue starts a workflow scheduling tasks, then waits until the render
// queue's backlog holds backlog tasks.
func (e *priorityEnv) enqueue(t *testing.T, tasks []queuedRender, backlog int64) {
	t.Helper()
	run, err := e.c.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{TaskQueue: e.controlTQ}, "EnqueueRenders", e.renderTQ, tasks)
	if err != nil {
		t.Fatalf("start EnqueueRenders: %v", err)
	}
	e.workflows = append(e.workflows, run)
	e.awaitBacklog(t, backlog)
}

// awaitBacklog polls the render queue until matching counts n backlogged
// tasks. It reads the queue's status (the backlog count of its one
// partition, read live) rather than report_stats, which the root partition
// caches for 5 s (matching.TaskQueueInfoByBuildIdTTL): every wait would
// cost that much.
func (e *priorityEnv) awaitBacklog(t *testing.T, n int64) {
	t.Helper()
	var count int64
	for e.ctx.Err() == nil {
		resp, err := e.c.WorkflowService().DescribeTaskQueue(e.ctx, &workflowservice.DescribeTaskQueueRequest{
			Namespace:     e.namespace,
			TaskQueue:     &taskqueuepb.TaskQueue{Name: e.renderTQ, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
			TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY,
			//lint:ignore SA1019 the live count; report_stats is cached (see above)
			IncludeTaskQueueStatus: true,
		})
		if err != nil {
			t.Fatalf("describe task queue %s: %v", e.renderTQ, err)
		}
		//lint:ignore SA1019 the live count; report_stats is cached (see above)
		if count = resp.GetTaskQueueStatus().GetBacklogCountHint(); count == n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("backlog on %s stayed at %d, want %d", e.renderTQ, count, n)
}

// logBacklog checks, once everything is enqueued, that the queue's stats
// count n tasks, and logs them by priority key. It is the first stats call
// on the queue, so nothing cached is read.
func (e *priorityEnv) logBacklog(t *testing.T, n int64) {
	t.Helper()
	resp, err := e.c.WorkflowService().DescribeTaskQueue(e.ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace:     e.namespace,
		TaskQueue:     &taskqueuepb.TaskQueue{Name: e.renderTQ, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY,
		ReportStats:   true,
	})
	if err != nil {
		t.Fatalf("describe task queue %s: %v", e.renderTQ, err)
	}
	byKey := resp.GetStatsByPriorityKey()
	keys := make([]int, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, int(k))
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("PriorityKey %d: %d", k, byKey[int32(k)].GetApproximateBacklogCount()))
	}
	got := resp.GetStats().GetApproximateBacklogCount()
	t.Logf("backlog on %s before any worker polls: %d (%s)", e.renderTQ, got, strings.Join(parts, ", "))
	if got != n {
		t.Fatalf("backlog stats count %d tasks, want %d", got, n)
	}
}

// drain starts a one-slot worker on the render queue, waits until it has
// started n renders and every enqueueing workflow has ended, and returns the
// order of starts.
func (e *priorityEnv) drain(t *testing.T, n int) []string {
	t.Helper()
	rec := &startRecorder{want: n, done: make(chan struct{})}
	w := worker.New(e.c, e.renderTQ, worker.Options{
		DisableWorkflowWorker:              true,
		MaxConcurrentActivityExecutionSize: 1,
	})
	w.RegisterActivity(rec)
	if err := w.Start(); err != nil {
		t.Fatalf("start render worker: %v", err)
	}
	t.Cleanup(w.Stop)
	began := time.Now()
	select {
	case <-rec.done:
	case <-e.ctx.Done():
		rec.mu.Lock()
		defer rec.mu.Unlock()
		t.Fatalf("%d of %d renders started before the deadline", len(rec.order), n)
	}
	t.Logf("%d renders started in %v with one slot", n, time.Since(began).Round(time.Millisecond))
	for _, run := range e.workflows {
		if err := run.Get(e.ctx, nil); err != nil {
			t.Fatalf("EnqueueRenders %s: %v", run.GetID(), err)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.order)
}

// renders returns n tasks of one user, ids prefix-1..prefix-n.
func renders(prefix, userID string, priorityKey, n int) []queuedRender {
	tasks := make([]queuedRender, n)
	for i := range tasks {
		tasks[i] = queuedRender{ID: fmt.Sprintf("%s-%d", prefix, i+1), UserID: userID, PriorityKey: priorityKey}
	}
	return tasks
}

// position is the 1-based start position of id, 0 if it never started.
func position(order []string, id string) int {
	return slices.Index(order, id) + 1
}

// proPosition queues 20 Free renders (PriorityKey 3) of four users, then
// one render of a Pro user with proKey, and returns the Pro render's start
// position once a one-slot worker polls.
func proPosition(t *testing.T, c client.Client, proKey int) int {
	t.Helper()
	e := newPriorityEnv(t, c, "pro-vs-free")
	var free []queuedRender
	for u := 1; u <= 4; u++ {
		free = append(free, renders(fmt.Sprintf("free%d", u), fmt.Sprintf("free-user-%d", u), workflows.PriorityStandard, 5)...)
	}
	e.enqueue(t, free, int64(len(free)))
	pro := queuedRender{ID: "pro", UserID: "pro-user", PriorityKey: proKey}
	e.enqueue(t, []queuedRender{pro}, int64(len(free)+1))
	e.logBacklog(t, int64(len(free)+1))

	order := e.drain(t, len(free)+1)
	pos := position(order, pro.ID)
	t.Logf("Pro render (PriorityKey %d) enqueued last behind %d Free renders (PriorityKey %d): started at position %d of %d; first starts %v",
		proKey, len(free), workflows.PriorityStandard, pos, len(order), order[:min(8, len(order))])
	return pos
}

// lightPosition queues heavy renders of one user, then one render of
// another user, all at PriorityKey 3, and returns the second user's start
// position once a one-slot worker polls.
func lightPosition(t *testing.T, c client.Client, heavy int) int {
	t.Helper()
	e := newPriorityEnv(t, c, "fairness")
	e.enqueue(t, renders("heavy", "user-heavy", workflows.PriorityStandard, heavy), int64(heavy))
	light := queuedRender{ID: "light", UserID: "user-light", PriorityKey: workflows.PriorityStandard}
	e.enqueue(t, []queuedRender{light}, int64(heavy+1))
	e.logBacklog(t, int64(heavy+1))

	order := e.drain(t, heavy+1)
	pos := position(order, light.ID)
	t.Logf("user-light's render, enqueued after user-heavy's %d (same PriorityKey %d): started at position %d of %d; first starts %v",
		heavy, workflows.PriorityStandard, pos, len(order), order[:min(8, len(order))])
	return pos
}

// TestPriorityKeyReordersGPUQueue: a Pro render (PriorityKey 1) queued
// behind a backlog of Free renders (PriorityKey 3) is the first to start
// once a one-slot worker polls. The Free backlog belongs to four users, so
// fairness alone (equal priorities) would start the Pro render fifth, and
// FIFO last.
func TestPriorityKeyReordersGPUQueue(t *testing.T) {
	c := testenv.Temporal(t, nil)
	if pos := proPosition(t, c, workflows.PriorityHigh); pos != 1 {
		t.Fatalf("Pro render started at position %d, want 1", pos)
	}
}

// TestFairnessKeyInterleavesTenants: one user's 100 queued renders do not
// hold back another user's single render queued after them at the same
// priority: with one worker slot it starts within the first few. FIFO would
// start it 101st.
func TestFairnessKeyInterleavesTenants(t *testing.T) {
	const heavy, bound = 100, 5
	c := testenv.Temporal(t, nil)
	if pos := lightPosition(t, c, heavy); pos < 1 || pos > bound {
		t.Fatalf("user-light's render started at position %d, want within the first %d", pos, bound)
	}
}
