package temporalserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

const (
	workflowQueue = "devtemporal-test-workflows"
	activityQueue = "devtemporal-test-activities"
)

// startTimeout bounds a server start on a slow, shared CI machine.
const startTimeout = 2 * time.Minute

var testAttributes = map[string]enumspb.IndexedValueType{
	"UserId":  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"GpuTier": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"Plan":    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

func EchoActivity(_ context.Context, in string) (string, error) { return in, nil }

// OneActivityWorkflow runs one activity on another task queue, the shape of
// a typical easel dispatch.
func OneActivityWorkflow(ctx workflow.Context, in string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           activityQueue,
		StartToCloseTimeout: 10 * time.Second,
	})
	var out string
	err := workflow.ExecuteActivity(ctx, EchoActivity, in).Get(ctx, &out)
	return out, err
}

// AdmitWorkflow waits for one "admit" update, the Update-With-Start shape
// easel uses to enqueue work.
func AdmitWorkflow(ctx workflow.Context) (string, error) {
	var admitted string
	err := workflow.SetUpdateHandler(ctx, "admit", func(_ workflow.Context, in string) (string, error) {
		admitted = in
		return "admitted " + in, nil
	})
	if err != nil {
		return "", err
	}
	err = workflow.Await(ctx, func() bool { return admitted != "" })
	return admitted, err
}

func TestServerRunsWorkflowAndUI(t *testing.T) {
	uiPort := freeTestPort(t)
	s := startTestServer(t, Options{SearchAttributes: testAttributes, UIPort: uiPort})
	c := dial(t, s)
	startWorkers(t, c)

	if got := runWorkflow(t, c, "hello"); got != "hello" {
		t.Fatalf("workflow result = %q, want hello", got)
	}
	assertUpdateWithStart(t, c)
	assertSearchAttributes(t, c, s.Namespace(), testAttributes)
	assertUI(t, s.UIAddress())
}

func assertUpdateWithStart(t testing.TB, c client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       "admit-" + t.Name(),
		TaskQueue:                workflowQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		Priority:                 temporal.Priority{PriorityKey: 1, FairnessKey: "user-1"},
	}, AdmitWorkflow)
	handle, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   "admit",
			Args:         []any{"job-1"},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		t.Fatalf("update-with-start: %v", err)
	}
	var reply string
	if err := handle.Get(ctx, &reply); err != nil || reply != "admitted job-1" {
		t.Fatalf("update reply = %q, %v; want %q", reply, err, "admitted job-1")
	}
}

func TestRestartWithDatabaseFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dev.db")
	first := map[string]enumspb.IndexedValueType{"UserId": enumspb.INDEXED_VALUE_TYPE_KEYWORD}

	// A non-default namespace also covers namespace registration.
	s := startTestServer(t, Options{Namespace: "easel", DatabaseFile: file, SearchAttributes: first})
	c := dial(t, s)
	w := startWorkers(t, c)
	runWorkflow(t, c, "before-restart")
	workflowID := "restart-" + t.Name()
	startAndWait(t, c, workflowID)
	stopAll(t, w, c, s)

	// The second run also adds attributes, as after a code change that
	// introduced a new one.
	s = startTestServer(t, Options{Namespace: "easel", DatabaseFile: file, SearchAttributes: testAttributes})
	c = dial(t, s)
	assertSearchAttributes(t, c, s.Namespace(), testAttributes)
	if _, err := c.DescribeWorkflowExecution(context.Background(), workflowID, ""); err != nil {
		t.Fatalf("workflow from before restart is gone: %v", err)
	}
	startWorkers(t, c)
	runWorkflow(t, c, "after-restart")
}

func startTestServer(t testing.TB, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// testLogger keeps server warnings visible in `go test -v` output.
func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func dial(t testing.TB, s *Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  s.HostPort(),
		Namespace: s.Namespace(),
		Logger:    sdklog.NewStructuredLogger(testLogger()),
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// startWorkers runs the workflow and the activity on separate task queues.
func startWorkers(t testing.TB, c client.Client) []worker.Worker {
	t.Helper()
	wf := worker.New(c, workflowQueue, worker.Options{})
	wf.RegisterWorkflow(OneActivityWorkflow)
	wf.RegisterWorkflow(AdmitWorkflow)
	act := worker.New(c, activityQueue, worker.Options{})
	act.RegisterActivity(EchoActivity)
	workers := []worker.Worker{wf, act}
	for _, w := range workers {
		if err := w.Start(); err != nil {
			t.Fatalf("start worker: %v", err)
		}
		t.Cleanup(w.Stop)
	}
	return workers
}

func runWorkflow(t testing.TB, c client.Client, in string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflowQueue}, OneActivityWorkflow, in)
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	var out string
	if err := run.Get(ctx, &out); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	return out
}

func startAndWait(t testing.TB, c client.Client, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := client.StartWorkflowOptions{ID: id, TaskQueue: workflowQueue}
	run, err := c.ExecuteWorkflow(ctx, opts, OneActivityWorkflow, id)
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("workflow: %v", err)
	}
}

