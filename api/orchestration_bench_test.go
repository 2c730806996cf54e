package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
	"github.com/easel/easel/workers"
	"github.com/easel/easel/workflows"
)

// The orchestration experiment: the product's stated load shape.
const (
	orchJobs    = 500
	orchClients = 32
)

// benchClients is orchClients unless EASEL_BENCH_CLIENTS says otherwise: one
// client measures the latency of an idle system instead of a saturated one.
func benchClients() int {
	if n, err := strconv.Atoi(os.Getenv("EASEL_BENCH_CLIENTS")); err == nil && n > 0 {
		return n
	}
	return orchClients
}

// benchTemporalPostgres reads EASEL_BENCH_TEMPORAL_DB: sqlite (default) or
// postgres.
func benchTemporalPostgres(b *testing.B) bool {
	switch db := os.Getenv("EASEL_BENCH_TEMPORAL_DB"); db {
	case "", "sqlite":
		return false
	case "postgres":
		b.Log("Temporal on Postgres")
		return true
	default:
		b.Fatalf("EASEL_BENCH_TEMPORAL_DB=%q: want sqlite or postgres", db)
		return false
	}
}

// Task queues of the baseline; nothing in the product polls them.
const (
	bareWorkflowQueue = "bench-bare-workflows"
	bareActivityQueue = "bench-bare-activities"
)

// bareWorkflow is the baseline: one no-op activity on another task queue,
// the least a job that hands work to a GPU worker can cost in Temporal.
func bareWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           bareActivityQueue,
		StartToCloseTimeout: 10 * time.Second,
	})
	return workflow.ExecuteActivity(ctx, "BenchNoop").Get(ctx, nil)
}

func benchNoop(context.Context) error { return nil }

