package autoscale

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/easel/easel/internal/catalog"
)

// TierSpec is a tier's instance and its price, as the simulator uses them
// (from catalog.Tiers); ServiceTime, the GPU time of one image, is an
// estimate for a 1024px SDXL image and the simulator's --service-time
// overrides it.
type TierSpec struct {
	Instance       string
	GPUs           int     // GPUs per instance: renders it runs at once
	OnDemandHourly float64 // USD per instance-hour
	ServiceTime    time.Duration
}

// TierSpecs holds catalog.Tiers by name.
var TierSpecs = tierSpecs()

func tierSpecs() map[string]TierSpec {
	specs := make(map[string]TierSpec, len(catalog.Tiers))
	for _, t := range catalog.Tiers {
		specs[t.Name] = TierSpec{Instance: t.Instance, GPUs: t.GPUs, OnDemandHourly: t.OnDemandHourly,
			ServiceTime: t.ServiceTime}
	}
	return specs
}

// DefaultSpotDiscount is the deployment guide's "up to 70%" saving of spot GPU workers
// (section 10.2); real spot prices move with the market.
const DefaultSpotDiscount = 0.70

// PerInstanceMinute is how many images one instance renders per minute.
func (s TierSpec) PerInstanceMinute() float64 {
	return float64(s.GPUs) * float64(time.Minute) / float64(s.ServiceTime)
}

// SimOptions are the queue model's parameters.
type SimOptions struct {
	Config       Config
	Spec         TierSpec
	BootDelay    time.Duration // from a scale-up until the instance takes work
	SpotDiscount float64       // fraction off the on-demand price
	WarmPool     WarmPool
	// Baseline, when set (PollInterval > 0), is run beside Config with the
	// same trace and tier but no warm pool: the baseline rules on today's
	// groups.
	Baseline Config
	// BillingMinimum is what EC2 bills at least each time an instance
	// starts: 60 s for Linux on-demand and spot, per second after that.
	BillingMinimum time.Duration
	// FreeShare is the fraction of renders from Free users, which wait
	// behind paid ones (a lower priority key) in every run.
	FreeShare float64
	// SpotRefused is the fraction of half hours in which EC2 refuses the
	// tier's spot capacity (drawn with Seed): the spot group's launches
	// fail and it retries until the half hour ends.
	SpotRefused float64
	Seed        uint64
	// History is what the policy's autoscaler recorded before the trace
	// (RecordHistory), the source of its floor's forecast; HistoryNote
	// says what it is, for the report. Nil: no history.
	History     *History
	HistoryNote string
}

// DefaultBillingMinimum is EC2's minimum charge per start of a Linux
// instance, on-demand or spot; billing is per second after it.
const DefaultBillingMinimum = time.Minute

// WarmPool models an EC2 Auto Scaling warm pool with ReuseOnScaleIn: the
// group keeps Prepared instances (its MaxGroupPreparedCapacity; the group's
// max by default) either in service or stopped in the pool, the image and
// models on their disks. A scale-up takes a pooled instance first, which
// boots in Boot instead of the cold BootDelay; a scale-in stops the instance
// back into the pool. When the pool is short of Prepared minus the group's
// capacity (at the start, or after a cold launch past it), the group
// launches instances into it, which run (and are billed) for the cold
// BootDelay while they initialize, then stop. A stopped instance costs only
// its EBS volume: VolumeGB at EBSMonthlyPerGB USD per GB-month.
type WarmPool struct {
	Prepared        int
	Boot            time.Duration
	VolumeGB        float64
	EBSMonthlyPerGB float64
}

// DefaultWarmPool keeps ten g4dn instances prepared (the baseline rules' max), each
// with a 100 GB gp3 volume ($0.08 per GB-month, us-east-1; Seoul is within a
// cent), that boot in 40 s: a stopped instance resumes in well under a
// minute, and the worker loads models already on disk.
func DefaultWarmPool() WarmPool {
	return WarmPool{Prepared: 10, Boot: 40 * time.Second, VolumeGB: 100, EBSMonthlyPerGB: 0.08}
}

