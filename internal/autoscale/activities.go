package autoscale

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/easel/easel/internal/catalog"
	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Driver changes how many GPU instances serve a tier.
type Driver interface {
	// Capacity is the tier's desired capacity as the driver sees it now;
	// the autoscaler decides from it, so a change made by hand is noticed.
	Capacity(ctx context.Context, tier string) (int, error)
	// SetCapacity asks for n instances; it is idempotent.
	SetCapacity(ctx context.Context, tier string, n int) error
}

// FleetDriver is a Driver that reports a tier's instances, so PolicyWork
// removes exactly the idle ones and counts the booting ones, and that may
// run a second, spot group per tier.
type FleetDriver interface {
	Driver
	// ReportsFleet says whether Fleet reports (the EC2 driver needs a
	// source of host activity); ObserveTier falls back to Capacity.
	ReportsFleet() bool
	Fleet(ctx context.Context, tier string) (Fleet, error)
	// SetSpotCapacity sets the desired capacity of the tier's spot group;
	// it fails with ErrUnknownTier where the tier has none.
	SetSpotCapacity(ctx context.Context, tier string, n int) error
}

// WarmPoolDriver keeps a tier's warm pool (the EC2 driver).
type WarmPoolDriver interface {
	EnsureWarmPool(ctx context.Context, tier string, prepared int) (WarmPoolStatus, error)
}

// WarmPoolInput asks for a tier's warm pool of Prepared instances.
type WarmPoolInput struct {
	Tier     string
	Prepared int
}

// ConfigureWarmPool has the driver keep the tier's warm pool.
func (a *Activities) ConfigureWarmPool(ctx context.Context, in WarmPoolInput) (WarmPoolStatus, error) {
	wd, ok := a.Driver.(WarmPoolDriver)
	if !ok {
		return WarmPoolStatus{}, nonRetryable(ErrUnknownTier, fmt.Errorf("tier %s: the driver keeps no warm pool", in.Tier))
	}
	st, err := wd.EnsureWarmPool(ctx, in.Tier, in.Prepared)
	if err != nil {
		return st, fmt.Errorf("warm pool of tier %s: %w", in.Tier, err)
	}
	activity.GetLogger(ctx).Info("gpu warm pool", "tier", in.Tier, "prepared", st.Prepared, "warm", st.Warm, "changed", st.Changed)
	return st, nil
}

// Fleet is a tier's instances as a FleetDriver sees them.
type Fleet struct {
	Capacity    int // the on-demand group's desired capacity
	Spot        int // the spot group's desired capacity (0 without one)
	SpotShort   int // spot instances the group could not launch: EC2 refused the capacity
	SpotBooting int // spot instances launched that do not take work yet
	Booting     int // instances of either group that do not take work yet
	Idle        []IdleInstance
	BusyGPUs    int
}

// ErrUnknownTier is the application error type of a tier the driver has no
// group for: retrying cannot help, the configuration must change.
const ErrUnknownTier = "AutoscaleUnknownTier"

// ErrInvalidCapacity is the application error type of a capacity the
// provider refuses (outside the Auto Scaling group's own min and max).
const ErrInvalidCapacity = "AutoscaleInvalidCapacity"

// Activities reads backlogs from Temporal and changes capacity through a
// driver. Service is the Temporal client's WorkflowService().
type Activities struct {
	Service   workflowservice.WorkflowServiceClient
	Namespace string
	Driver    Driver
}

// ObserveInput names the tier to read.
type ObserveInput struct{ Tier string }

// SetCapacityInput asks for a tier's capacity; Reason goes to the log.
// With SpotSet, the tier's spot group is set to Spot too.
type SetCapacityInput struct {
	Tier     string
	Capacity int
	Spot     int  `json:",omitempty"`
	SpotSet  bool `json:",omitempty"`
	Reason   string
}

// FreePriorityKey is the priority key of Free renders
// (workflows.PriorityFree): keys from it up are the Free class, the ones
// below it paid. cmd/easel's tests check the two agree.
const FreePriorityKey = 4

