package api_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/converter"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/engine/sim"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/workers"
	"github.com/easel/easel/workflows"
)

// The Temporal server and the control worker die together (kill -9 of the
// process running both) after a job's hold is committed and before the
// workflow task that took it completes: the admit update is lost with the
// server's memory, the hold is not. After a restart, the client's retry with
// its Idempotency-Key answers the job, which runs to its end and is charged
// once; nothing stays held.
func TestCrashAfterHoldCommitStillRunsTheJob(t *testing.T) {
	var (
		s       *stack
		fired   atomic.Bool
		crashed = make(chan struct{})
		dead    = make(chan struct{}) // the dead worker's task never completes
	)
	t.Cleanup(func() { close(dead) })
	s = newStackWith(t, time.Millisecond, stackOptions{temporalFile: true,
		afterAdmit: func(ctx context.Context, jobID string) {
			if fired.Swap(true) {
				return // after the restart, admissions go through
			}
			s.crash()
			close(crashed)
			<-dead
		}})
	u, token := s.newUser(t, "pro", 100)
	body := `{"prompt": "after the crash", "model": "sd-1.5", "width": 256, "height": 256, "steps": 4, "batch_size": 2}`
	key := "crash-" + uuid.NewString()

	// The first POST is in flight when the process dies; its answer is lost.
	firstDone := make(chan struct{})
	go func() {
		defer close(firstDone)
		req, _ := http.NewRequest(http.MethodPost, s.http.URL+"/v1/generations", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		if resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-crashed:
	case <-time.After(time.Minute):
		t.Fatal("no hold was committed")
	}
	<-firstDone
	s.restartTemporal()

	// The client retries with the same key until it gets an answer.
	var g api.GenerationView
	deadline := time.Now().Add(time.Minute)
	for {
		r := s.do(t, http.MethodPost, "/v1/generations", token, body, "Idempotency-Key", key)
		if r.status == http.StatusOK || r.status == http.StatusAccepted {
			r.decode(t, &g)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retry after restart: %d %s", r.status, r.body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	g = s.waitGeneration(t, g.ID, token, terminal)
	if g.Status != catalog.JobCompleted || g.CreditsSettled == nil || *g.CreditsSettled != 2 || len(g.Images) != 2 {
		t.Fatalf("after the crash the job ended %+v", g)
	}
	if c := s.credits(t, token); c.Available != 98 || c.Held != 0 {
		t.Fatalf("credits = %+v, want 98 available and nothing held", c)
	}
	if h, err := s.store.GetHold(context.Background(), g.ID); err != nil || h.Status != store.HoldPosted || h.UserID != u.ID {
		t.Fatalf("hold = %+v, %v; want posted", h, err)
	}
}

// stallingEngine renders normally until its stall-th image, which it starts
// and then never finishes, ignoring cancellation: a worker that has died
// mid-batch. It counts the images it finished and how long they took.
type stallingEngine struct {
	engine.Engine
	stall    int
	stalled  chan struct{}
	forever  chan struct{}
	finished atomic.Int32
	mu       sync.Mutex
	seconds  float64
}

func (e *stallingEngine) Render(ctx context.Context, req engine.Request, onProgress func(engine.Progress)) (engine.Image, error) {
	if int(e.finished.Load()) == e.stall {
		onProgress(engine.Progress{Step: 1, TotalSteps: req.Steps})
		close(e.stalled)
		<-e.forever
		return engine.Image{}, context.Canceled
	}
	start := time.Now()
	img, err := e.Engine.Render(ctx, req, onProgress)
	if err == nil {
		e.mu.Lock()
		e.seconds += time.Since(start).Seconds()
		e.mu.Unlock()
		e.finished.Add(1)
	}
	return img, err
}

// countingEngine records the seeds it renders.
type countingEngine struct {
	engine.Engine
	mu    sync.Mutex
	seeds []uint32
}

func (e *countingEngine) Render(ctx context.Context, req engine.Request, onProgress func(engine.Progress)) (engine.Image, error) {
	e.mu.Lock()
	e.seeds = append(e.seeds, req.Seed)
	e.mu.Unlock()
	return e.Engine.Render(ctx, req, onProgress)
}

// A GPU worker dies at image 2 of 4 (it stops heartbeating and never
// answers): the retry on another worker renders images 2 and 3 only, the
// job settles all four, and its compute seconds include the dead attempt's.
func TestRenderResumesAfterWorkerDiesMidBatch(t *testing.T) {
	s := newStack(t, time.Millisecond)
	const tier = catalog.TierA10G // the Pro plan's tier
	s.stopGPU(tier)
	sims := sim.New(sim.Config{StepDelay: 20 * time.Millisecond})
	forever := make(chan struct{})
	t.Cleanup(func() { close(forever) })
	stalling := &stallingEngine{Engine: sims, stall: 2, stalled: make(chan struct{}), forever: forever}
	dying := workers.NewGPU(s.deps, tier, stalling, workers.GPUOptions{Slots: 1})
	if err := dying.Start(); err != nil {
		t.Fatal(err)
	}

	_, token := s.newUser(t, "pro", 100)
	r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{
		"prompt": "resume me", "model": "sd-1.5", "width": 256, "height": 256, "steps": 10, "batch_size": 4, "seed": 1000})
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var g api.GenerationView
	r.decode(t, &g)
	select {
	case <-stalling.stalled:
	case <-time.After(time.Minute):
		t.Fatal("the worker never reached image 2")
	}
	// The two stored images are in the attempt's last heartbeat.
	s.waitHeartbeatImages(t, g.ID, 2)
	go dying.Stop() // it never returns from the stalled render

	resumed := &countingEngine{Engine: sims}
	healthy := workers.NewGPU(s.deps, tier, resumed, workers.GPUOptions{Slots: 1})
	if err := healthy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(healthy.Stop)

	g = s.waitGeneration(t, g.ID, token, terminal)
	if g.Status != catalog.JobCompleted || len(g.Images) != 4 || g.CreditsSettled == nil || *g.CreditsSettled != 4 {
		t.Fatalf("job ended %+v", g)
	}
	resumed.mu.Lock()
	seeds := append([]uint32(nil), resumed.seeds...)
	resumed.mu.Unlock()
	if len(seeds) != 2 || seeds[0] != 1002 || seeds[1] != 1003 {
		t.Fatalf("the retry rendered seeds %v, want [1002 1003] (images 2 and 3 only)", seeds)
	}
	stalling.mu.Lock()
	deadSeconds := stalling.seconds
	stalling.mu.Unlock()
	if g.ComputeSecs < deadSeconds {
		t.Fatalf("compute_seconds %.2f leaves out the dead attempt's %.2f s", g.ComputeSecs, deadSeconds)
	}
}

// waitHeartbeatImages waits until the job's render has heartbeated n stored
// images to the server.
func (s *stack) waitHeartbeatImages(t *testing.T, jobID string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := s.temporal.DescribeWorkflowExecution(context.Background(), workflows.GenerationID(jobID), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, pa := range d.GetPendingActivities() {
			if pa.GetHeartbeatDetails() == nil {
				continue
			}
			var res activities.RenderResult
			if err := converter.GetDefaultDataConverter().FromPayloads(pa.GetHeartbeatDetails(), &res); err == nil && len(res.Images) >= n {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no heartbeat with %d stored images reached the server", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
