package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/caarlos0/env/v11"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/worker"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/config"
	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/engine/invokeai"
	"github.com/easel/easel/internal/engine/sim"
	"github.com/easel/easel/internal/gctune"
	"github.com/easel/easel/internal/gpu"
	"github.com/easel/easel/internal/notify"
	"github.com/easel/easel/internal/payments"
	"github.com/easel/easel/internal/webhook"
	"github.com/easel/easel/workers"
)

func workerCommand() *cobra.Command {
	var role string
	var g gpuFlags
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a control-plane worker or a GPU worker for one tier",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(config.Needs{})
			if err != nil {
				return err
			}
			gctune.Apply(log)
			// Everything the role's configuration says is checked before
			// the status server listens and before any connection waits,
			// so a bad value is reported by name at once.
			switch role {
			case "control":
				_, policyErr := tierPolicies(cfg)
				if err := checkConfig(cfg, controlNeeds, policyErr); err != nil {
					return err
				}
			case "gpu":
				if err := g.check(cfg); err != nil {
					return err
				}
				var idErr error
				g.instanceID, idErr = cfg.GPUInstanceID()
				if err := checkConfig(cfg, gpuNeeds, idErr); err != nil {
					return err
				}
			default:
				return fmt.Errorf("--role must be control or gpu, not %q", role)
			}
			return withStatusServer(cmd.Context(), cfg.MetricsAddr, log, func(st *startup) error {
				if role == "control" {
					return runControlWorker(cmd.Context(), cfg, log, st)
				}
				return runGPUWorker(cmd.Context(), cfg, log, g, st)
			})
		},
	}
	cmd.Flags().StringVar(&role, "role", "control", "control (workflows, ledger) or gpu (renders)")
	cmd.Flags().StringVar(&g.tier, "tier", catalog.TierT4, "GPU tier for --role gpu: t4, a10g or a100")
	cmd.Flags().StringVar(&g.engine, "engine", "sim", "image engine for --role gpu: sim or invokeai (INVOKEAI_URL)")
	cmd.Flags().IntVar(&g.slots, "slots", 0,
		"renders at once for --role gpu, one per GPU: 0 means every GPU NVML finds, or GPU_SLOTS without a driver")
	return cmd
}

// What each worker role connects to.
var (
	controlNeeds = config.Needs{Database: true, Redis: true, Temporal: true, S3: true}
	gpuNeeds     = config.Needs{Redis: true, Temporal: true, S3: true}
)

// gpuFlags are the options of `easel worker --role gpu`.
type gpuFlags struct {
	tier, engine string
	slots        int
	instanceID   string // from GPU_INSTANCE_ID_FILE, not a flag
}

// engines are the --engine values.
var engines = []string{"sim", "invokeai"}

// check fails fast, before any connection is made.
func (g gpuFlags) check(cfg config.Config) error {
	if !slices.Contains(catalog.TierNames(), g.tier) {
		return fmt.Errorf("--tier must be one of %s", strings.Join(catalog.TierNames(), ", "))
	}
	if !slices.Contains(engines, g.engine) {
		return fmt.Errorf("--engine must be one of %s, not %q", strings.Join(engines, ", "), g.engine)
	}
	if g.engine == "invokeai" && cfg.InvokeAIURL == "" {
		return errors.New("INVOKEAI_URL is not set: the InvokeAI server for --engine invokeai, e.g. http://127.0.0.1:9090")
	}
	if g.slots < 0 {
		return fmt.Errorf("--slots=%d must be 0 (one per GPU) or more", g.slots)
	}
	return nil
}