func stopAll(t testing.TB, workers []worker.Worker, c client.Client, s *Server) {
	t.Helper()
	for _, w := range workers {
		w.Stop()
	}
	c.Close()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func assertSearchAttributes(t testing.TB, c client.Client, ns string, want map[string]enumspb.IndexedValueType) {
	t.Helper()
	resp, err := c.OperatorService().ListSearchAttributes(context.Background(),
		&operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatalf("list search attributes: %v", err)
	}
	got := resp.GetCustomAttributes()
	for name, typ := range want {
		if got[name] != typ {
			t.Errorf("search attribute %s = %v, want %v (have %v)", name, got[name], typ, got)
		}
	}
}

func assertUI(t testing.TB, address string) {
	t.Helper()
	if address == "" {
		t.Fatal("UIAddress is empty with UIPort set")
	}
	resp, err := http.Get(address + "/")
	if err != nil {
		t.Fatalf("GET %s/: %v", address, err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("GET %s/ = %d (%v), want 200", address, resp.StatusCode, err)
	}
	// The embedded UI is a SvelteKit app; its index proves the static
	// assets are served rather than only the API routes.
	if !strings.Contains(string(body), "svelte") {
		t.Fatalf("GET %s/ did not return the UI page:\n%.300s", address, body)
	}
}

func freeTestPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// BenchmarkWorkflowOneActivity measures end-to-end latency of a workflow
// that runs one no-op activity on a different task queue, sequentially.
// It reports mean and median milliseconds per workflow.
func BenchmarkWorkflowOneActivity(b *testing.B) {
	s := startTestServer(b, Options{})
	c := dial(b, s)
	startWorkers(b, c)
	runWorkflow(b, c, "warmup") // first run creates task queues
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		runWorkflow(b, c, fmt.Sprint(i))
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, durations)
}

func reportLatency(b *testing.B, durations []time.Duration) {
	var total time.Duration
	for _, d := range durations {
		total += d
	}
	slices.Sort(durations)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(total)/float64(len(durations)), "ms/op")
	b.ReportMetric(ms(durations[len(durations)/2]), "p50-ms")
}

// TestPostgresPersistence runs the server on Postgres: databases created,
// schema set up from the server module's files, a workflow with an
// activity completed; after a restart on the same databases the run is
// still listed as completed and new work runs.
func TestPostgresPersistence(t *testing.T) {
	pg := testPostgres(t)
	s := startTestServer(t, Options{Namespace: "easel", Postgres: pg, SearchAttributes: testAttributes})
	c := dial(t, s)
	w := startWorkers(t, c)
	workflowID := "durable-" + t.Name()
	startAndWait(t, c, workflowID)
	assertSearchAttributes(t, c, s.Namespace(), testAttributes)
	assertUpdateWithStart(t, c)
	stopAll(t, w, c, s)

	s = startTestServer(t, Options{Namespace: "easel", Postgres: pg, SearchAttributes: testAttributes})
	c = dial(t, s)
	assertListedCompleted(t, c, workflowID)
	startWorkers(t, c)
	if got := runWorkflow(t, c, "after-restart"); got != "after-restart" {
		t.Fatalf("workflow after restart = %q", got)
	}
}

// assertListedCompleted waits until visibility lists the workflow as
// completed (visibility is written asynchronously after the close).
func assertListedCompleted(t testing.TB, c client.Client, workflowID string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = %q AND ExecutionStatus = 'Completed'", workflowID)})
		if err == nil && len(resp.Executions) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("completed run %s not listed after restart: %v (%d listed)", workflowID, err, len(resp.GetExecutions()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPostgresURLChecked(t *testing.T) {
	for _, bad := range []string{"mysql://h/temporal", "postgres://127.0.0.1:5432/", "postgres:///temporal", "::"} {
		_, err := Start(context.Background(), Options{Postgres: &Postgres{URL: bad}})
		if err == nil || !strings.Contains(err.Error(), "postgres URL") {
			t.Errorf("Start with Postgres URL %q: %v, want a postgres URL error", bad, err)
		}
	}
	_, err := Start(context.Background(), Options{DatabaseFile: "x.db", Postgres: &Postgres{URL: "postgres://h/t"}})
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("Start with a file and Postgres: %v, want a refusal", err)
	}
}

// testPostgres names two fresh databases on the test Postgres server
// (EASEL_TEST_DATABASE_URL, else the local one), so parallel tests do not
// share a server's state, and drops them once the test's servers stopped.
func testPostgres(t testing.TB) *Postgres {
	t.Helper()
	base := os.Getenv("EASEL_TEST_DATABASE_URL")
	if base == "" {
		base = "postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Skipf("postgres at %s: %v", u.Redacted(), err)
	}
	_ = admin.Close(ctx)
	name := fmt.Sprintf("temporal_test_%d_%d", time.Now().UnixNano()%1e9, rand.IntN(1e6))
	u.Path = "/" + name
	pg := &Postgres{URL: u.String(), MaxConns: 10}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop %s: %v", name, err)
			return
		}
		defer func() { _ = admin.Close(ctx) }()
		for _, db := range []string{name, name + "_visibility"} {
			if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
				t.Logf("drop %s: %v", db, err)
			}
		}
	})
	return pg
}