// BenchmarkOrchestration measures what the platform adds around a render
// that costs nothing: 500 tiny generations (sd-1.5, 64x64, 1 step, batch 1,
// sim engine without step delay) submitted through the HTTP API by 32
// concurrent clients, each its own Pro user, each job timed from its POST
// until its workflow has finished (waited on with the Temporal client).
//
// The baseline runs first on the same embedded Temporal server and process:
// 500 runs of a bare workflow with one no-op activity on another task queue,
// started by 32 concurrent clients and timed from start to result.
//
// One iteration is the whole 500-job experiment, so `make bench`
// (-benchtime 1x) records it and ns/op is its duration. Metrics: p50/p99 job
// latency, jobs/s, p50 of the POST alone (admission: Update-With-Start plus
// the hold), and the CPU cores used by this process (API, workers and the
// embedded Temporal server all run in it), Postgres, versitygw and Redis.
// EASEL_BENCH_CPUPROFILE=prefix writes a CPU profile of each measured part
// to prefix.<sub-benchmark>. EASEL_BENCH_TEMPORAL_DB=postgres runs the
// Temporal server on Postgres (fresh databases on the test server, as a
// production cluster) instead of in-memory SQLite.
//
//	go test -run '^$' -bench Orchestration -benchtime 1x -v ./api/
func BenchmarkOrchestration(b *testing.B) {
	s := newStackWith(b, 0, stackOptions{temporalPostgres: benchTemporalPostgres(b)})

	wf := worker.New(s.temporal, bareWorkflowQueue, worker.Options{})
	wf.RegisterWorkflowWithOptions(bareWorkflow, workflow.RegisterOptions{Name: "BenchBare"})
	act := worker.New(s.temporal, bareActivityQueue, worker.Options{})
	act.RegisterActivityWithOptions(benchNoop, activity.RegisterOptions{Name: "BenchNoop"})
	for _, w := range []worker.Worker{wf, act} {
		if err := w.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(w.Stop)
	}

	// EASEL_BENCH_GPU_SLOTS replaces the harness's Pro-tier GPU worker (2
	// slots) with a bigger one, to tell the GPU slots' limit from the
	// orchestration's.
	if n, err := strconv.Atoi(os.Getenv("EASEL_BENCH_GPU_SLOTS")); err == nil && n > 0 {
		s.stopGPU(catalog.TierA10G)
		w := workers.NewGPU(s.deps, catalog.TierA10G, s.engine, workers.GPUOptions{Slots: n})
		if err := w.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(w.Stop)
		b.Logf("Pro tier GPU worker: %d slots", n)
	}

	clients := benchClients()
	// At least orchClients users, taken in turn: one user submitting 500
	// jobs would meet its plan's rate limit (120 a minute) before the end.
	tokens := make([]string, max(clients, orchClients))
	userIDs := make([]string, len(tokens))
	var turn atomic.Int64
	for i := range tokens {
		// Enough credits for every job any run could submit; a refusal
		// would end a job early and flatter the numbers.
		var u store.User
		u, tokens[i] = s.newUser(b, "pro", 1_000_000)
		userIDs[i] = u.ID
	}
	hc := benchHTTPClient()
	genReq, err := json.Marshal(map[string]any{"prompt": "a benchmark", "model": "sd-1.5",
		"width": 64, "height": 64, "steps": 1, "batch_size": 1})
	if err != nil {
		b.Fatal(err)
	}

	bare := func(ctx context.Context, _ int, _ *time.Duration) error {
		run, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: "bench-bare/" + uuid.NewString(), TaskQueue: bareWorkflowQueue}, "BenchBare")
		if err != nil {
			return err
		}
		return run.Get(ctx, nil)
	}
	generation := func(ctx context.Context, c int, admit *time.Duration) error {
		t0 := time.Now()
		id, err := submitGeneration(ctx, hc, s.http.URL, tokens[int(turn.Add(1)-1)%len(tokens)], genReq)
		if err != nil {
			return err
		}
		*admit = time.Since(t0)
		var res workflows.GenerationResult
		if err := s.temporal.GetWorkflow(ctx, workflows.GenerationID(id), "").Get(ctx, &res); err != nil {
			return fmt.Errorf("generation %s: %w", id, err)
		}
		if res.Status != catalog.JobCompleted {
			return fmt.Errorf("generation %s ended %s: %s", id, res.Status, res.Error)
		}
		return nil
	}
	// Warm-up: the first run of each kind creates its task queues and fills
	// connection pools; a fresh server would otherwise charge that to the
	// first measured jobs.
	for c := range clients {
		var d time.Duration
		if err := bare(context.Background(), c, &d); err != nil {
			b.Fatal(err)
		}
		if err := generation(context.Background(), c, &d); err != nil {
			b.Fatal(err)
		}
	}

	logHistory(b, s.temporal, "bench-bare/")
	logHistory(b, s.temporal, "generation/")

	work, harness, steps := workAlone(s, clients, userIDs)
	var bareRun, genRun, workRun, harnessRun jobsRun
	b.Run("baseline-bare-workflow", func(b *testing.B) { bareRun = runJobs(b, orchJobs, clients, bare) })
	b.Run("easel-generation", func(b *testing.B) { genRun = runJobs(b, orchJobs, clients, generation) })
	b.Run("work-alone", func(b *testing.B) {
		workRun = runJobs(b, orchJobs, clients, work)
		b.Logf("work alone, by step: %v", steps)
	})
	b.Run("work-alone-harness", func(b *testing.B) { harnessRun = runJobs(b, orchJobs, clients, harness) })
	if bareRun.cpuPerJob > 0 && workRun.cpuPerJob > 0 {
		// A generation costs Temporal at least what the bare workflow does
		// (its history holds every event of the bare one), plus the work.
		// With every core of the machine busy, a generation could run at
		// most cores / (bare + work alone) jobs a second.
		alone := workRun.cpuPerJob - harnessRun.cpuPerJob
		most := float64(runtime.NumCPU()) / (bareRun.cpuPerJob + alone).Seconds()
		b.Logf("CPU per job, every process: bare %v, generation %v, work alone %v (%v, less the activity environment's %v); "+
			"CPU ratio %.2f, at most %.2f (bare / (bare + work alone)); throughput ratio %.2f, at most %.2f (%.1f generations/s on all %d cores)",
			ms(bareRun.cpuPerJob), ms(genRun.cpuPerJob), ms(alone), ms(workRun.cpuPerJob), ms(harnessRun.cpuPerJob),
			float64(bareRun.cpuPerJob)/float64(genRun.cpuPerJob), float64(bareRun.cpuPerJob)/float64(bareRun.cpuPerJob+alone),
			genRun.jobsPerSec/bareRun.jobsPerSec, most/bareRun.jobsPerSec, most, runtime.NumCPU())
	}

	// A job of the measured run, warm.
	logHistory(b, s.temporal, "bench-bare/")
	logHistory(b, s.temporal, "generation/")
}