// BaselineLabel names the baseline in reports: DefaultConfig's step rules,
// those of the product's original design document (the deployment guide,
// section 4.3), on groups without a warm pool, as deployed before the work
// policy.
const BaselineLabel = "baseline rules"

// hoursPerMonth is AWS's month for GB-month prices.
const hoursPerMonth = 730

// RunResult is one provisioning strategy run over a trace.
type RunResult struct {
	Label            string
	Capacity         int // static runs: the fixed capacity
	InstanceHours    float64
	GPUHours         float64
	Served           int
	Unserved         int // still waiting when the simulation gave up draining
	WaitP50          time.Duration
	WaitP95          time.Duration
	WaitMax          time.Duration
	PaidP95          time.Duration
	PaidMax          time.Duration
	FreeServed       int
	FreeP95          time.Duration
	FreeMax          time.Duration
	CostOnDemand     float64 // instances at on-demand prices, plus warm pool volumes
	CostSpot         float64 // instances at spot prices, plus warm pool volumes
	CostAsRun        float64 // spot hosts at spot prices, the rest on-demand, plus volumes
	SpotHours        float64 // instance-hours of spot hosts
	BootHours        float64 // instance-hours billed while booting (warm pool refills included)
	IdleHours        float64 // instance-hours billed ready with nothing to render (billing minimums included)
	SpotRefusals     int     // times the spot group could not launch
	WarmPoolCost     float64 // the stopped instances' EBS volumes
	WarmStarts       int     // scale-ups served from the warm pool
	ScaleUps         int
	ScaleDowns       int
	PeakCapacity     int
	DrainedAfter     time.Duration // from the trace's end until the last render finished
	CapacityByMinute []int         // live instances at each minute
}

// Report compares the autoscaler with static provisioning at peak.
type Report struct {
	Trace      Trace
	Options    SimOptions
	Baseline   *RunResult // the baseline rules, when SimOptions.Baseline is set
	Autoscaled RunResult
	Static     RunResult
}

// Verdict compares the policy with the baseline rules on GPU-hours and p95
// wait: "better", "matches", or "worse on both" (the one outcome the policy
// must never have), with the figures.
func (r Report) Verdict() string {
	b, a := r.Baseline, r.Autoscaled
	if b == nil {
		return "no baseline"
	}
	word := "trade-off"
	switch {
	case a.GPUHours > b.GPUHours && a.WaitP95 > b.WaitP95:
		word = "worse on both"
	case a.GPUHours <= b.GPUHours && a.WaitP95 <= b.WaitP95:
		word = "better or equal on both"
	}
	return fmt.Sprintf("%s (GPU-hours %.1f vs %.1f, p95 %s vs %s)", word, a.GPUHours, b.GPUHours, a.WaitP95, b.WaitP95)
}

// FloorGPUHours is the GPU time the trace's images need: what a fleet that
// never idled would pay.
func (r Report) FloorGPUHours() float64 {
	return float64(r.Trace.Images()) * r.Options.Spec.ServiceTime.Hours()
}

// Savings is how much the autoscaler saves over static provisioning, in USD
// and as a fraction of the static cost, at on-demand or spot prices.
func (r Report) Savings(spot bool) (usd, fraction float64) {
	a, s := r.Autoscaled.CostOnDemand, r.Static.CostOnDemand
	if spot {
		a, s = r.Autoscaled.CostSpot, r.Static.CostSpot
	}
	if s == 0 {
		return s - a, 0
	}
	return s - a, (s - a) / s
}

// maxDrain bounds the time after the trace spent emptying the queue, for a
// policy that can never catch up (a window with Max 0, say).
const maxDrain = 48 * time.Hour

