package autoscale

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/testsuite"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
)

// fakeService answers DescribeTaskQueue; the embedded interface panics on
// anything else, which no activity calls.
type fakeService struct {
	workflowservice.WorkflowServiceClient
	req  *workflowservice.DescribeTaskQueueRequest
	resp *workflowservice.DescribeTaskQueueResponse
	err  error
}

func (f *fakeService) DescribeTaskQueue(_ context.Context, req *workflowservice.DescribeTaskQueueRequest, _ ...grpc.CallOption) (*workflowservice.DescribeTaskQueueResponse, error) {
	f.req = req
	return f.resp, f.err
}

func TestObserveTier(t *testing.T) {
	svc := &fakeService{resp: &workflowservice.DescribeTaskQueueResponse{Stats: &taskqueuepb.TaskQueueStats{
		ApproximateBacklogCount: 42, ApproximateBacklogAge: durationpb.New(90 * time.Second)}}}
	pool := NewLocalPool((&workerLog{}).start)
	if err := pool.SetCapacity(context.Background(), "a10g", 2); err != nil {
		t.Fatal(err)
	}
	a := &Activities{Service: svc, Namespace: "easel", Driver: pool}
	env := activityEnv()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.ObserveTier, ObserveInput{Tier: "a10g"})
	if err != nil {
		t.Fatal(err)
	}
	var o Observation
	if err := v.Get(&o); err != nil {
		t.Fatal(err)
	}
	if o.Backlog != 42 || o.BacklogAge != 90*time.Second || o.Capacity != 2 {
		t.Fatalf("observation %+v", o)
	}
	r := svc.req
	if r.GetNamespace() != "easel" || r.GetTaskQueue().GetName() != "gpu-a10g" || !r.GetReportStats() ||
		r.GetTaskQueueType() != enumspb.TASK_QUEUE_TYPE_ACTIVITY {
		t.Fatalf("request %v", r)
	}
}

// The server's stats per priority key split the backlog: keys below
// FreePriorityKey are paid, the rest Free; each class's work is priced at
// the tier's per-image estimate.
func TestObserveTierSplitsFreeRenders(t *testing.T) {
	stats := func(n int64, age time.Duration) *taskqueuepb.TaskQueueStats {
		return &taskqueuepb.TaskQueueStats{ApproximateBacklogCount: n, ApproximateBacklogAge: durationpb.New(age)}
	}
	svc := &fakeService{resp: &workflowservice.DescribeTaskQueueResponse{Stats: stats(13, 2*time.Minute),
		StatsByPriorityKey: map[int32]*taskqueuepb.TaskQueueStats{1: stats(1, 5*time.Second), 3: stats(5, 20*time.Second),
			FreePriorityKey: stats(7, 2*time.Minute)}}}
	a := &Activities{Service: svc, Namespace: "easel", Driver: NewLocalPool((&workerLog{}).start)}
	env := activityEnv()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.ObserveTier, ObserveInput{Tier: "t4"})
	if err != nil {
		t.Fatal(err)
	}
	var o Observation
	if err := v.Get(&o); err != nil {
		t.Fatal(err)
	}
	paid := Waiting{Count: 6, Age: 20 * time.Second, Work: 6 * 20 * time.Second}
	free := Waiting{Count: 7, Age: 2 * time.Minute, Work: 7 * 20 * time.Second}
	if !o.ClassesKnown || o.Paid != paid || o.Free != free || o.BacklogWork != 13*20*time.Second {
		t.Fatalf("paid %+v, Free %+v, work %s", o.Paid, o.Free, o.BacklogWork)
	}
}

// fleetPool is a LocalPool that reports a fleet, as the EC2 driver does
// with host activity.
type fleetPool struct {
	*LocalPool
	fleet Fleet
	spot  int
}

func (f *fleetPool) ReportsFleet() bool                                       { return true }
func (f *fleetPool) Fleet(context.Context, string) (Fleet, error)             { return f.fleet, nil }
func (f *fleetPool) SetSpotCapacity(_ context.Context, _ string, n int) error { f.spot = n; return nil }

