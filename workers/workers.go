// Package workers decides which workflows and activities run on which task
// queue: the control-plane worker (workflows, ledger, cleanup) and one GPU
// worker per tier (renders).
package workers

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/gpu"
	"github.com/easel/easel/workflows"
)

// Control builds the control-plane worker on workflows.ControlQueue. The
// ledger activities run there as local activities of the generation workflow.
// billing, when not nil (Stripe is configured), adds the subscription
// workflow and its Stripe activities.
func Control(c client.Client, ledger *activities.Ledger, objects *activities.Objects, billing *activities.Billing, opts worker.Options) worker.Worker {
	w := worker.New(c, workflows.ControlQueue, opts)
	w.RegisterWorkflowWithOptions(workflows.Generation, workflow.RegisterOptions{Name: workflows.GenerationWorkflow})
	w.RegisterActivity(ledger)
	w.RegisterActivity(objects)
	if billing != nil {
		w.RegisterWorkflowWithOptions(workflows.Subscription, workflow.RegisterOptions{Name: workflows.SubscriptionWorkflow})
		w.RegisterActivity(billing)
	}
	return w
}

// GPU builds a render worker for one tier. slots is the number of renders it
// runs at once: one per GPU on the host, each pinned to its device by
// render.GPUs (a gpu.Host; without one, slots plain devices). The worker
// holds one task more than it has GPUs, so the next job is already on the
// host when a render ends and the GPU never waits for a poll; the cost is
// that a higher-priority job arriving later can wait behind one
// already-taken job per GPU.
func GPU(c client.Client, tier string, render *activities.Render, slots int, opts worker.Options) worker.Worker {
	slots = max(slots, 1)
	if render.GPUs == nil {
		render.GPUs = gpu.Pseudo(slots)
	}
	if render.Temporal == nil {
		render.Temporal = c
	}
	opts.MaxConcurrentActivityExecutionSize = slots + 1
	// A GPU host never runs workflows or local activities.
	opts.DisableWorkflowWorker = true
	w := worker.New(c, workflows.GPUQueue(tier), opts)
	w.RegisterActivity(render)
	return w
}

// ServeHoldReaper adds the hold reaper to the control worker.
func ServeHoldReaper(w worker.Worker, r *activities.Reaper) {
	if r.WorkflowID == nil {
		r.WorkflowID = workflows.GenerationID
	}
	if r.JobID == nil {
		r.JobID = workflows.GenerationJob
	}
	if r.WorkflowType == "" {
		r.WorkflowType = workflows.GenerationWorkflow
	}
	w.RegisterWorkflowWithOptions(workflows.HoldReaper, workflow.RegisterOptions{Name: workflows.HoldReaperWorkflow})
	w.RegisterActivity(r)
}

// StartHoldReaper starts the hold reaper workflow, or leaves the running
// one alone: every control worker calls it at start.
func StartHoldReaper(ctx context.Context, c client.Client) error {
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.HoldReaperID,
		TaskQueue:                workflows.ControlQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, workflows.HoldReaper, workflows.HoldReaperInput{})
	if err != nil {
		return fmt.Errorf("start the hold reaper: %w", err)
	}
	return nil
}
