package autoscale

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workerpb "go.temporal.io/api/worker/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/easel/easel/internal/catalog"
)

// WorkerHeartbeats is the HostActivity of GPU workers that send Temporal
// worker heartbeats (the SDK's WorkerHeartbeatInterval, the server's
// frontend.WorkerHeartbeatsEnabled) and name their EC2 instance in their
// worker identity or host name (e.g. "gpu-t4@i-0123456789abcdef0"):
// ListWorkers on the tier's task queue gives each worker's activity slots
// in use. Heartbeats say whether a worker renders now, not since when it
// has not: the first poll that sees a worker idle starts its idle time,
// and a restart of the control worker starts them all again (it keeps
// hosts a little longer, never removes one early).
type WorkerHeartbeats struct {
	Service   workflowservice.WorkflowServiceClient
	Namespace string
	Now       func() time.Time // default time.Now

	mu        sync.Mutex
	idleSince map[string]time.Time // instance id -> first poll that saw it idle
}

// instanceID finds an EC2 instance id in a worker's identity or host name.
var instanceID = regexp.MustCompile(`\bi-[0-9a-f]{8,17}\b`)

// heartbeatStale is how old a worker's last heartbeat may be before the
// worker counts as gone (its host stopping or stopped). The server keeps a
// silent worker's last heartbeat for minutes (matching's
// workerRegistryEntryTTL, 5 min), as the worker sent it: its heartbeat time
// (the GPU host's clock, NTP-synchronised on EC2 like the control
// worker's) says how old it is; its elapsed-since-last never grows.
// Easel's workers beat every workers.HeartbeatEvery (5 s).
const heartbeatStale = time.Minute

// Hosts lists the running GPU workers of the tier by instance.
func (w *WorkerHeartbeats) Hosts(ctx context.Context, tier string) (map[string]HostState, error) {
	beats, err := w.list(ctx, catalog.GPUQueue(tier))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.idleSince == nil {
		w.idleSince = map[string]time.Time{}
	}
	hosts := map[string]HostState{}
	for _, hb := range beats {
		id := instanceID.FindString(hb.GetWorkerIdentity())
		if id == "" {
			id = instanceID.FindString(hb.GetHostInfo().GetHostName())
		}
		if id == "" || hb.GetStatus() != enumspb.WORKER_STATUS_RUNNING ||
			now.Sub(hb.GetHeartbeatTime().AsTime()) > heartbeatStale {
			continue
		}
		h := hosts[id]
		h.Started = hb.GetStartTime().AsTime()
		h.BusyGPUs += int(hb.GetActivityTaskSlotsInfo().GetCurrentUsedSlots())
		hosts[id] = h
	}
	for id, h := range hosts {
		if h.BusyGPUs > 0 {
			delete(w.idleSince, id)
			continue
		}
		since, seen := w.idleSince[id]
		if !seen {
			since = now
			w.idleSince[id] = now
		}
		h.IdleSince = since
		hosts[id] = h
	}
	for id := range w.idleSince {
		if _, up := hosts[id]; !up {
			delete(w.idleSince, id)
		}
	}
	return hosts, nil
}

// list pages through the workers polling a task queue.
func (w *WorkerHeartbeats) list(ctx context.Context, queue string) ([]*workerpb.WorkerHeartbeat, error) {
	var beats []*workerpb.WorkerHeartbeat
	var token []byte
	for {
		resp, err := w.Service.ListWorkers(ctx, &workflowservice.ListWorkersRequest{Namespace: w.Namespace,
			PageSize: 100, NextPageToken: token, Query: fmt.Sprintf("TaskQueue = %q", queue)})
		if err != nil {
			return nil, fmt.Errorf("list workers of %s: %w", queue, err)
		}
		//lint:ignore SA1019 the full heartbeat carries the slots in use; WorkerListInfo does not
		for _, info := range resp.GetWorkersInfo() {
			beats = append(beats, info.GetWorkerHeartbeat())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return beats, nil
		}
	}
}