// Simulate runs the trace through the autoscaler's rules (Decide, exactly as
// the workflow calls it, polled every Config.PollInterval) and through a
// static fleet sized for the busiest quarter hour, with the same queue model:
// images wait in two FIFO queues, paid and Free, and a free GPU takes a
// paid one first (Temporal's priority keys); each GPU renders one at a
// time; a new instance takes work after BootDelay (a warm pool's after its
// Boot); a removed one finishes its renders and is billed until then;
// billing is per second after BillingMinimum per start. Only the policy
// run sees the History and may use spot; the baseline and static runs have
// neither, nor a warm pool. Once ctx is done, Simulate stops within a
// simulated minute and returns an error wrapping ctx.Err().
func Simulate(ctx context.Context, tr Trace, opt SimOptions) (Report, error) {
	if err := opt.validate(tr); err != nil {
		return Report{}, err
	}
	static := StaticCapacity(tr, opt.Spec, opt.Config.Min)
	cold := opt
	cold.WarmPool, cold.History = WarmPool{}, nil
	r := Report{Trace: tr, Options: opt}
	var err error
	if r.Autoscaled, err = newQueueSim(tr, opt, -1).run(ctx, policyLabel(opt)); err != nil {
		return Report{}, fmt.Errorf("simulate: %w", err)
	}
	if r.Static, err = newQueueSim(tr, cold, static).run(ctx, fmt.Sprintf("static at peak (%d)", static)); err != nil {
		return Report{}, fmt.Errorf("simulate: %w", err)
	}
	if opt.Baseline.PollInterval > 0 {
		cold.Config = opt.Baseline
		base, err := newQueueSim(tr, cold, -1).run(ctx, BaselineLabel)
		if err != nil {
			return Report{}, fmt.Errorf("simulate: %w", err)
		}
		r.Baseline = &base
	}
	return r, nil
}

// RecordHistory runs the policy over an earlier trace (last week's) and
// returns the History its autoscaler recorded, poll by poll, as the
// workflow does: what the floor of the next week's run forecasts from.
// The earlier run has no history of its own, so it runs without a floor.
// Like Simulate, it stops once ctx is done.
func RecordHistory(ctx context.Context, tr Trace, opt SimOptions) (*History, error) {
	opt.Config.Work.FloorShare, opt.History = 0, nil
	if err := opt.validate(tr); err != nil {
		return nil, fmt.Errorf("history trace: %w", err)
	}
	q := newQueueSim(tr, opt, -1)
	q.hist = NewHistory()
	if _, err := q.run(ctx, "history"); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	return q.hist, nil
}

func policyLabel(o SimOptions) string {
	p := o.Config.Policy
	if p == "" {
		p = PolicyRules
	}
	if o.WarmPool.Prepared > 0 {
		return fmt.Sprintf("%s + warm pool", p)
	}
	return p
}

func (o SimOptions) validate(tr Trace) error {
	var errs []error
	if err := o.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.Spec.GPUs < 1 || o.Spec.ServiceTime < time.Second || o.Spec.OnDemandHourly < 0 {
		errs = append(errs, fmt.Errorf("tier spec %+v: need GPUs >= 1, service time >= 1s, price >= 0", o.Spec))
	}
	if o.BootDelay < 0 || o.SpotDiscount < 0 || o.SpotDiscount >= 1 {
		errs = append(errs, fmt.Errorf("boot delay %s, spot discount %g: need delay >= 0 and 0 <= discount < 1", o.BootDelay, o.SpotDiscount))
	}
	if len(tr.Arrivals) == 0 {
		errs = append(errs, errors.New("trace is empty"))
	}
	if n := tr.Images(); n > MaxTraceImages {
		errs = append(errs, fmt.Errorf("trace %s has %d images: the simulator takes at most %d", tr.Name, n, MaxTraceImages))
	}
	if o.BillingMinimum < 0 || o.FreeShare < 0 || o.FreeShare > 1 || o.SpotRefused < 0 || o.SpotRefused > 1 {
		errs = append(errs, fmt.Errorf("billing minimum %s, Free share %g, spot refused %g: need a minimum >= 0 and shares in [0, 1]",
			o.BillingMinimum, o.FreeShare, o.SpotRefused))
	}
	if w := o.WarmPool; w.Prepared < 0 || w.Boot < 0 || w.VolumeGB < 0 || w.EBSMonthlyPerGB < 0 {
		errs = append(errs, fmt.Errorf("warm pool %+v: need size, boot, volume and price >= 0", w))
	}
	if o.Baseline.PollInterval > 0 {
		if err := o.Baseline.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("baseline: %w", err))
		}
	}
	return errors.Join(errs...)
}

