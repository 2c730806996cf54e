// Package workers is Easel's composition root for Temporal workers: it
// decides which workflows and activities run on which task queue and builds
// them from the services in Deps. `easel worker`, `easel dev` and the tests
// all build their workers here, so what runs in a test is what runs in
// production.
//
//   - NewControl: the control-plane worker on catalog.ControlQueue: the
//     generation, subscription, hold-reaper and webhook delivery workflows,
//     the ledger activities (local activities of the generation workflow),
//     image cleanup, billing, webhooks, and the autoscaler when
//     Deps.Autoscale is set.
//   - NewGPU: one render worker per GPU tier, on catalog.GPUQueue(tier).
package workers

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/autoscale"
	"github.com/easel/easel/internal/balancecache"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/gpu"
	"github.com/easel/easel/internal/notify"
	"github.com/easel/easel/internal/objects"
	"github.com/easel/easel/internal/payments"
	"github.com/easel/easel/internal/progress"
	"github.com/easel/easel/internal/servedmodels"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/webhook"
	"github.com/easel/easel/workflows"
)

// Deps are the services workers are built from. A GPU worker needs only
// Temporal, Objects, Progress and Log.
type Deps struct {
	Temporal client.Client
	Store    *store.Store
	Redis    *redis.Client // the balance cache
	Progress *progress.Hub
	Objects  *objects.Bucket
	// Payments charges subscriptions through Stripe; nil (no
	// STRIPE_SECRET_KEY) bills free subscriptions only.
	Payments *payments.Gateway
	// Notices delivers notices to users; nil logs them.
	Notices notify.Sender
	// Autoscale, when set, runs the GPU autoscaler workflows on the control
	// worker with this driver (EC2 Auto Scaling, or easel dev's local pool).
	Autoscale *autoscale.Activities
	// ServedModels, when set, is where GPU workers report the model
	// families their engine serves.
	ServedModels *servedmodels.Registry
	// ProgressEvery throttles progress events per job, PreviewEvery the
	// preview pictures on them (0: the defaults).
	ProgressEvery time.Duration
	PreviewEvery  time.Duration
	// WebhookGuard decides which addresses customers' webhooks may reach
	// (its zero value: https and public addresses only; easel dev and the
	// tests allow loopback).
	WebhookGuard webhook.Guard
	// WebhookFirstRetry is a delivery's first retry wait (0: the default,
	// 30 s), and WebhookTimeout an attempt's limit (0: webhook.RequestTimeout,
	// 15 s); tests shorten both.
	WebhookFirstRetry time.Duration
	WebhookTimeout    time.Duration
	Log               *slog.Logger
	// Options are the control worker's Temporal options.
	Options worker.Options
}

// Control is the control-plane worker and the activities it runs, which a
// caller may tune before Start.
type Control struct {
	worker.Worker
	Ledger   *activities.Ledger
	Objects  *activities.Objects
	Billing  *activities.Billing
	Reaper   *activities.Reaper
	Webhooks *activities.Webhooks
	temporal client.Client
}

// NewControl builds the control-plane worker.
func NewControl(d Deps) *Control {
	log := d.logger()
	balances := d.balances() // one cache, shared by every activity that moves credits
	notices := d.Notices
	if notices == nil {
		notices = notify.LogSender{Log: log}
	}
	c := &Control{
		Worker: worker.New(d.Temporal, catalog.ControlQueue, d.Options),
		Ledger: &activities.Ledger{Store: d.Store, Progress: d.Progress, Log: log, Balances: balances,
			Notices: &notify.LowBalance{Store: d.Store, Sender: notices, Log: log}},
		Objects: &activities.Objects{Bucket: d.Objects},
		Billing: &activities.Billing{Payments: d.Payments, Store: d.Store, Log: log, Notices: notices,
			Balances: balances},
		Reaper: &activities.Reaper{Store: d.Store, Temporal: d.Temporal, Balances: balances, Log: log,
			WorkflowID: workflows.GenerationID, JobID: workflows.GenerationJob,
			WorkflowType: workflows.GenerationWorkflow},
		Webhooks: d.webhooks(log),
		temporal: d.Temporal,
	}
	c.RegisterWorkflowWithOptions(workflows.Generation, workflow.RegisterOptions{Name: workflows.GenerationWorkflow})
	c.RegisterWorkflowWithOptions(workflows.Subscription, workflow.RegisterOptions{Name: workflows.SubscriptionWorkflow})
	c.RegisterWorkflowWithOptions(workflows.HoldReaper, workflow.RegisterOptions{Name: workflows.HoldReaperWorkflow})
	c.RegisterWorkflowWithOptions(workflows.WebhookDelivery, workflow.RegisterOptions{Name: workflows.WebhookDeliveryWorkflow})
	c.RegisterActivity(c.Ledger)
	c.RegisterActivity(c.Objects)
	c.RegisterActivity(c.Billing)
	c.RegisterActivity(c.Reaper)
	c.RegisterActivity(c.Webhooks)
	if d.Autoscale != nil {
		autoscale.Register(c, d.Autoscale)
	}
	return c
}

// Start starts polling, then the hold reaper workflow (or leaves the one
// running alone): every control worker starts it, so it is never missing.
func (c *Control) Start() error {
	if err := c.Worker.Start(); err != nil {
		return fmt.Errorf("start the control worker: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := StartHoldReaper(ctx, c.temporal); err != nil {
		c.Worker.Stop()
		return err
	}
	return nil
}

// StartHoldReaper starts the hold reaper workflow, or leaves the running
// one alone.
func StartHoldReaper(ctx context.Context, c client.Client) error {
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.HoldReaperID,
		TaskQueue:                catalog.ControlQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, workflows.HoldReaper, workflows.HoldReaperInput{})
	if err != nil {
		return fmt.Errorf("start the hold reaper: %w", err)
	}
	return nil
}