// workAlone is the work a generation does outside Temporal, without
// Temporal: the same Admit (the hold and the job's row), Render (sim engine,
// WebP thumbnail, two S3 PUTs, live status) and Finalize (the settle), on the
// same servers, each run in the SDK's in-process activity environment (one
// per client) instead of through the server. A generation costs at least a
// bare workflow plus this, so bare / (bare + work alone), in CPU per job, is
// the most the throughput ratio can reach on a CPU-bound machine. The API's
// HTTP handling and authentication are left out, which can only raise that
// bound. harness runs no-op activities the same way (two local, one not):
// the activity environment's own cost, which the bound subtracts.
func workAlone(s *stack, clients int, userIDs []string) (work, harness func(context.Context, int, *time.Duration) error, steps *stepTimes) {
	ledger := workers.NewControl(s.deps).Ledger
	render := workers.NewGPU(s.deps, catalog.TierA10G, s.engine, workers.GPUOptions{Slots: 2}).Render
	envs := make([]*testsuite.TestActivityEnvironment, clients)
	for i := range envs {
		var suite testsuite.WorkflowTestSuite
		suite.SetLogger(tlog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
		envs[i] = suite.NewTestActivityEnvironment()
		envs[i].RegisterActivity(ledger)
		envs[i].RegisterActivity(render)
		envs[i].RegisterActivityWithOptions(benchNoop, activity.RegisterOptions{Name: "BenchNoop"})
	}
	harness = func(_ context.Context, c int, _ *time.Duration) error {
		for _, run := range []func(any, ...any) (converter.EncodedValue, error){
			envs[c].ExecuteLocalActivity, envs[c].ExecuteActivity, envs[c].ExecuteLocalActivity} {
			if _, err := run(benchNoop); err != nil {
				return err
			}
		}
		return nil
	}
	params := activities.Params{Prompt: "a benchmark", Model: "sd-1.5", Width: 64, Height: 64, Steps: 1,
		CFGScale: 7, BatchSize: 1}
	var turn atomic.Int64
	steps = &stepTimes{}
	work = func(_ context.Context, c int, _ *time.Duration) error {
		env, user, job := envs[c], userIDs[int(turn.Add(1)-1)%len(userIDs)], uuid.NewString()
		t0 := time.Now()
		if _, err := env.ExecuteLocalActivity(ledger.Admit, activities.AdmitInput{JobID: job, UserID: user,
			RequestHash: job, WorkflowID: workflows.GenerationID(job), Plan: "pro", GPUTier: catalog.TierA10G,
			Params: params, Credits: 1}); err != nil {
			return fmt.Errorf("admit %s: %w", job, err)
		}
		t1 := time.Now()
		v, err := env.ExecuteActivity(render.Render, activities.RenderInput{JobID: job, UserID: user, Params: params})
		var r activities.RenderResult
		if err == nil {
			err = v.Get(&r)
		}
		if err != nil {
			return fmt.Errorf("render %s: %w", job, err)
		}
		t2 := time.Now()
		v, err = env.ExecuteLocalActivity(ledger.Finalize, activities.FinalizeInput{JobID: job, UserID: user,
			GPUTier: catalog.TierA10G, Params: params, Images: r.Images, Credits: 1,
			ComputeSeconds: r.ComputeSeconds, StartedAt: r.StartedAt})
		var f activities.FinalizeResult
		if err == nil {
			err = v.Get(&f)
		}
		if err != nil || f.CreditsSettled != 1 || f.ImagesProduced != 1 {
			return fmt.Errorf("finalize %s: settled %d credits for %d images: %v", job, f.CreditsSettled, f.ImagesProduced, err)
		}
		steps.add(t1.Sub(t0), t2.Sub(t1), time.Since(t2))
		return nil
	}
	return work, harness, steps
}

// stepTimes are the durations of work alone's three steps, job by job.
type stepTimes struct {
	mu                      sync.Mutex
	admit, render, finalize []time.Duration
}

func (st *stepTimes) add(admit, render, finalize time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.admit, st.render, st.finalize = append(st.admit, admit), append(st.render, render), append(st.finalize, finalize)
}

// String is each step's p50.
func (st *stepTimes) String() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return fmt.Sprintf("p50 admit %.1f ms, render %.1f ms, finalize %.1f ms",
		percentileMS(st.admit, 0.5), percentileMS(st.render, 0.5), percentileMS(st.finalize, 0.5))
}

// ms rounds a CPU time for the log.
func ms(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }

// logHistory logs the events of the newest workflow whose id starts with
// prefix, each with its time from the run's start: every event is a write
// to the server's persistence, so their number is what a job costs the
// server, and their times show where a job's milliseconds go.
func logHistory(b *testing.B, c client.Client, prefix string) {
	ctx := context.Background()
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowId STARTS_WITH %q", prefix), PageSize: 1})
	if err != nil || len(resp.Executions) == 0 {
		b.Logf("history of %s*: not listed (%v)", prefix, err)
		return
	}
	e := resp.Executions[0].Execution
	it := c.GetWorkflowHistory(ctx, e.WorkflowId, e.RunId, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var types []string
	var start time.Time
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		at := ev.EventTime.AsTime()
		if start.IsZero() {
			start = at
		}
		types = append(types, fmt.Sprintf("%s+%.1fms", strings.TrimPrefix(ev.EventType.String(), "EVENT_TYPE_"),
			float64(at.Sub(start).Microseconds())/1000))
	}
	b.Logf("history of %s: %d events: %s", e.WorkflowId, len(types), strings.Join(types, " "))
}

