package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/worker"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/balancecache"
	"github.com/easel/easel/config"
	"github.com/easel/easel/engine"
	"github.com/easel/easel/engine/sim"
	"github.com/easel/easel/notify"
	"github.com/easel/easel/workers"
	"github.com/easel/easel/workflows"
)

func workerCommand() *cobra.Command {
	var role, tier, engineName string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a control-plane worker or a GPU worker for one tier",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig()
			if err != nil {
				return err
			}
			switch role {
			case "control":
				return runControlWorker(cmd.Context(), cfg, log)
			case "gpu":
				if !slices.Contains(workflows.Tiers, tier) {
					return fmt.Errorf("--tier must be one of %s", strings.Join(workflows.Tiers, ", "))
				}
				return runGPUWorker(cmd.Context(), cfg, log, tier, engineName)
			}
			return fmt.Errorf("--role must be control or gpu, not %q", role)
		},
	}
	cmd.Flags().StringVar(&role, "role", "control", "control (workflows, ledger) or gpu (renders)")
	cmd.Flags().StringVar(&tier, "tier", workflows.TierT4, "GPU tier for --role gpu: t4, a10g or a100")
	cmd.Flags().StringVar(&engineName, "engine", "sim", "image engine for --role gpu: sim")
	return cmd
}

func runControlWorker(ctx context.Context, cfg config.Config, log loggerT) error {
	d, err := connect(ctx, cfg, config.Needs{Database: true, Redis: true, Temporal: true, S3: true}, log)
	if err != nil {
		return err
	}
	defer d.close()
	w, err := controlWorker(ctx, d, cfg)
	if err != nil {
		return err
	}
	log.Info("control worker started", "task_queue", workflows.ControlQueue)
	return runWorker(ctx, w, cfg.MetricsAddr, log)
}

func controlWorker(ctx context.Context, d *deps, cfg config.Config) (worker.Worker, error) {
	sender, err := noticeSender(ctx, cfg, d.log)
	if err != nil {
		return nil, err
	}
	return workers.Control(d.temporal,
		&activities.Ledger{Store: d.store, Progress: d.progress, Log: d.log, Balances: balancecache.New(d.redis),
			Notices: &notify.LowBalance{Store: d.store, Sender: sender, Log: d.log}},
		&activities.Objects{Store: d.objects}, billing(d, cfg), worker.Options{}), nil
}

// billing returns the Stripe activities when STRIPE_SECRET_KEY is set
// (STRIPE_API_BASE points them at stripe-mock or another endpoint); without
// it the worker runs no subscription workflows.
func billing(d *deps, cfg config.Config) *activities.Billing {
	if cfg.StripeSecretKey == "" {
		d.log.Info("STRIPE_SECRET_KEY is not set: subscription workflows are not served by this worker")
		return nil
	}
	return &activities.Billing{Stripe: activities.NewStripeAPI(cfg.StripeSecretKey, cfg.StripeAPIBase, nil),
		Store: d.store, Log: d.log}
}

// noticeSender picks how users are notified: NOTIFY_SENDER=log (default)
// logs notices; ses emails them through Amazon SES v2 from NOTIFY_FROM, in
// AWS_REGION, with the default AWS credential chain.
func noticeSender(ctx context.Context, cfg config.Config, log *slog.Logger) (notify.Sender, error) {
	switch kind := cfg.NotifySender; kind {
	case "log":
		return notify.LogSender{Log: log}, nil
	case "ses":
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.AWSRegion))
		if err != nil {
			return nil, fmt.Errorf("load aws config for SES: %w", err)
		}
		s, err := notify.NewSESSender(awsCfg, cfg.NotifyFrom, "")
		if err != nil {
			return nil, fmt.Errorf("NOTIFY_FROM: %w", err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("NOTIFY_SENDER=%q must be log or ses", kind)
	}
}

func runGPUWorker(ctx context.Context, cfg config.Config, log loggerT, tier, engineName string) error {
	eng, err := newEngine(engineName, cfg)
	if err != nil {
		return err
	}
	d, err := connect(ctx, cfg, config.Needs{Redis: true, Temporal: true, S3: true}, log)
	if err != nil {
		return err
	}
	defer d.close()
	w := gpuWorker(d, tier, eng, cfg.GPUSlots)
	log.Info("gpu worker started", "task_queue", workflows.GPUQueue(tier), "engine", eng.Name(), "slots", cfg.GPUSlots)
	return runWorker(ctx, w, cfg.MetricsAddr, log)
}

func gpuWorker(d *deps, tier string, eng engine.Engine, slots int) worker.Worker {
	return workers.GPU(d.temporal, tier, &activities.Render{Tier: tier, Engine: eng, Objects: d.objects, Progress: d.progress, Log: d.log},
		slots, worker.Options{})
}

func newEngine(name string, cfg config.Config) (engine.Engine, error) {
	switch name {
	case "sim":
		return sim.New(sim.Config{StepDelay: cfg.SimStepDelay}), nil
	}
	return nil, fmt.Errorf("--engine %q is not available; use sim", name)
}

// runWorker runs w, with Prometheus metrics on metricsAddr, until ctx ends,
// then stops it (running activities get the worker's stop timeout).
func runWorker(ctx context.Context, w worker.Worker, metricsAddr string, log loggerT) error {
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	defer w.Stop()
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	return serveHTTP(ctx, metricsAddr, mux, log)
}