// GPUOptions describe the host a render worker runs on.
type GPUOptions struct {
	// Slots is the number of renders run at once: one per GPU (default 1).
	Slots int
	// GPUs pins each render to a device (a gpu.Host); nil gives Slots
	// plain devices.
	GPUs activities.GPUs
	// Drain tells renders the worker is stopping; nil never drains.
	Drain activities.Drain
	// InstanceID is the EC2 instance the worker runs on (config
	// GPU_INSTANCE_ID_FILE); when set, the worker's Temporal identity is
	// GPUIdentity(tier, InstanceID), by which the autoscaler tells the host
	// busy or idle from the worker's heartbeats.
	InstanceID string
	// Options are the worker's Temporal options (stop timeout,
	// interceptors); the slot count, the disabled workflow worker, a
	// heartbeat throttle of at most activities.RenderHeartbeatEvery and,
	// with InstanceID, the identity are set here.
	Options worker.Options
}

// HeartbeatEvery is the Temporal worker heartbeat interval of Easel's
// clients (client.Options.WorkerHeartbeatInterval; the SDK's default is a
// minute): a GPU worker's heartbeat carries its activity slots in use,
// from which the autoscaler (autoscale.WorkerHeartbeats) tells a host busy
// or idle, so a host that has just taken a render shows busy, and is
// protected from scale-in, within this long. The server must accept them
// (frontend.WorkerHeartbeatsEnabled).
const HeartbeatEvery = 5 * time.Second

// GPUIdentity is the Temporal worker identity of a GPU worker on an EC2
// instance, its task queue and instance: "gpu-t4@i-0123456789abcdef0".
func GPUIdentity(tier, instanceID string) string {
	return catalog.GPUQueue(tier) + "@" + instanceID
}

// GPU is a render worker and its Render activity. While it runs, it
// reports the model families its engine serves (servedmodels), when the
// engine can list them and Deps.ServedModels is set.
type GPU struct {
	worker.Worker
	Render *activities.Render
	tier   string
	served *servedmodels.Registry
	log    *slog.Logger
	stop   context.CancelFunc
	done   chan struct{}
}

// Start starts the worker, then the model reports.
func (g *GPU) Start() error {
	if err := g.Worker.Start(); err != nil {
		return err
	}
	lister, ok := g.Render.Engine.(engine.ModelLister)
	if !ok || g.served == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stop, g.done = cancel, make(chan struct{})
	go func() {
		defer close(g.done)
		g.served.Run(ctx, g.tier, lister, func(err error) {
			g.log.Warn("report served models", "tier", g.tier, "err", err)
		})
	}()
	return nil
}

// Stop ends the model reports, then the worker.
func (g *GPU) Stop() {
	if g.stop != nil {
		g.stop()
		<-g.done
	}
	g.Worker.Stop()
}

// NewGPU builds a render worker for one tier. The worker holds one task
// more than it has GPUs, so the next job is already on the host when a
// render ends and the GPU never waits for a poll; the cost is that a
// higher-priority job arriving later can wait behind one already-taken job
// per GPU.
func NewGPU(d Deps, tier string, eng engine.Engine, o GPUOptions) *GPU {
	slots := max(o.Slots, 1)
	render := &activities.Render{Tier: tier, Engine: eng, Objects: d.Objects, Progress: d.Progress, Log: d.logger(),
		ProgressEvery: d.ProgressEvery, PreviewEvery: d.PreviewEvery, GPUs: o.GPUs, Drain: o.Drain}
	if render.GPUs == nil {
		render.GPUs = gpu.Pseudo(slots)
	}
	opts := o.Options
	opts.MaxConcurrentActivityExecutionSize = slots + 1
	// A render hears of its job's cancel only in a heartbeat's answer:
	// heartbeats go out every second, not every 80 % of the heartbeat
	// timeout, so a canceled job frees its GPU within about a second.
	if opts.MaxHeartbeatThrottleInterval <= 0 || opts.MaxHeartbeatThrottleInterval > activities.RenderHeartbeatEvery {
		opts.MaxHeartbeatThrottleInterval = activities.RenderHeartbeatEvery
	}
	// A GPU host never runs workflows or local activities.
	opts.DisableWorkflowWorker = true
	if o.InstanceID != "" {
		opts.Identity = GPUIdentity(tier, o.InstanceID)
	}
	w := worker.New(d.Temporal, catalog.GPUQueue(tier), opts)
	w.RegisterActivity(render)
	return &GPU{Worker: w, Render: render, tier: tier, served: d.ServedModels, log: d.logger()}
}

// webhooks builds the webhook activities: a sender whose client goes
// through the guard, and delivery workflows started on this Temporal.
func (d Deps) webhooks(log *slog.Logger) *activities.Webhooks {
	client := webhook.NewClient(d.WebhookGuard)
	if d.WebhookTimeout > 0 {
		client.Timeout = d.WebhookTimeout
	}
	return &activities.Webhooks{Store: d.Store, Log: log, Guard: d.WebhookGuard, Sender: webhook.Sender{Client: client},
		StartDelivery: func(ctx context.Context, userID, deliveryID string) error {
			return workflows.StartWebhookDelivery(ctx, d.Temporal, userID,
				workflows.WebhookDeliveryInput{DeliveryID: deliveryID, FirstRetry: d.WebhookFirstRetry})
		}}
}

func (d Deps) logger() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

// balances is the balance cache, nil without Redis.
func (d Deps) balances() *balancecache.Cache {
	if d.Redis == nil {
		return nil
	}
	return balancecache.New(d.Redis)
}
