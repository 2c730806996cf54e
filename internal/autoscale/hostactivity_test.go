package autoscale

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workerpb "go.temporal.io/api/worker/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fakeWorkers answers ListWorkers with two pages of heartbeats.
type fakeWorkers struct {
	workflowservice.WorkflowServiceClient
	pages [][]*workerpb.WorkerHeartbeat
	query string
}

func (f *fakeWorkers) ListWorkers(_ context.Context, req *workflowservice.ListWorkersRequest, _ ...grpc.CallOption) (*workflowservice.ListWorkersResponse, error) {
	f.query = req.GetQuery()
	page := 0
	if len(req.GetNextPageToken()) > 0 {
		page = int(req.GetNextPageToken()[0])
	}
	resp := &workflowservice.ListWorkersResponse{}
	for _, hb := range f.pages[page] {
		//lint:ignore SA1019 the server's answer the driver reads (see hostactivity.go)
		resp.WorkersInfo = append(resp.WorkersInfo, &workerpb.WorkerInfo{WorkerHeartbeat: hb})
	}
	if page+1 < len(f.pages) {
		resp.NextPageToken = []byte{byte(page + 1)}
	}
	return resp, nil
}

// heartbeatNow is when the test's workers last sent their heartbeats.
var heartbeatNow = time.Date(2025, 1, 6, 12, 0, 0, 0, time.UTC)

func heartbeat(identity string, used int32, status enumspb.WorkerStatus, started time.Time) *workerpb.WorkerHeartbeat {
	return &workerpb.WorkerHeartbeat{WorkerIdentity: identity, Status: status, StartTime: timestamppb.New(started),
		HeartbeatTime: timestamppb.New(heartbeatNow.Add(-5 * time.Second)), ElapsedSinceLastHeartbeat: durationpb.New(5 * time.Second),
		ActivityTaskSlotsInfo: &workerpb.WorkerSlotsInfo{CurrentUsedSlots: used}}
}

// GPU workers name their instance in their identity; the busy ones have
// slots in use; an idle one's idle time starts at the first read that saw
// it idle; stopped, stale and unnamed workers are not hosts.
func TestWorkerHeartbeatsHosts(t *testing.T) {
	now := heartbeatNow
	started := now.Add(-time.Hour)
	// A worker that stopped beating: the server still lists its last
	// heartbeat, which said 5 s since the one before.
	stale := heartbeat("gpu-t4@i-0000000000000000d", 0, enumspb.WORKER_STATUS_RUNNING, started)
	stale.HeartbeatTime = timestamppb.New(now.Add(-2 * time.Minute))
	svc := &fakeWorkers{pages: [][]*workerpb.WorkerHeartbeat{
		{heartbeat("gpu-t4@i-0000000000000000a", 1, enumspb.WORKER_STATUS_RUNNING, started),
			heartbeat("gpu-t4@i-0000000000000000b", 0, enumspb.WORKER_STATUS_RUNNING, started)},
		{heartbeat("gpu-t4@i-0000000000000000c", 0, enumspb.WORKER_STATUS_SHUTTING_DOWN, started), stale,
			heartbeat("4242@laptop", 0, enumspb.WORKER_STATUS_RUNNING, started)},
	}}
	w := &WorkerHeartbeats{Service: svc, Namespace: "easel", Now: func() time.Time { return now }}
	hosts, err := w.Hosts(context.Background(), "t4")
	if err != nil {
		t.Fatal(err)
	}
	if svc.query != `TaskQueue = "gpu-t4"` || len(hosts) != 2 {
		t.Fatalf("query %q, hosts %+v", svc.query, hosts)
	}
	if a, b := hosts["i-0000000000000000a"], hosts["i-0000000000000000b"]; a.BusyGPUs != 1 || !a.IdleSince.IsZero() ||
		b.BusyGPUs != 0 || !b.IdleSince.Equal(now) || !b.Started.Equal(started) {
		t.Fatalf("hosts %+v", hosts)
	}
	later := now.Add(30 * time.Second)
	w.Now = func() time.Time { return later }
	hosts, _ = w.Hosts(context.Background(), "t4")
	if !hosts["i-0000000000000000b"].IdleSince.Equal(now) {
		t.Fatalf("idle since %s, want the first read that saw it idle, %s", hosts["i-0000000000000000b"].IdleSince, now)
	}
}
