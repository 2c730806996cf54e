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
type SetCapacityInput struct {
	Tier     string
	Capacity int
	Reason   string
}

// ObserveTier reads the tier's activity backlog and its current capacity.
// At is left for the workflow to stamp with its own clock.
func (a *Activities) ObserveTier(ctx context.Context, in ObserveInput) (Observation, error) {
	count, age, err := a.backlog(ctx, catalog.GPUQueue(in.Tier))
	if err != nil {
		return Observation{}, err
	}
	capacity, err := a.Driver.Capacity(ctx, in.Tier)
	if err != nil {
		return Observation{}, fmt.Errorf("read capacity of tier %s: %w", in.Tier, err)
	}
	queueBacklog.WithLabelValues(in.Tier).Set(float64(count))
	queueBacklogAge.WithLabelValues(in.Tier).Set(age.Seconds())
	gpuCapacity.WithLabelValues(in.Tier).Set(float64(capacity))
	o := Observation{Backlog: count, BacklogAge: age, Capacity: capacity}
	if spec, ok := TierSpecs[in.Tier]; ok {
		// Temporal reports a count; every waiting render is priced at the
		// tier's per-image estimate until the backlog's own sum is read.
		o.BacklogWork, o.GPUs = time.Duration(count)*spec.ServiceTime, spec.GPUs
	}
	return o, nil
}

// backlog uses DescribeTaskQueue's default mode with report_stats: the
// SDK's DescribeTaskQueueEnhanced sends the ENHANCED mode, which the API now
// marks deprecated and answers per build id; the default mode returns one
// stats block for the queue, all priorities included.
func (a *Activities) backlog(ctx context.Context, queue string) (int64, time.Duration, error) {
	resp, err := a.Service.DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace:     a.Namespace,
		TaskQueue:     &taskqueuepb.TaskQueue{Name: queue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY,
		ReportStats:   true,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("describe task queue %s: %w", queue, err)
	}
	st := resp.GetStats()
	if st == nil {
		return 0, 0, fmt.Errorf("describe task queue %s: the server returned no stats", queue)
	}
	return st.GetApproximateBacklogCount(), st.GetApproximateBacklogAge().AsDuration(), nil
}

// SetTierCapacity asks the driver for the tier's new capacity.
func (a *Activities) SetTierCapacity(ctx context.Context, in SetCapacityInput) error {
	activity.GetLogger(ctx).Info("set gpu capacity", "tier", in.Tier, "capacity", in.Capacity, "reason", in.Reason)
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
