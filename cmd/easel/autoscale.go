package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/easel/easel/internal/autoscale"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/config"
)

// autoscaleCommand groups the GPU autoscaling tools.
func autoscaleCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "autoscale",
		Short: "GPU tier autoscaling tools",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(autoscaleSimulateCommand())
	return cmd
}

type simulateOptions struct {
	trace        string
	tier         string
	start        string
	timeZone     string
	seed         uint64
	peak         float64
	serviceTime  time.Duration
	bootDelay    time.Duration
	spotDiscount float64
	min, max     int
	noNight      bool
	policy       string
	poll         time.Duration
	work         autoscale.WorkPolicy
	warm         autoscale.WarmPool
	billingMin   time.Duration
	freeShare    float64
	freeShareSet bool // --free-share given; else the tier's default
	spotRefused  float64
	history      string
}

func autoscaleSimulateCommand() *cobra.Command {
	var o simulateOptions
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Replay a load trace through the autoscaling rules and compare cost with static provisioning",
		Long: `Replays a load trace through the autoscaler's own rules with a queue model
(one FIFO queue per tier, one image per GPU at a time, a boot delay for new
instances) and prints GPU-hours, p50/p95 queue wait and cost at the deployment guide's
on-demand and spot prices, against a static fleet sized for the busiest
quarter hour.

--trace is diurnal (one day, lowest at 04:00 and highest at 16:00 local
time), burst (twelve hours from 09:00, a ten-minute surge every three hours),
bursty (a day with surges at random times, sizes and lengths), launch-day (a
day with a launch at 10:00 that climbs to the peak and settles at a higher
plateau) or a CSV file with the columns minute,arrivals: minute is the offset from
--start (ascending, missing minutes have no arrivals), arrivals the images
that arrive during that minute; a header row and # comments are allowed.
A trace may span at most 31 days and hold at most 10,000,000 images.

Every flag is checked before anything runs, and all bad values are
reported together. Ctrl-C or SIGTERM stops a simulation within a
simulated minute; the command then exits non-zero.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.freeShareSet = cmd.Flags().Changed("free-share")
			report, err := runSimulate(cmd.Context(), o)
			if err != nil {
				return err
			}
			return report.Write(cmd.OutOrStdout())
		},
	}
	def := autoscale.DefaultConfig()
	f := cmd.Flags()
	f.StringVar(&o.trace, "trace", autoscale.TraceDiurnal, strings.Join(autoscale.TraceNames(), ", ")+", or a minute,arrivals CSV file")
	f.StringVar(&o.tier, "tier", catalog.TierT4, "GPU tier: "+strings.Join(catalog.TierNames(), ", ")+" (instance, GPUs, prices, service time)")
	f.StringVar(&o.start, "start", "", "trace start, 2006-01-02T15:04 in --timezone (default 2025-01-06, 00:00 or 09:00 for burst)")
	f.StringVar(&o.timeZone, "timezone", def.TimeZone, "time zone of --start and of the night window")
	f.Uint64Var(&o.seed, "seed", 1, "random seed of the built-in traces")
	f.Float64Var(&o.peak, "peak", 0, "built-in trace peak, images per minute, above 0 (0: sized to the tier)")
	f.DurationVar(&o.serviceTime, "service-time", 0, "GPU time per image, at least 1s (0: the tier's estimate)")
	f.DurationVar(&o.bootDelay, "boot-delay", 4*time.Minute, "from scale-up until a new instance takes work")
	f.Float64Var(&o.spotDiscount, "spot-discount", autoscale.DefaultSpotDiscount, "spot price as a fraction off on-demand")
	f.IntVar(&o.min, "min", def.Min, "minimum instances")
	f.IntVar(&o.max, "max", def.Max, "maximum instances")
	f.BoolVar(&o.noNight, "no-night", false, "drop the night-time scale-down window")
	work, warm := autoscale.DefaultWork(), autoscale.DefaultWarmPool()
	f.StringVar(&o.policy, "policy", autoscale.PolicyWork, "policy run beside the baseline rules (the design document's step rules): work or rules")
	f.DurationVar(&o.poll, "poll", 10*time.Second, "the policy's poll interval (the baseline rules keep 30s)")
	f.DurationVar(&o.work.UpAge, "up-age", work.UpAge, "work policy: add capacity once a task has waited this long")
	f.DurationVar(&o.work.UpWait, "up-wait", work.UpWait, "work policy: and only when the paid backlog would wait this long on the ready GPUs")
	f.DurationVar(&o.work.Drain, "drain", work.Drain, "work policy: add enough to clear the waiting GPU time in this long")
	f.DurationVar(&o.work.IdleFor, "idle-for", work.IdleFor, "work policy: remove an instance idle this long")
	f.DurationVar(&o.work.BillingPeriod, "billing-period", 0, "work policy: billed period (0 per second, 1h hourly)")
	f.DurationVar(&o.work.BillingMargin, "billing-margin", 0, "work policy: remove only within this much of a billed period's end")
	f.DurationVar(&o.work.BillingMinimum, "keep-for", work.BillingMinimum, "work policy: keep a started instance at least this long (its billing minimum)")
	f.DurationVar(&o.work.FreeUpAge, "free-up-age", work.FreeUpAge, "work policy: add capacity once a Free render has waited this long")
	f.Float64Var(&o.work.FloorShare, "floor", work.FloorShare, "work policy: hold hosts for this share of last week's load (0 for no floor)")
	f.DurationVar(&o.work.FloorLead, "floor-lead", work.FloorLead, "work policy: how far ahead the floor looks at last week")
	f.BoolVar(&o.work.Spot, "spot", work.Spot, "work policy: run the floor above the minimum on spot, on-demand when spot is refused")
	f.StringVar(&o.history, "history", "", "what the floor forecasts from: last-week (a built-in trace's previous week, the default), same-day (the trace itself a week earlier: flattering), none, or a minute,arrivals CSV of the week before")
	f.DurationVar(&o.billingMin, "billing-minimum", autoscale.DefaultBillingMinimum, "EC2's minimum charge per instance start")
	f.Float64Var(&o.freeShare, "free-share", -1, "share of renders from Free users, 0 to 1, served after paid ones (Free and Basic share the t4 queue)")
	f.Lookup("free-share").DefValue = "0.5 on t4, 0 elsewhere"
	f.Float64Var(&o.spotRefused, "spot-refused", 0.1, "share of half hours in which EC2 refuses spot capacity")
	f.IntVar(&o.warm.Prepared, "warm-pool", warm.Prepared, "instances the policy's group keeps prepared, in service or stopped in its warm pool (0 for no pool)")
	f.DurationVar(&o.warm.Boot, "warm-boot", warm.Boot, "boot of a warm pool instance until it takes work")
	f.Float64Var(&o.warm.VolumeGB, "volume-gb", warm.VolumeGB, "EBS volume of an instance, GB")
	f.Float64Var(&o.warm.EBSMonthlyPerGB, "ebs-gb-month", warm.EBSMonthlyPerGB, "EBS price, USD per GB-month")
	return cmd
}

func runSimulate(ctx context.Context, o simulateOptions) (autoscale.Report, error) {
	if err := checkSimulateFlags(o); err != nil {
		return autoscale.Report{}, err
	}
	spec := autoscale.TierSpecs[o.tier]
	if o.serviceTime > 0 {
		spec.ServiceTime = o.serviceTime
	}
	base := autoscale.DefaultConfig()
	base.Min, base.Max, base.TimeZone = o.min, o.max, o.timeZone
	if o.noNight {
		base.Windows = nil
	}
	if err := base.Validate(); err != nil {
		// --min, --max, --timezone: said once, before any run uses them.
		return autoscale.Report{}, err
	}
	cfg := base
	cfg.Policy, cfg.Work, cfg.PollInterval = o.policy, o.work, o.poll
	tr, err := simulateTrace(o, spec)
	if err != nil {
		return autoscale.Report{}, err
	}
	opt := autoscale.SimOptions{Config: cfg, Spec: spec, BootDelay: o.bootDelay, SpotDiscount: o.spotDiscount,
		WarmPool: o.warm, Baseline: base, BillingMinimum: o.billingMin, FreeShare: o.freeShare,
		SpotRefused: o.spotRefused, Seed: o.seed}
	if !o.freeShareSet {
		opt.FreeShare = defaultFreeShare(o.tier)
	}
	if cfg.Work.FloorShare > 0 {
		if opt.History, opt.HistoryNote, err = simulateHistory(ctx, o, spec, tr, opt); err != nil {
			return autoscale.Report{}, err
		}
	}
	return autoscale.Simulate(ctx, tr, opt)
}

// checkSimulateFlags refuses, by flag and all together, the values the
// simulation cannot run with. Where a flag's 0 means "the default" (--peak,
// --service-time) 0 stays allowed; a negative value is refused everywhere.
func checkSimulateFlags(o simulateOptions) error {
	var errs []error
	bad := func(flag string, v any, want string) {
		errs = append(errs, fmt.Errorf("--%s %v: want %s", flag, v, want))
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if _, ok := autoscale.TierSpecs[o.tier]; !ok {
		bad("tier", fmt.Sprintf("%q", o.tier), "one of "+strings.Join(catalog.TierNames(), ", "))
	}
	if !slices.Contains(autoscale.TraceNames(), o.trace) {
		if _, err := os.Stat(o.trace); errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("--trace %q is neither a built-in trace (%s) nor a file", o.trace,
				strings.Join(autoscale.TraceNames(), ", ")))
		}
	}
	if loc, err := time.LoadLocation(o.timeZone); err != nil {
		errs = append(errs, fmt.Errorf("--timezone: %w", err))
	} else if o.start != "" {
		if _, err := time.ParseInLocation("2006-01-02T15:04", o.start, loc); err != nil {
			errs = append(errs, fmt.Errorf("--start %q: want 2006-01-02T15:04", o.start))
		}
	}
	if !finite(o.peak) || o.peak < 0 {
		bad("peak", o.peak, "images per minute above 0, or 0 to size the trace to the tier")
	}
	if o.serviceTime < 0 || (o.serviceTime > 0 && o.serviceTime < time.Second) {
		bad("service-time", o.serviceTime, "at least 1s, or 0 for the tier's estimate")
	}
	if o.bootDelay < 0 {
		bad("boot-delay", o.bootDelay, "0 or more")
	}
	if !finite(o.spotDiscount) || o.spotDiscount < 0 || o.spotDiscount >= 1 {
		bad("spot-discount", o.spotDiscount, "a fraction from 0 up to but not including 1")
	}
	if o.min < 0 {
		bad("min", o.min, "0 or more")
	}
	if o.max < 1 || o.max < o.min {
		bad("max", o.max, "at least 1 and at least --min")
	}
	if o.policy != autoscale.PolicyWork && o.policy != autoscale.PolicyRules {
		bad("policy", fmt.Sprintf("%q", o.policy), autoscale.PolicyWork+" or "+autoscale.PolicyRules)
	}
	if o.poll < time.Second {
		bad("poll", o.poll, "at least 1s")
	}
	for _, d := range []struct {
		flag  string
		value time.Duration
	}{{"up-age", o.work.UpAge}, {"up-wait", o.work.UpWait}, {"idle-for", o.work.IdleFor}, {"free-up-age", o.work.FreeUpAge},
		{"keep-for", o.work.BillingMinimum}, {"billing-period", o.work.BillingPeriod}, {"billing-margin", o.work.BillingMargin},
		{"billing-minimum", o.billingMin}, {"warm-boot", o.warm.Boot}} {
		if d.value < 0 {
			bad(d.flag, d.value, "0 or more")
		}
	}
	if o.work.Drain < time.Second {
		bad("drain", o.work.Drain, "at least 1s")
	}
	if w := o.work; w.BillingPeriod > 0 && (w.BillingMargin <= 0 || w.BillingMargin > w.BillingPeriod) {
		errs = append(errs, fmt.Errorf("--billing-margin %s: want above 0 and at most --billing-period %s", w.BillingMargin, w.BillingPeriod))
	}
	if !finite(o.work.FloorShare) || o.work.FloorShare < 0 || o.work.FloorShare > 4 {
		bad("floor", o.work.FloorShare, "a share from 0 to 4")
	}
	if o.work.FloorLead < 0 || o.work.FloorLead > 24*time.Hour {
		bad("floor-lead", o.work.FloorLead, "0 to 24h")
	}
	switch h := o.history; h {
	case "", "last-week", "same-day", "none":
	default:
		if _, err := os.Stat(h); err != nil {
			errs = append(errs, fmt.Errorf("--history %q: want last-week, same-day, none or a CSV file (%w)", h, err))
		}
	}
	for _, share := range []struct {
		flag  string
		value float64
		given bool
	}{{"free-share", o.freeShare, o.freeShareSet}, {"spot-refused", o.spotRefused, true}} {
		if share.given && (!finite(share.value) || share.value < 0 || share.value > 1) {
			bad(share.flag, share.value, "a share from 0 to 1")
		}
	}
	if o.warm.Prepared < 0 {
		bad("warm-pool", o.warm.Prepared, "0 (no pool) or more instances")
	}
	if !finite(o.warm.VolumeGB) || o.warm.VolumeGB < 0 {
		bad("volume-gb", o.warm.VolumeGB, "0 or more")
	}
	if !finite(o.warm.EBSMonthlyPerGB) || o.warm.EBSMonthlyPerGB < 0 {
		bad("ebs-gb-month", o.warm.EBSMonthlyPerGB, "0 or more")
	}
	return errors.Join(errs...)
}

// defaultFreeShare: Free and Basic users share the t4 queue (catalog
// plans), half and half by assumption; the other tiers have no Free plan.
func defaultFreeShare(tier string) float64 {
	if tier == catalog.TierT4 {
		return 0.5
	}
	return 0
}

// simulateHistory is what the policy's autoscaler recorded in the week
// before the trace, per --history, and a note saying what it is.
func simulateHistory(ctx context.Context, o simulateOptions, spec autoscale.TierSpec, tr autoscale.Trace, opt autoscale.SimOptions) (*autoscale.History, string, error) {
	builtin := slices.Contains(autoscale.TraceNames(), o.trace)
	var prev autoscale.Trace
	switch mode := o.history; {
	case mode == "none":
		return nil, "", nil
	case mode == "same-day":
		prev = tr.Shifted(-7 * 24 * time.Hour)
	case (mode == "" || mode == "last-week") && builtin:
		var err error
		if prev, err = autoscale.PreviousWeek(o.trace, tr.Start, simulatePeak(o, spec), o.seed); err != nil {
			return nil, "", err
		}
	case mode == "" || mode == "last-week":
		return nil, "", nil // a CSV trace has no previous week unless one is given
	default:
		f, err := os.Open(mode)
		if err != nil {
			return nil, "", fmt.Errorf("--history: %w", err)
		}
		defer f.Close()
		if prev, err = autoscale.ReadTraceCSV(f, filepath.Base(mode), tr.Start.Add(-7*24*time.Hour)); err != nil {
			return nil, "", fmt.Errorf("--history: %w", err)
		}
	}
	h, err := autoscale.RecordHistory(ctx, prev, opt)
	if err != nil {
		return nil, "", err
	}
	return h, fmt.Sprintf("%s, %d images", prev.Name, prev.Images()), nil
}

func simulatePeak(o simulateOptions, spec autoscale.TierSpec) float64 {
	if o.peak > 0 {
		return o.peak
	}
	return autoscale.DefaultPeak(o.trace, spec)
}

// simulateTrace builds the built-in trace or reads the CSV file.
func simulateTrace(o simulateOptions, spec autoscale.TierSpec) (autoscale.Trace, error) {
	start, err := simulateStart(o)
	if err != nil {
		return autoscale.Trace{}, err
	}
	if slices.Contains(autoscale.TraceNames(), o.trace) {
		return autoscale.BuiltinTrace(o.trace, start, simulatePeak(o, spec), o.seed)
	}
	f, err := os.Open(o.trace)
	if errors.Is(err, fs.ErrNotExist) {
		return autoscale.Trace{}, fmt.Errorf("--trace %q is neither a built-in trace (%s) nor a file", o.trace,
			strings.Join(autoscale.TraceNames(), ", "))
	}
	if err != nil {
		return autoscale.Trace{}, fmt.Errorf("--trace: %w", err)
	}
	defer f.Close()
	return autoscale.ReadTraceCSV(f, strings.TrimSuffix(filepath.Base(o.trace), filepath.Ext(o.trace)), start)
}

func simulateStart(o simulateOptions) (time.Time, error) {
	loc, err := time.LoadLocation(o.timeZone)
	if err != nil {
		return time.Time{}, fmt.Errorf("--timezone: %w", err)
	}
	if o.start != "" {
		t, err := time.ParseInLocation("2006-01-02T15:04", o.start, loc)
		if err != nil {
			return time.Time{}, fmt.Errorf("--start: %w", err)
		}
		return t, nil
	}
	return autoscale.DefaultStart(o.trace, time.Date(2025, 1, 6, 0, 0, 0, 0, loc)), nil
}

// autoscalePolicy builds the tiers' policy from AUTOSCALE_* settings.
func autoscalePolicy(cfg config.Config) (autoscale.Config, error) {
	p := autoscale.DefaultConfig()
	// Every bad setting is reported at once: a list that does not parse
	// leaves the default in place so the rest is still checked.
	var errs []error
	if rules, err := autoscale.ParseRules(cfg.AutoscaleUpRules); err != nil {
		errs = append(errs, fmt.Errorf("AUTOSCALE_UP_RULES: %w", err))
	} else {
		p.ScaleUp = rules
	}
	if windows, err := autoscale.ParseWindows(cfg.AutoscaleWindows); err != nil {
		errs = append(errs, fmt.Errorf("AUTOSCALE_WINDOWS: %w", err))
	} else {
		p.Windows = windows
	}
	p.Min, p.Max, p.TimeZone, p.PollInterval = cfg.AutoscaleMin, cfg.AutoscaleMax, cfg.AutoscaleTimeZone, cfg.AutoscalePollInterval
	p.ScaleIn.Below, p.ScaleIn.For = cfg.AutoscaleInBelow, cfg.AutoscaleInFor
	p.Policy = cfg.AutoscalePolicy
	p.Work = autoscale.WorkPolicy{UpAge: cfg.AutoscaleUpAge, UpWait: cfg.AutoscaleUpWait, FreeUpAge: cfg.AutoscaleFreeUpAge, Drain: cfg.AutoscaleDrain,
		IdleFor: cfg.AutoscaleIdleFor, BillingPeriod: cfg.AutoscaleBillingPeriod, BillingMargin: cfg.AutoscaleBillingMargin,
		BillingMinimum: cfg.AutoscaleBillingMinimum, FloorShare: cfg.AutoscaleFloor, FloorLead: cfg.AutoscaleFloorLead}
	if err := p.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("autoscaling policy: %w", err))
	}
	return p, errors.Join(errs...)
}

// tierPolicy is the policy of one tier: AUTOSCALE_TIER_MIN may lower or
// raise the minimum of a tier (default a100=0: a p4d.24xlarge idling
// costs about $23,600 a month; the autoscaler wakes it for the first job);
// a tier with a spot group (AUTOSCALE_SPOT_GROUPS) runs the floor on spot;
// AUTOSCALE_WARM_POOL sets a tier's prepared capacity.
func tierPolicy(policy autoscale.Config, tier string, cfg config.Config) (autoscale.Config, error) {
	if n, ok := cfg.AutoscaleTierMin[tier]; ok {
		policy.Min = n
	}
	policy.Work.Spot = cfg.AutoscaleSpotGroups[tier] != ""
	policy.WarmPool = cfg.AutoscaleWarmPool[tier]
	if err := policy.Validate(); err != nil {
		return policy, fmt.Errorf("autoscaling policy of %s: %w", tier, err)
	}
	return policy, nil
}

// tierPolicies, with AUTOSCALE_DRIVER=ec2, is the policy of each tier in
// AUTOSCALE_GROUPS; none without it.
func tierPolicies(cfg config.Config) (map[string]autoscale.Config, error) {
	if cfg.AutoscaleDriver != "ec2" {
		return nil, nil
	}
	policy, err := autoscalePolicy(cfg)
	if err != nil {
		return nil, err
	}
	policies := make(map[string]autoscale.Config, len(cfg.AutoscaleGroups))
	for tier := range cfg.AutoscaleGroups {
		if policies[tier], err = tierPolicy(policy, tier, cfg); err != nil {
			return nil, err
		}
	}
	return policies, nil
}

// ec2Autoscaler, with AUTOSCALE_DRIVER=ec2, returns the autoscaler's
// activities on the EC2 Auto Scaling driver, for the control worker, and
// makes sure each configured tier's workflow runs with the current policy
// (starting a workflow needs only the server, so this runs before the
// worker starts). Without it, it returns nil.
func ec2Autoscaler(ctx context.Context, d *deps, cfg config.Config) (*autoscale.Activities, error) {
	if cfg.AutoscaleDriver != "ec2" {
		return nil, nil
	}
	policies, err := tierPolicies(cfg)
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(cfg.AWSRegion))
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	acts := &autoscale.Activities{Service: d.temporal.WorkflowService(),
		Namespace: cfg.TemporalNamespace, Driver: ec2Driver(awsCfg, d.temporal.WorkflowService(), cfg)}
	for tier, p := range policies {
		if _, err := autoscale.EnsureWorkflow(ctx, d.temporal, tier, p); err != nil {
			return nil, fmt.Errorf("start autoscaler for %s: %w", tier, err)
		}
	}
	return acts, nil
}

// ec2Driver is the EC2 driver of AUTOSCALE_GROUPS and AUTOSCALE_SPOT_GROUPS,
// with Temporal worker heartbeats as its host activity when
// AUTOSCALE_HOST_ACTIVITY=heartbeats.
func ec2Driver(awsCfg aws.Config, svc workflowservice.WorkflowServiceClient, cfg config.Config) *autoscale.EC2 {
	d := autoscale.NewEC2(awsCfg, cfg.AutoscaleGroups)
	d.SpotGroups = cfg.AutoscaleSpotGroups
	if cfg.AutoscaleHostActivity == "heartbeats" {
		d.Activity = &autoscale.WorkerHeartbeats{Service: svc, Namespace: cfg.TemporalNamespace}
	}
	return d
}