// withStatusServer serves metrics and readiness on addr from before the
// worker connects (/readyz: 503 naming what it waits for) until run has
// returned, so metrics cover a drain.
func withStatusServer(ctx context.Context, addr string, log loggerT, run func(*startup) error) error {
	srvCtx, stop := context.WithCancel(context.Background())
	defer stop()
	st := newStartup(log)
	served, err := st.listen(srvCtx, addr)
	if err != nil {
		return fmt.Errorf("METRICS_ADDR: %w", err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- run(st) }()
	select {
	case err = <-runErr:
	case err = <-served: // the status server failed: stop the worker too
		return err
	}
	err = startErr(ctx, err)
	stop()
	return errors.Join(err, <-served)
}

func runControlWorker(ctx context.Context, cfg config.Config, log loggerT, st *startup) error {
	d, err := connectWaiting(ctx, cfg, controlNeeds, log, st)
	if err != nil {
		return err
	}
	defer d.close()
	deps, err := controlDeps(ctx, d, cfg)
	if err != nil {
		return err
	}
	if deps.Autoscale, err = ec2Autoscaler(ctx, d, cfg); err != nil {
		return err
	}
	w := workers.NewControl(deps)
	if err := w.Start(); err != nil {
		return err
	}
	defer w.Stop()
	st.ready(readyMux())
	log.Info("control worker started", "task_queue", catalog.ControlQueue)
	<-ctx.Done()
	return nil
}

// workerDeps are this process's connections, as the workers take them.
func (d *deps) workerDeps() workers.Deps {
	return workers.Deps{Temporal: d.temporal, Store: d.store, Redis: d.redis, Progress: d.progress,
		Objects: d.objects, ServedModels: d.served, Log: d.log}
}

// controlDeps adds what the control worker needs beyond connections: the
// notice sender and, with STRIPE_SECRET_KEY, the Stripe gateway
// (STRIPE_API_BASE points it at stripe-mock or another endpoint); without
// it only free subscriptions are billed.
func controlDeps(ctx context.Context, d *deps, cfg config.Config) (workers.Deps, error) {
	sender, err := noticeSender(ctx, cfg, d.log)
	if err != nil {
		return workers.Deps{}, err
	}
	deps := d.workerDeps()
	deps.Notices, deps.Payments = sender, paymentsGateway(d, cfg)
	deps.WebhookGuard = webhook.Guard{AllowLocal: cfg.WebhookAllowLocal}
	if deps.Payments == nil {
		d.log.Info("STRIPE_SECRET_KEY is not set: only free subscriptions are billed by this worker")
	}
	return deps, nil
}

// paymentsGateway is the Stripe gateway, nil without STRIPE_SECRET_KEY.
func paymentsGateway(d *deps, cfg config.Config) *payments.Gateway {
	if cfg.StripeSecretKey == "" {
		return nil
	}
	return payments.New(cfg.StripeSecretKey, cfg.StripeAPIBase, d.stripeHTTP)
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

// runGPUWorker serves renders for one tier: one slot per GPU, each pinned to
// its device, with GPU metrics and health checks where NVML finds a driver.
func runGPUWorker(ctx context.Context, cfg config.Config, log loggerT, g gpuFlags, st *startup) error {
	host, err := gpu.Open(gpu.Options{Driver: gpu.NewNVML(), Tier: g.tier, Slots: g.slots,
		NoDriverSlots: cfg.GPUSlots, Log: log, Foreign: gpu.InvokeAIProcesses("/proc"), CUDACheck: cudaCheck(log)})
	if err != nil {
		return err
	}
	defer func() { _ = host.Close() }()
	d, err := connectWaiting(ctx, cfg, gpuNeeds, log, st)
	if err != nil {
		return err
	}
	defer d.close()
	eng, err := newEngine(g.engine, cfg, d)
	if err != nil {
		return err
	}
	reportModels(ctx, eng, log)
	if err := listenRetries(ctx, eng); err != nil {
		return err
	}
	drain := gpu.NewDrain(cfg.DrainTimeout, log)
	// Temporal cancels renders still running at WorkerStopTimeout; the drain
	// fails them over before that, and the grace lets their failures reach
	// the server so the retries start at once, not after a heartbeat timeout.
	w := workers.NewGPU(d.workerDeps(), g.tier, eng, workers.GPUOptions{Slots: host.Slots(), GPUs: host, Drain: drain,
		InstanceID: g.instanceID, Options: worker.Options{WorkerStopTimeout: cfg.DrainTimeout + failoverGrace}})
	log.Info("gpu worker started", "task_queue", catalog.GPUQueue(g.tier), "engine", eng.Name(), "instance", g.instanceID,
		"slots", host.Slots(), "nvml", host.HasNVML(), "drain_timeout", cfg.DrainTimeout, "spot_watch", cfg.SpotWatch)
	return serveGPU(ctx, w, host, drain, cfg, log, st)
}

// cudaCheck finds the easel-cudacheck binary (CUDA_CHECK, or beside this
// executable, or on PATH): the GPU image ships it, built with the cuda tag.
// Without it the worker relies on NVML alone.
func cudaCheck(log loggerT) func(context.Context, []string) (map[string]error, error) {
	path := os.Getenv("CUDA_CHECK")
	if path == "" {
		if self, err := os.Executable(); err == nil {
			if p := filepath.Join(filepath.Dir(self), "easel-cudacheck"); fileExists(p) {
				path = p
			}
		}
	}
	if path == "" {
		if p, err := exec.LookPath("easel-cudacheck"); err == nil {
			path = p
		}
	}
	if path == "" {
		log.Info("easel-cudacheck not found: GPUs are checked through NVML only")
		return nil
	}
	return gpu.CUDACheck(path)
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// failoverGrace is how long after the drain deadline the worker waits for
// failed-over renders to report before it stops regardless.
const failoverGrace = 15 * time.Second

// serveGPU runs the worker until SIGTERM, a spot interruption notice or the
// loss of every GPU, then drains it: no new renders, running ones finish or
// fail over at the deadline. Metrics are served (by st) until the worker has
// stopped.
func serveGPU(ctx context.Context, w worker.Worker, host *gpu.Host, drain *gpu.Drain, cfg config.Config, log loggerT, st *startup) error {
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	bg, stopBg := context.WithCancel(context.Background())
	defer stopBg()
	watchHost(bg, host, drain, cfg, log)
	st.ready(readyMux())
	return drain.Serve(ctx, host.Exhausted(), w.Stop)
}

// watchHost samples the GPUs for metrics and health and, with SPOT_WATCH,
// polls for spot interruption notices, until ctx ends.
func watchHost(ctx context.Context, host *gpu.Host, drain *gpu.Drain, cfg config.Config, log loggerT) {
	go host.Run(ctx)
	if host.HasNVML() {
		prometheus.MustRegister(host.Collector())
	}
	if cfg.SpotWatch {
		go gpu.SpotWatcher{Log: log}.Watch(ctx, drain)
	}
}

func metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	return mux
}

// newEngine builds the --engine: sim renders on the CPU; invokeai drives the
// InvokeAI servers at INVOKEAI_URL on this host.
func newEngine(name string, cfg config.Config, d *deps) (engine.Engine, error) {
	switch name {
	case "sim":
		return sim.New(sim.Config{StepDelay: cfg.SimStepDelay}), nil
	case "invokeai":
		return newInvokeAI(cfg, d)
	}
	return nil, fmt.Errorf("--engine %q is not available; use %s", name, strings.Join(engines, " or "))
}

// invokeAIEnv are the InvokeAI engine's settings (docs/invokeai.md).
type invokeAIEnv struct {
	SD15     string `env:"INVOKEAI_SD15_MODEL"`
	SDXL     string `env:"INVOKEAI_SDXL_MODEL"`
	Flux     string `env:"INVOKEAI_FLUX_MODEL"`
	FluxT5   string `env:"INVOKEAI_FLUX_T5_MODEL"`
	FluxCLIP string `env:"INVOKEAI_FLUX_CLIP_MODEL"`
	FluxVAE  string `env:"INVOKEAI_FLUX_VAE_MODEL"`
	Token    string `env:"INVOKEAI_TOKEN"`
	Email    string `env:"INVOKEAI_EMAIL"`
	Password string `env:"INVOKEAI_PASSWORD"`
}

// invokeAIConfigs reads the InvokeAI settings from the environment: one
// engine configuration per server of INVOKEAI_URL (one per GPU, by NVML
// index), all with the same model names and credentials.
func invokeAIConfigs(cfg config.Config, d *deps) ([]invokeai.Config, error) {
	var ev invokeAIEnv
	if err := env.Parse(&ev); err != nil {
		return nil, fmt.Errorf("read InvokeAI settings: %w", err)
	}
	models := invokeai.ModelNames{SD15: ev.SD15, SDXL: ev.SDXL, Flux: ev.Flux,
		FluxT5Encoder: ev.FluxT5, FluxCLIPEmbed: ev.FluxCLIP, FluxVAE: ev.FluxVAE}
	var cfgs []invokeai.Config
	for _, url := range strings.Split(cfg.InvokeAIURL, ",") {
		cfgs = append(cfgs, invokeai.Config{BaseURL: strings.TrimSpace(url), Redis: d.redis, Logger: d.log,
			Models: models, Token: ev.Token, Email: ev.Email, Password: ev.Password})
	}
	return cfgs, nil
}

// newInvokeAI builds one engine per InvokeAI server: each render goes to
// the server of the GPU it is pinned to, and a retry cancels what a lost
// attempt left on any of them.
func newInvokeAI(cfg config.Config, d *deps) (engine.Engine, error) {
	cfgs, err := invokeAIConfigs(cfg, d)
	if err != nil {
		return nil, err
	}
	per, err := invokeai.NewPerDevice(cfgs)
	if err != nil {
		return nil, fmt.Errorf("engine invokeai: %w", err)
	}
	if len(per) == 1 {
		return per[0], nil
	}
	return per, nil
}

// listenRetries has the host's InvokeAI engines cancel the queue items of
// jobs that other hosts retry: a lost attempt may still render here. One
// engine of NewPerDevice reaches all the host's servers.
func listenRetries(ctx context.Context, eng engine.Engine) error {
	if per, ok := eng.(engine.PerDevice); ok {
		eng = per[0]
	}
	if e, ok := eng.(*invokeai.Engine); ok {
		return e.ListenRetries(ctx)
	}
	return nil
}

// reportModels logs, per InvokeAI server, which model each family renders
// with (or why it cannot), so a host missing a model says so at start. A
// server still starting is reported and not waited for.
func reportModels(ctx context.Context, eng engine.Engine, log loggerT) {
	servers, ok := eng.(engine.PerDevice)
	if !ok {
		servers = engine.PerDevice{eng}
	}
	for gpu, s := range servers {
		e, ok := s.(*invokeai.Engine)
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, modelsReportTimeout)
		models := e.Models(ctx)
		cancel()
		args := []any{"gpu", gpu}
		for _, family := range catalog.ModelFamilies() {
			args = append(args, family, models[family])
		}
		log.Info("invokeai models", args...)
	}
}

// modelsReportTimeout bounds the start-up model report per server.
const modelsReportTimeout = 10 * time.Second
