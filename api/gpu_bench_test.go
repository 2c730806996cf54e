package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/engine/sim"
	"github.com/easel/easel/workers"
	"github.com/easel/easel/workflows"
)

// The duty-cycle experiment: a backlog of renders of about 200 ms each
// (20 steps of 10 ms on a 64x64 image) for one GPU slot.
const (
	dutyJobs      = 30
	dutySteps     = 20
	dutyStepDelay = 10 * time.Millisecond
	// dutyUsers spreads the backlog so no Pro user (4 concurrent jobs) is
	// refused.
	dutyUsers = 10
)

// BenchmarkGPUDutyCycle measures how much of a GPU worker's time is spent
// rendering when work is waiting: 30 jobs are admitted through the API while
// the Pro tier has no GPU worker, so their renders queue on gpu-a10g; then a
// worker with 1 slot, built by workers.GPU as in production, drains them.
//
// The engine is wrapped to record when each render (the GPU's work) starts
// and ends, and a worker interceptor records each Render activity's start and
// end. Duty cycle = sum of render times / (last render end - first render
// start); the ideal is 1.0 and the target 0.98. The gap between one render's
// end and the next one's start is split into what the activity does after
// the render (thumbnail, two S3 uploads, heartbeat), the dispatch between
// activities (completing one task, polling the next) and what the next
// activity does before rendering.
//
// One iteration is a whole 30-job experiment, so `make bench` (-benchtime
// 1x) records it; ns/op is its duration.
//
//	go test -run '^$' -bench GPUDutyCycle -benchtime 1x -v ./api/
func BenchmarkGPUDutyCycle(b *testing.B) {
	s := newStack(b, 0)
	tokens := make([]string, dutyUsers)
	for i := range tokens {
		_, tokens[i] = s.newUser(b, "pro", 1_000_000)
	}
	hc := benchHTTPClient()
	body, err := json.Marshal(map[string]any{"prompt": "a duty cycle", "model": "sd-1.5",
		"width": 64, "height": 64, "steps": dutySteps, "batch_size": 1})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Warm-up through the harness's worker: S3 and Redis connections, the
	// workflow cache and the GPU task queue exist before the measured part.
	id, err := submitGeneration(ctx, hc, s.http.URL, tokens[0], body)
	if err != nil {
		b.Fatal(err)
	}
	waitGenerations(ctx, b, s, []string{id})
	s.stopGPU(catalog.TierA10G)

	b.Run("easel-1-slot", func(b *testing.B) { runDuty(b, s, hc, tokens, body, 1, nil) })
}

// runDuty runs b.N experiments: admit dutyJobs jobs with no GPU worker, then
// drain them with a worker of `tasks` activity slots; gpu, when not nil, is
// the device semaphore renders hold.
func runDuty(b *testing.B, s *stack, hc *http.Client, tokens []string, body []byte, tasks int, gpu chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	log := &dutyLog{}
	eng := &timedEngine{Engine: sim.New(sim.Config{StepDelay: dutyStepDelay}), log: log, gpu: gpu}
	var runs []dutyRun
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		log.reset()
		ids := make([]string, dutyJobs)
		for i := range ids {
			var err error
			if ids[i], err = submitGeneration(ctx, hc, s.http.URL, tokens[i%dutyUsers], body); err != nil {
				b.Fatal(err)
			}
		}
		waitRendersQueued(ctx, b, s, ids)
		b.StartTimer()
		w := workers.NewGPU(s.deps, catalog.TierA10G, eng, workers.GPUOptions{Slots: tasks,
			Options: worker.Options{Interceptors: []interceptor.WorkerInterceptor{log}}})
		if err := w.Start(); err != nil {
			b.Fatal(err)
		}
		waitGenerations(ctx, b, s, ids)
		b.StopTimer()
		w.Stop()
		runs = append(runs, log.run(b, tasks == 1))
		b.StartTimer()
	}
	b.StopTimer()
	reportDuty(b, runs)
}