// ObserveTier reads the tier's activity backlog, by class where the
// server reports it per priority key, and its capacity: with a driver
// that reports its fleet (FleetDriver), also its spot group, booting and
// idle instances and busy GPUs. At is left for the workflow to stamp with
// its own clock.
func (a *Activities) ObserveTier(ctx context.Context, in ObserveInput) (Observation, error) {
	o, err := a.backlog(ctx, catalog.GPUQueue(in.Tier))
	if err != nil {
		return Observation{}, err
	}
	if err := a.readFleet(ctx, in.Tier, &o); err != nil {
		return Observation{}, err
	}
	queueBacklog.WithLabelValues(in.Tier).Set(float64(o.Backlog))
	queueBacklogAge.WithLabelValues(in.Tier).Set(o.BacklogAge.Seconds())
	gpuCapacity.WithLabelValues(in.Tier).Set(float64(o.Capacity + o.Spot - o.SpotShort))
	if spec, ok := TierSpecs[in.Tier]; ok {
		// Temporal reports counts; every waiting render is priced at the
		// tier's per-image estimate until the backlog's own sum is read.
		o.GPUs = spec.GPUs
		o.BacklogWork = time.Duration(o.Backlog) * spec.ServiceTime
		o.Paid.Work = time.Duration(o.Paid.Count) * spec.ServiceTime
		o.Free.Work = time.Duration(o.Free.Count) * spec.ServiceTime
	}
	return o, nil
}

// readFleet fills the capacity, and the fleet where the driver reports it.
func (a *Activities) readFleet(ctx context.Context, tier string, o *Observation) error {
	if fd, ok := a.Driver.(FleetDriver); ok && fd.ReportsFleet() {
		f, err := fd.Fleet(ctx, tier)
		if err != nil {
			return fmt.Errorf("read fleet of tier %s: %w", tier, err)
		}
		o.Capacity, o.Spot, o.SpotShort, o.SpotBooting = f.Capacity, f.Spot, f.SpotShort, f.SpotBooting
		o.InstancesKnown, o.Booting, o.Idle, o.BusyGPUs = true, f.Booting, f.Idle, f.BusyGPUs
		return nil
	}
	capacity, err := a.Driver.Capacity(ctx, tier)
	if err != nil {
		return fmt.Errorf("read capacity of tier %s: %w", tier, err)
	}
	o.Capacity = capacity
	return nil
}

// backlog uses DescribeTaskQueue's default mode with report_stats: the
// SDK's DescribeTaskQueueEnhanced sends the ENHANCED mode, which the API now
// marks deprecated and answers per build id; the default mode returns one
// stats block for the queue, all priorities included, and one per
// priority key, which splits the paid renders from the Free ones.
func (a *Activities) backlog(ctx context.Context, queue string) (Observation, error) {
	resp, err := a.Service.DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace:     a.Namespace,
		TaskQueue:     &taskqueuepb.TaskQueue{Name: queue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY,
		ReportStats:   true,
	})
	if err != nil {
		return Observation{}, fmt.Errorf("describe task queue %s: %w", queue, err)
	}
	st := resp.GetStats()
	if st == nil {
		return Observation{}, fmt.Errorf("describe task queue %s: the server returned no stats", queue)
	}
	o := Observation{Backlog: st.GetApproximateBacklogCount(), BacklogAge: st.GetApproximateBacklogAge().AsDuration()}
	byKey := resp.GetStatsByPriorityKey()
	if len(byKey) == 0 {
		return o, nil
	}
	o.ClassesKnown = true
	for key, ks := range byKey {
		class := &o.Paid
		if key >= FreePriorityKey {
			class = &o.Free
		}
		class.Count += ks.GetApproximateBacklogCount()
		class.Age = max(class.Age, ks.GetApproximateBacklogAge().AsDuration())
	}
	return o, nil
}

// SetTierCapacity asks the driver for the tier's new capacity, and its
// spot group's when the input sets it.
func (a *Activities) SetTierCapacity(ctx context.Context, in SetCapacityInput) error {
	activity.GetLogger(ctx).Info("set gpu capacity", "tier", in.Tier, "capacity", in.Capacity, "spot", in.Spot, "reason", in.Reason)
	if in.SpotSet {
		fd, ok := a.Driver.(FleetDriver)
		if !ok {
			return nonRetryable(ErrUnknownTier, fmt.Errorf("tier %s: the driver has no spot group", in.Tier))
		}
		if err := fd.SetSpotCapacity(ctx, in.Tier, in.Spot); err != nil {
			return fmt.Errorf("set spot capacity of tier %s to %d: %w", in.Tier, in.Spot, err)
		}
	}
	if err := a.Driver.SetCapacity(ctx, in.Tier, in.Capacity); err != nil {
		return fmt.Errorf("set capacity of tier %s to %d: %w", in.Tier, in.Capacity, err)
	}
	return nil
}

// Register adds the autoscaler workflow and its activities to a worker on
// catalog.ControlQueue (where StartWorkflow starts the workflows).
func Register(w worker.Registry, acts *Activities) {
	w.RegisterWorkflowWithOptions(Autoscaler, workflow.RegisterOptions{Name: WorkflowName})
	w.RegisterActivity(acts)
}

// nonRetryable marks an error retrying cannot fix.
func nonRetryable(kind string, err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err
	}
	return temporal.NewNonRetryableApplicationError(err.Error(), kind, err)
}
