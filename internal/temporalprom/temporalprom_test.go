package temporalprom_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/internal/temporalprom"
	"github.com/easel/easel/internal/testenv"
)

func echo(_ workflow.Context, s string) (string, error) { return s, nil }

// A worker and client on the embedded server report the SDK's metrics
// through the handler: workflow completions, task latencies, requests.
func TestSDKMetricsReachPrometheus(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	base := testenv.Temporal(t, nil)
	c, err := client.NewClientFromExisting(base, client.Options{MetricsHandler: temporalprom.New(reg)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := worker.New(c, "metrics-test", worker.Options{})
	w.RegisterWorkflow(echo)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: "metrics-test"}, echo, "hi")
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP temporal_workflow_completed_total Temporal SDK counter temporal_workflow_completed_total.
# TYPE temporal_workflow_completed_total counter
`
	// The worker counts the completion as it reports the task, which can be
	// just after the result reaches the client.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := testutil.GatherAndCompare(reg, strings.NewReader(want+
			`temporal_workflow_completed_total{activity_type="none",cause="",client_name="temporal_go",failure_reason="",namespace="default",nexus_operation="",nexus_service="",operation="",poller_type="",task_queue="metrics-test",worker_type="none",workflow_type="echo"} 1
`), "temporal_workflow_completed_total")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, n := range []string{"temporal_request_total", "temporal_workflow_task_execution_latency_seconds", "temporal_workflow_endtoend_latency_seconds"} {
		if !names[n] {
			t.Errorf("%s missing; have %v", n, names)
		}
	}
}

// A counter whose SDK name already ends in _total (local_activity_total)
// keeps it once; every other counter gains it, and timers gain _seconds.
func TestSuffixIsNotDoubled(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h := temporalprom.New(reg)
	h.Counter("temporal_local_activity_total").Inc(1)
	h.Counter("temporal_workflow_completed").Inc(1)
	h.Counter("temporal.request-failure").Inc(1)
	h.Timer("temporal_activity_execution_latency").Record(time.Second)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	want := []string{"temporal_activity_execution_latency_seconds", "temporal_local_activity_total",
		"temporal_request_failure_total", "temporal_workflow_completed_total"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("metric names %v, want %v", names, want)
	}
}