// benchHTTPClient keeps a connection per client alive: http.DefaultClient
// keeps only 2 idle per host, and 30 new TCP connections a second would be
// a cost of the benchmark, not of the API.
func benchHTTPClient() *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		MaxIdleConns: 2 * orchClients, MaxIdleConnsPerHost: 2 * orchClients}}
}

// submitGeneration POSTs a generation request and returns the job id from
// the 202 answer.
func submitGeneration(ctx context.Context, hc *http.Client, baseURL, token string, body []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/generations", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("POST /v1/generations: %d %s", resp.StatusCode, raw)
	}
	var g struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &g); err != nil || g.ID == "" {
		return "", fmt.Errorf("POST /v1/generations answered %s: %v", raw, err)
	}
	return g.ID, nil
}

// jobsRun is what runJobs measured.
type jobsRun struct {
	jobsPerSec float64
	cpuPerJob  time.Duration // this process, Postgres, versitygw and Redis together
}

// runJobs runs b.N*perIter jobs from `clients` goroutines, each job op(ctx,
// client, &admit) timed as a whole (admit, when op sets it, is the part up
// to the submit's answer), and reports latency percentiles, throughput and
// CPU use.
func runJobs(b *testing.B, perIter, clients int, op func(ctx context.Context, client int, admit *time.Duration) error) jobsRun {
	total := b.N * perIter
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lat := make([][]time.Duration, clients)
	admits := make([][]time.Duration, clients)
	var next atomic.Int64
	errs := make(chan error, clients)
	stopProfile := startProfile(b)
	cpu := startCPUSample()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for next.Add(1) <= int64(total) {
				var admit time.Duration
				t0 := time.Now()
				if err := op(ctx, c, &admit); err != nil {
					errs <- err
					cancel()
					return
				}
				lat[c] = append(lat[c], time.Since(t0))
				if admit > 0 {
					admits[c] = append(admits[c], admit)
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	b.StopTimer()
	stopProfile()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	run := jobsRun{jobsPerSec: float64(total) / wall.Seconds(), cpuPerJob: cpu.report(b, wall) / time.Duration(total)}
	b.ReportMetric(float64(run.cpuPerJob.Microseconds())/1000, "cpu-ms/job")
	all := slices.Concat(lat...)
	b.ReportMetric(percentileMS(all, 0.50), "p50-ms")
	b.ReportMetric(percentileMS(all, 0.99), "p99-ms")
	b.ReportMetric(run.jobsPerSec, "jobs/s")
	if a := slices.Concat(admits...); len(a) > 0 {
		b.ReportMetric(percentileMS(a, 0.50), "admit-p50-ms")
		b.ReportMetric(percentileMS(a, 0.99), "admit-p99-ms")
	}
	b.Logf("%d jobs from %d clients in %v", total, clients, wall.Round(time.Millisecond))
	return run
}

// percentileMS returns the q-quantile of d in milliseconds; it sorts d.
func percentileMS(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return float64(d[min(int(q*float64(len(d))), len(d)-1)].Microseconds()) / 1000
}

// startProfile writes a CPU profile of the measured part alone when
// EASEL_BENCH_CPUPROFILE is set: -cpuprofile would also catch starting
// Postgres databases, versitygw and the Temporal server.
func startProfile(b *testing.B) func() {
	prefix := os.Getenv("EASEL_BENCH_CPUPROFILE")
	if prefix == "" {
		return func() {}
	}
	name := prefix + "." + strings.NewReplacer("/", "_", " ", "_").Replace(b.Name())
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		b.Logf("CPU profile: %s", name)
	}
}

// cpuSample measures how many cores each part of the system used over a
// run: with the total near the machine's 2 cores a benchmark is CPU-bound.
// Server processes are summed over those that live across the run; other
// clients' load on a shared Postgres or Redis also counts, so treat those as
// upper bounds.
type cpuSample struct {
	self  time.Duration
	procs map[string]time.Duration
}

// benchProcesses are the servers the stack runs outside this process, by
// their /proc comm name.
var benchProcesses = []string{"postgres", "versitygw", "redis-server"}

func startCPUSample() cpuSample {
	c := cpuSample{self: testenv.SelfCPU(), procs: map[string]time.Duration{}}
	for _, p := range benchProcesses {
		c.procs[p] = testenv.ProcessCPU(p)
	}
	return c
}

// report reports each part's cores and returns the CPU all of them used.
func (c cpuSample) report(b *testing.B, wall time.Duration) time.Duration {
	total := testenv.SelfCPU() - c.self
	b.ReportMetric(total.Seconds()/wall.Seconds(), "go-cores")
	for _, p := range benchProcesses {
		used := testenv.ProcessCPU(p) - c.procs[p]
		total += used
		b.ReportMetric(used.Seconds()/wall.Seconds(), strings.TrimSuffix(p, "-server")+"-cores")
	}
	return total
}