// A driver that reports its fleet fills the observation's instances; the
// spot group is set with the on-demand one.
func TestObserveTierReadsTheFleet(t *testing.T) {
	svc := &fakeService{resp: &workflowservice.DescribeTaskQueueResponse{Stats: &taskqueuepb.TaskQueueStats{}}}
	idle := []IdleInstance{{IdleFor: time.Minute, Uptime: time.Hour, Spot: true}}
	d := &fleetPool{LocalPool: NewLocalPool((&workerLog{}).start),
		fleet: Fleet{Capacity: 2, Spot: 3, SpotShort: 1, SpotBooting: 1, Booting: 2, Idle: idle, BusyGPUs: 2}}
	a := &Activities{Service: svc, Namespace: "easel", Driver: d}
	env := activityEnv()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.ObserveTier, ObserveInput{Tier: "t4"})
	if err != nil {
		t.Fatal(err)
	}
	var o Observation
	if err := v.Get(&o); err != nil {
		t.Fatal(err)
	}
	if !o.InstancesKnown || o.Capacity != 2 || o.Spot != 3 || o.SpotShort != 1 || o.SpotBooting != 1 || o.Booting != 2 ||
		len(o.Idle) != 1 || !o.Idle[0].Spot || o.BusyGPUs != 2 {
		t.Fatalf("observation %+v", o)
	}
	if _, err := env.ExecuteActivity(a.SetTierCapacity, SetCapacityInput{Tier: "t4", Capacity: 1, Spot: 4, SpotSet: true}); err != nil {
		t.Fatal(err)
	}
	if n, _ := d.Capacity(context.Background(), "t4"); n != 1 || d.spot != 4 {
		t.Fatalf("capacity %d, spot %d; want 1 and 4", n, d.spot)
	}
	// A plain driver has no spot group.
	a.Driver = d.LocalPool
	if _, err := env.ExecuteActivity(a.SetTierCapacity, SetCapacityInput{Tier: "t4", Capacity: 1, Spot: 4, SpotSet: true}); err == nil ||
		!strings.Contains(err.Error(), ErrUnknownTier) {
		t.Fatalf("spot on a local pool: %v", err)
	}
}

func TestObserveTierErrors(t *testing.T) {
	a := &Activities{Service: &fakeService{resp: &workflowservice.DescribeTaskQueueResponse{}}, Driver: NewLocalPool(nil)}
	env := activityEnv()
	env.RegisterActivity(a)
	if _, err := env.ExecuteActivity(a.ObserveTier, ObserveInput{Tier: "t4"}); err == nil || !strings.Contains(err.Error(), "no stats") {
		t.Fatalf("response without stats: %v", err)
	}
	a.Service = &fakeService{err: errors.New("unavailable")}
	if _, err := env.ExecuteActivity(a.ObserveTier, ObserveInput{Tier: "t4"}); err == nil || !strings.Contains(err.Error(), "describe task queue gpu-t4: unavailable") {
		t.Fatalf("failing service: %v", err)
	}
}

func TestSetTierCapacity(t *testing.T) {
	l := &workerLog{}
	pool := NewLocalPool(l.start)
	a := &Activities{Driver: pool}
	env := activityEnv()
	env.RegisterActivity(a)
	if _, err := env.ExecuteActivity(a.SetTierCapacity, SetCapacityInput{Tier: "t4", Capacity: 2, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := pool.Capacity(context.Background(), "t4"); n != 2 {
		t.Fatalf("capacity %d, want 2", n)
	}
	_, err := env.ExecuteActivity(a.SetTierCapacity, SetCapacityInput{Tier: "t4", Capacity: -1})
	if err == nil || !strings.Contains(err.Error(), ErrInvalidCapacity) {
		t.Fatalf("negative capacity: %v", err)
	}
}

func activityEnv() *testsuite.TestActivityEnvironment {
	var s testsuite.WorkflowTestSuite
	return s.NewTestActivityEnvironment()
}
