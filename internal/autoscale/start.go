package autoscale

import (
	"context"
	"fmt"

	"github.com/easel/easel/internal/catalog"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// searchGPUTier is the GpuTier search attribute the generations also carry,
// so `GpuTier="t4"` in Temporal UI lists a tier's jobs and its autoscaler.
var searchGPUTier = temporal.NewSearchAttributeKeyKeyword("GpuTier")

// StartWorkflow starts a tier's autoscaler on catalog.ControlQueue, or
// returns the one already running: a restart of the caller must not reset
// cooldowns, and a running autoscaler's config changes only through the
// set_config update. The namespace must have the GpuTier search attribute.
func StartWorkflow(ctx context.Context, c client.Client, tier string, cfg Config) (client.WorkflowRun, error) {
	in := Input{Tier: tier, Config: cfg}
	if err := validateInput(in); err != nil {
		return nil, err
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       WorkflowID(tier),
		TaskQueue:                catalog.ControlQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes:    temporal.NewSearchAttributes(searchGPUTier.ValueSet(tier)),
	}, WorkflowName, in)
	if err != nil {
		return nil, fmt.Errorf("start autoscaler of tier %s: %w", tier, err)
	}
	return run, nil
}

// EnsureWorkflow starts a tier's autoscaler, or finds the running one and
// sends it cfg through the set_config update, so a deploy with a new
// configuration takes effect without losing cooldowns or a pause. It
// returns the status after the update.
func EnsureWorkflow(ctx context.Context, c client.Client, tier string, cfg Config) (Status, error) {
	run, err := StartWorkflow(ctx, c, tier, cfg)
	if err != nil {
		return Status{}, err
	}
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: run.GetID(), UpdateName: SetConfigUpdate,
		Args: []any{cfg}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		return Status{}, fmt.Errorf("configure autoscaler of tier %s: %w", tier, err)
	}
	var st Status
	if err := h.Get(ctx, &st); err != nil {
		return Status{}, fmt.Errorf("configure autoscaler of tier %s: %w", tier, err)
	}
	return st, nil
}