// peakWindow is the span whose average load a static fleet is sized for:
// a fleet sized for the single busiest minute would count Poisson noise as
// demand and flatter the autoscaler.
const peakWindow = 15

// StaticCapacity is the fleet that keeps up with the trace's busiest
// quarter hour on average, and at least floor instances.
func StaticCapacity(tr Trace, spec TierSpec, floor int) int {
	need := int(math.Ceil(PeakRate(tr, peakWindow) / spec.PerInstanceMinute()))
	return max(need, floor, 1)
}

// PeakRate is the highest average of images per minute over any window of
// that many consecutive minutes (the whole trace when it is shorter).
func PeakRate(tr Trace, window int) float64 {
	window = max(min(window, len(tr.Arrivals)), 1)
	sum, best := 0, 0
	for i, n := range tr.Arrivals {
		sum += n
		if i >= window {
			sum -= tr.Arrivals[i-window]
		}
		best = max(best, sum)
	}
	return float64(best) / float64(window)
}

// percentile of sorted seconds, nearest rank.
func percentile(sorted []int, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := max(int(math.Ceil(p*float64(len(sorted))))-1, 0)
	return time.Duration(sorted[i]) * time.Second
}

// Write prints the report as a table.
func (r Report) Write(w io.Writer) error {
	var b bytes.Buffer
	o, s := r.Options, r.Options.Spec
	fmt.Fprintf(&b, "trace %s: %s from %s, %d images, busiest minute %d\n", r.Trace.Name,
		time.Duration(len(r.Trace.Arrivals))*time.Minute, r.Trace.Start.Format("2006-01-02 15:04 MST"), r.Trace.Images(), r.Trace.Peak())
	fmt.Fprintf(&b, "tier: %s, %d GPU, $%.3f/h on-demand, $%.3f/h spot (%.0f%% off); %s per image per GPU; boot %s (warm %s); poll %s%s\n",
		s.Instance, s.GPUs, s.OnDemandHourly, s.OnDemandHourly*(1-o.SpotDiscount), o.SpotDiscount*100, s.ServiceTime, o.BootDelay, o.WarmPool.Boot, o.Config.PollInterval, r.basePoll())
	fmt.Fprintf(&b, "renders: %.0f%% Free (after paid ones); billing per second, at least %s a start\n", o.FreeShare*100, o.BillingMinimum)
	if line := r.policyLine(); line != "" {
		fmt.Fprintln(&b, line)
	}
	b.WriteString("\n")
	r.writeTable(&b)
	if base := r.Baseline; base != nil {
		fmt.Fprintf(&b, "%s vs %s: %s\n", r.Autoscaled.Label, BaselineLabel, r.Verdict())
	}
	od, odf := r.Savings(false)
	sp, spf := r.Savings(true)
	fmt.Fprintf(&b, "\n%s, savings vs static at peak: %s (%.1f%%) on-demand, %s (%.1f%%) spot\n", r.Autoscaled.Label, usd(od), odf*100, usd(sp), spf*100)
	if st := r.Static.CostOnDemand; st > 0 {
		both := st - r.Autoscaled.CostSpot
		fmt.Fprintf(&b, "%s on spot vs static on-demand: %s (%.1f%%)\n", r.Autoscaled.Label, usd(both), both/st*100)
	}
	if a := r.Autoscaled; a.Unserved > 0 || a.DrainedAfter > 10*time.Minute {
		fmt.Fprintf(&b, "autoscaled: last render ended %s after the trace; %d images never started\n", a.DrainedAfter, a.Unserved)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// policyLine says what the policy's floor saw and how spot fared.
func (r Report) policyLine() string {
	o := r.Options
	w := o.Config.Work
	if o.Config.Policy != PolicyWork || (w.FloorShare <= 0 && !w.Spot) {
		return ""
	}
	var parts []string
	if w.FloorShare > 0 {
		note := o.HistoryNote
		if o.History == nil {
			note = "none"
		}
		parts = append(parts, fmt.Sprintf("floor %.0f%% of last week's load %s ahead (history: %s)", w.FloorShare*100, w.FloorLead, note))
	}
	if w.Spot {
		parts = append(parts, fmt.Sprintf("floor on spot, EC2 refusing spot capacity %.0f%% of half hours (%d refusals, on-demand covered them)",
			o.SpotRefused*100, r.Autoscaled.SpotRefusals))
	}
	return "policy: " + strings.Join(parts, "; ")
}

// basePoll notes the baseline rules' own poll interval.
func (r Report) basePoll() string {
	if r.Baseline == nil {
		return ""
	}
	return fmt.Sprintf(" (%s %s)", BaselineLabel, r.Options.Baseline.PollInterval)
}

func (r Report) writeTable(b *bytes.Buffer) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	runs := []RunResult{r.Autoscaled, r.Static}
	if r.Baseline != nil {
		runs = []RunResult{*r.Baseline, r.Autoscaled, r.Static}
	}
	floor := r.FloorGPUHours()
	rows := []struct {
		name string
		cell func(RunResult) string
	}{
		{"", func(x RunResult) string { return x.Label }},
		{"GPU-hours", func(x RunResult) string { return fmt.Sprintf("%.1f", x.GPUHours) }},
		{"x floor", func(x RunResult) string { return fmt.Sprintf("%.2f", x.GPUHours/floor) }},
		{"wait p50", func(x RunResult) string { return x.WaitP50.String() }},
		{"wait p95", func(x RunResult) string { return x.WaitP95.String() }},
		{"wait max", func(x RunResult) string { return x.WaitMax.String() }},
		{"paid p95 / max", func(x RunResult) string { return x.PaidP95.String() + " / " + x.PaidMax.String() }},
		{"Free p95 / max", func(x RunResult) string {
			if x.FreeServed == 0 {
				return "-"
			}
			return x.FreeP95.String() + " / " + x.FreeMax.String()
		}},
		{"billed booting", func(x RunResult) string { return fmt.Sprintf("%.1f h", x.BootHours) }},
		{"billed idle", func(x RunResult) string { return fmt.Sprintf("%.1f h", x.IdleHours) }},
		{"images served", func(x RunResult) string { return fmt.Sprint(x.Served) }},
		{"peak instances", func(x RunResult) string { return fmt.Sprint(x.PeakCapacity) }},
		{"scale-ups / downs", func(x RunResult) string {
			if x.Capacity > 0 {
				return "-"
			}
			return fmt.Sprintf("%d / %d", x.ScaleUps, x.ScaleDowns)
		}},
		{"warm starts", func(x RunResult) string { return fmt.Sprint(x.WarmStarts) }},
		{"warm pool volumes", func(x RunResult) string { return usd(x.WarmPoolCost) }},
		{"cost on-demand", func(x RunResult) string { return usd(x.CostOnDemand) }},
		{"cost spot", func(x RunResult) string { return usd(x.CostSpot) }},
		{"spot hours", func(x RunResult) string { return fmt.Sprintf("%.1f", x.SpotHours) }},
		{"cost as run", func(x RunResult) string { return usd(x.CostAsRun) }},
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t", row.name)
		for _, x := range runs {
			fmt.Fprintf(tw, "%s\t", row.cell(x))
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush() // a bytes.Buffer does not fail
	fmt.Fprintf(b, "floor (images x %s): %.1f GPU-hours\n", r.Options.Spec.ServiceTime, floor)
}

func usd(v float64) string {
	if v < 0 {
		return fmt.Sprintf("-$%.2f", -v)
	}
	return fmt.Sprintf("$%.2f", v)
}