// waitRendersQueued returns once every job's Render activity is scheduled,
// so the worker starts on a full backlog.
func waitRendersQueued(ctx context.Context, b *testing.B, s *stack, ids []string) {
	for _, id := range ids {
		for {
			d, err := s.temporal.DescribeWorkflowExecution(ctx, workflows.GenerationID(id), "")
			if err != nil {
				b.Fatal(err)
			}
			if len(d.PendingActivities) > 0 {
				break
			}
			select {
			case <-ctx.Done():
				b.Fatalf("render of %s never scheduled", id)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

func waitGenerations(ctx context.Context, b *testing.B, s *stack, ids []string) {
	for _, id := range ids {
		var res workflows.GenerationResult
		if err := s.temporal.GetWorkflow(ctx, workflows.GenerationID(id), "").Get(ctx, &res); err != nil {
			b.Fatalf("generation %s: %v", id, err)
		}
		if res.Status != catalog.JobCompleted {
			b.Fatalf("generation %s ended %s: %s", id, res.Status, res.Error)
		}
	}
}

// span is one timed interval.
type span struct{ start, end time.Time }

func (s span) dur() time.Duration { return s.end.Sub(s.start) }

// dutyLog records render and activity spans. It is the worker interceptor
// (activity spans) and the engine wrapper's sink (render spans).
type dutyLog struct {
	interceptor.WorkerInterceptorBase
	mu         sync.Mutex
	renders    []span
	activities []span
}

func (l *dutyLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.renders, l.activities = nil, nil
}

func (l *dutyLog) add(list *[]span, sp span) {
	l.mu.Lock()
	defer l.mu.Unlock()
	*list = append(*list, sp)
}

func (l *dutyLog) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &timedActivity{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, log: l}
}

type timedActivity struct {
	interceptor.ActivityInboundInterceptorBase
	log *dutyLog
}

func (a *timedActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	start := time.Now()
	defer func() { a.log.add(&a.log.activities, span{start, time.Now()}) }()
	return a.Next.ExecuteActivity(ctx, in)
}

// timedEngine stands in for the GPU: the time inside Render, once gpu (when
// set) is held, is the time the device is busy.
type timedEngine struct {
	engine.Engine
	log *dutyLog
	gpu chan struct{}
}

func (e *timedEngine) Render(ctx context.Context, req engine.Request, onProgress func(engine.Progress)) (engine.Image, error) {
	if e.gpu != nil {
		select {
		case e.gpu <- struct{}{}:
			defer func() { <-e.gpu }()
		case <-ctx.Done():
			return engine.Image{}, ctx.Err()
		}
	}
	start := time.Now()
	defer func() { e.log.add(&e.log.renders, span{start, time.Now()}) }()
	return e.Engine.Render(ctx, req, onProgress)
}

// dutyRun is one experiment's spans, in start order. With one activity slot
// they pair by index (activity i contains render i) and the gap splits into
// its parts; with more, activities overlap and only render gaps count.
type dutyRun struct {
	renders, activities []span
	paired              bool
}

func (l *dutyLog) run(b *testing.B, paired bool) dutyRun {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := dutyRun{renders: slices.Clone(l.renders), activities: slices.Clone(l.activities), paired: paired}
	byStart := func(x, y span) int { return x.start.Compare(y.start) }
	slices.SortFunc(r.renders, byStart)
	slices.SortFunc(r.activities, byStart)
	if len(r.renders) != dutyJobs || len(r.activities) != dutyJobs {
		b.Fatalf("recorded %d renders and %d activities, want %d each (a retried render?)",
			len(r.renders), len(r.activities), dutyJobs)
	}
	for i := range r.renders {
		if i > 0 && r.renders[i].start.Before(r.renders[i-1].end) {
			b.Fatalf("renders %d and %d overlap on one GPU", i-1, i)
		}
		if paired && r.renders[i].start.Before(r.activities[i].start) || r.renders[i].end.After(r.activities[i].end) {
			b.Fatalf("render %d is not inside activity %d", i, i)
		}
	}
	return r
}

func reportDuty(b *testing.B, runs []dutyRun) {
	var busy, activeBusy, wall time.Duration
	var gaps, post, dispatch, pre, renders []time.Duration
	for _, r := range runs {
		n := len(r.renders)
		wall += r.renders[n-1].end.Sub(r.renders[0].start)
		for i := range n {
			busy += r.renders[i].dur()
			renders = append(renders, r.renders[i].dur())
			if i+1 < n {
				gaps = append(gaps, r.renders[i+1].start.Sub(r.renders[i].end))
			}
			if !r.paired {
				continue
			}
			activeBusy += r.activities[i].dur()
			post = append(post, r.activities[i].end.Sub(r.renders[i].end))
			pre = append(pre, r.renders[i].start.Sub(r.activities[i].start))
			if i+1 < n {
				dispatch = append(dispatch, r.activities[i+1].start.Sub(r.activities[i].end))
			}
		}
	}
	inOrder := formatMS(gaps) // before percentileMS sorts them
	b.ReportMetric(busy.Seconds()/wall.Seconds(), "duty-cycle")
	b.ReportMetric(meanMS(renders), "render-ms")
	b.ReportMetric(meanMS(gaps), "gap-mean-ms")
	b.ReportMetric(percentileMS(gaps, 0.50), "gap-p50-ms")
	b.ReportMetric(percentileMS(gaps, 1), "gap-max-ms")
	if len(post) > 0 {
		b.ReportMetric(activeBusy.Seconds()/wall.Seconds(), "activity-duty-cycle")
		b.ReportMetric(meanMS(post), "after-render-ms")
		b.ReportMetric(meanMS(dispatch), "dispatch-ms")
		b.ReportMetric(meanMS(pre), "before-render-ms")
		b.Logf("gap per job = after-render (thumbnail, 2 S3 puts, heartbeat) + dispatch (complete, poll next) + before-render")
	}
	b.Logf("%d runs of %d jobs: %v rendering in %v", len(runs), dutyJobs, busy.Round(time.Millisecond),
		wall.Round(time.Millisecond))
	b.Logf("gaps in order (ms): %s", inOrder)
}

func meanMS(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return float64(sum.Microseconds()) / 1000 / float64(len(d))
}

func formatMS(d []time.Duration) string {
	out := make([]byte, 0, 8*len(d))
	for i, x := range d {
		if i > 0 {
			out = append(out, ' ')
		}
		out = fmt.Appendf(out, "%.1f", float64(x.Microseconds())/1000)
	}
	return string(out)
}
