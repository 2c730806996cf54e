package autoscale

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
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
}

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
	CostOnDemand     float64 // instances at on-demand prices, plus warm pool volumes
	CostSpot         float64 // instances at spot prices, plus warm pool volumes
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
// images wait in one FIFO queue, each GPU renders one at a time, a new
// instance takes work after BootDelay, a removed one finishes its renders
// and is billed until then; billing is per second.
func Simulate(tr Trace, opt SimOptions) (Report, error) {
	if err := opt.validate(tr); err != nil {
		return Report{}, err
	}
	static := StaticCapacity(tr, opt.Spec, opt.Config.Min)
	cold := opt
	cold.WarmPool = WarmPool{}
	r := Report{
		Trace:      tr,
		Options:    opt,
		Autoscaled: newQueueSim(tr, opt, -1).run(policyLabel(opt)),
		Static:     newQueueSim(tr, cold, static).run(fmt.Sprintf("static at peak (%d)", static)),
	}
	if opt.Baseline.PollInterval > 0 {
		cold.Config = opt.Baseline
		base := newQueueSim(tr, cold, -1).run(BaselineLabel)
		r.Baseline = &base
	}
	return r, nil
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

// instance is one simulated GPU host.
type instance struct {
	started int   // second it was asked for: its billing starts
	ready   int   // second it starts taking work
	free    []int // second each GPU is free again
}

func (in *instance) busy(t int) bool { return slices.Max(in.free) > t }

// queueSim is one run. Times are whole seconds from the trace start.
type queueSim struct {
	tr       Trace
	opt      SimOptions
	service  int
	poll     int
	static   bool
	queue    []int // arrival seconds, FIFO
	head     int   // queue[head:] have not started
	live     []*instance
	draining []*instance
	state    State
	waits    []int
	seconds  int   // instance-seconds billed
	warm     int   // stopped instances ready in the pool
	warming  []int // seconds at which pool replacements finish initializing
	stopped  int   // pool instance-seconds stopped, for their volumes
	res      RunResult
}

// newQueueSim starts with capacity instances ready, or with the policy's
// minimum when capacity < 0 (autoscaled).
func newQueueSim(tr Trace, opt SimOptions, capacity int) *queueSim {
	q := &queueSim{tr: tr, opt: opt, static: capacity >= 0,
		service: int(math.Ceil(opt.Spec.ServiceTime.Seconds())), poll: max(int(opt.Config.PollInterval.Seconds()), 1)}
	if capacity < 0 {
		capacity = opt.Config.BoundsAt(tr.Start).Min
	}
	q.launch(capacity, 0, false)
	q.warm = q.poolTarget()
	return q
}

// launch starts n instances at second t: from the warm pool while it has
// any (boot WarmPool.Boot, and a replacement starts initializing into the
// pool), else cold (BootDelay). The first instances of a run are up at once.
func (q *queueSim) launch(n, t int, boot bool) {
	for range n {
		ready := t
		if boot {
			ready = t + int(q.opt.BootDelay.Seconds())
			if q.warm > 0 {
				q.warm--
				ready = t + int(q.opt.WarmPool.Boot.Seconds())
				q.res.WarmStarts++
			}
		}
		q.live = append(q.live, &instance{started: t, ready: ready, free: make([]int, q.opt.Spec.GPUs)})
	}
	q.refill(t)
}

// poolTarget is how many stopped instances the group keeps now.
func (q *queueSim) poolTarget() int { return max(q.opt.WarmPool.Prepared-len(q.live), 0) }

// refill launches instances into a short pool, and terminates stopped
// ones past its target.
func (q *queueSim) refill(t int) {
	for q.warm+len(q.warming) < q.poolTarget() {
		q.warming = append(q.warming, t+int(q.opt.BootDelay.Seconds()))
	}
	q.warm = min(q.warm, q.poolTarget())
}

// toPool stops a scaled-in instance into the pool when the pool has room.
func (q *queueSim) toPool(t int) {
	if q.warm+len(q.warming) < q.poolTarget() {
		q.warm++
	}
	q.refill(t)
}

func (q *queueSim) run(label string) RunResult {
	end := len(q.tr.Arrivals) * 60
	limit := end + int(maxDrain.Seconds())
	t := 0
	for ; t < limit && (t < end || q.working(t)); t++ {
		if t%60 == 0 && t < end {
			q.arrive(t / 60)
		}
		q.dispatch(t)
		if !q.static && t%q.poll == 0 {
			q.decide(t)
		}
		q.bill(t)
	}
	return q.result(label, t, end)
}

// working says whether images still wait or render.
func (q *queueSim) working(t int) bool {
	if q.head < len(q.queue) || len(q.draining) > 0 {
		return true
	}
	return slices.ContainsFunc(q.live, func(in *instance) bool { return in.busy(t) })
}

// arrive queues a minute's images, spread evenly over the minute.
func (q *queueSim) arrive(minute int) {
	n := q.tr.Arrivals[minute]
	for i := range n {
		q.queue = append(q.queue, minute*60+i*60/n)
	}
}

// dispatch gives each free GPU of a ready instance the oldest waiting image.
func (q *queueSim) dispatch(t int) {
	for _, in := range q.live {
		if in.ready > t {
			continue
		}
		for g := range in.free {
			if in.free[g] > t || q.head == len(q.queue) || q.queue[q.head] > t {
				continue
			}
			q.waits = append(q.waits, t-q.queue[q.head])
			q.head++
			in.free[g] = t + q.service
		}
	}
}

// backlog counts the images that have arrived and not started.
func (q *queueSim) backlog(t int) (int64, time.Duration) {
	n := 0
	for i := q.head; i < len(q.queue) && q.queue[i] <= t; i++ {
		n++
	}
	if n == 0 {
		return 0, 0
	}
	return int64(n), time.Duration(t-q.queue[q.head]) * time.Second
}

// decide runs the real rules on the simulated observation.
func (q *queueSim) decide(t int) {
	d, next := Decide(q.opt.Config, q.state, q.observe(t))
	q.state = next
	switch {
	case d.Desired > d.Current:
		q.launch(d.Desired-d.Current, t, true)
		q.res.ScaleUps++
	case d.Desired < d.Current:
		q.retire(d.Current-d.Desired, t)
		q.res.ScaleDowns++
	}
}

// observe is what ObserveTier and a driver that reports its instances would
// read: the backlog, its GPU time, the booting and the idle instances.
func (q *queueSim) observe(t int) Observation {
	count, age := q.backlog(t)
	o := Observation{At: q.tr.Start.Add(time.Duration(t) * time.Second), Backlog: count, BacklogAge: age,
		Capacity: len(q.live), BacklogWork: time.Duration(count) * time.Duration(q.service) * time.Second,
		GPUs: q.opt.Spec.GPUs, InstancesKnown: true}
	for _, in := range q.live {
		switch {
		case in.ready > t:
			o.Booting++
		case !in.busy(t):
			idle := t - max(in.ready, slices.Max(in.free))
			o.Idle = append(o.Idle, IdleInstance{IdleFor: time.Duration(idle) * time.Second,
				Uptime: time.Duration(t-in.started) * time.Second})
		}
	}
	return o
}

// retire removes n instances: the longest idle first (GPU workers protect
// themselves from scale-in while they render), then the newest, as an Auto
// Scaling group's default policy would. One still rendering is billed until
// it finishes; each returns to the warm pool while the pool is short.
func (q *queueSim) retire(n, t int) {
	if q.opt.Config.Policy != PolicyWork {
		// The baseline's groups have no scale-in protection: newest first.
		q.retireNewest(n, t)
		return
	}
	slices.SortStableFunc(q.live, func(a, b *instance) int {
		return idleRank(a, t) - idleRank(b, t)
	})
	for range n {
		last := q.live[len(q.live)-1]
		q.live = q.live[:len(q.live)-1]
		if last.ready <= t && last.busy(t) {
			q.draining = append(q.draining, last)
		}
		q.toPool(t)
	}
}

func (q *queueSim) retireNewest(n, t int) {
	for range n {
		last := q.live[len(q.live)-1]
		q.live = q.live[:len(q.live)-1]
		if last.ready <= t && last.busy(t) {
			q.draining = append(q.draining, last)
		}
		q.toPool(t)
	}
}

// idleRank orders instances for retirement, which takes from the end:
// booting and busy ones first (kept), then idle ones by how long they have
// idled, the longest idle last (removed first).
func idleRank(in *instance, t int) int {
	if in.ready > t || in.busy(t) {
		return math.MinInt32
	}
	return t - max(in.ready, slices.Max(in.free))
}

func (q *queueSim) bill(t int) {
	q.draining = slices.DeleteFunc(q.draining, func(in *instance) bool { return !in.busy(t) })
	warmed := len(q.warming)
	q.warming = slices.DeleteFunc(q.warming, func(ready int) bool { return ready <= t })
	q.warm += warmed - len(q.warming)
	n := len(q.live) + len(q.draining) + len(q.warming)
	q.seconds += n
	q.stopped += q.warm
	q.res.PeakCapacity = max(q.res.PeakCapacity, len(q.live))
	if t%60 == 0 {
		q.res.CapacityByMinute = append(q.res.CapacityByMinute, len(q.live))
	}
}

func (q *queueSim) result(label string, t, end int) RunResult {
	r := q.res
	r.Label, r.Served, r.Unserved = label, len(q.waits), len(q.queue)-q.head
	if q.static {
		r.Capacity = len(q.live)
	}
	r.InstanceHours = float64(q.seconds) / 3600
	r.GPUHours = r.InstanceHours * float64(q.opt.Spec.GPUs)
	w := q.opt.WarmPool
	r.WarmPoolCost = float64(q.stopped) / 3600 * w.VolumeGB * w.EBSMonthlyPerGB / hoursPerMonth
	r.CostOnDemand = r.InstanceHours*q.opt.Spec.OnDemandHourly + r.WarmPoolCost
	r.CostSpot = r.InstanceHours*q.opt.Spec.OnDemandHourly*(1-q.opt.SpotDiscount) + r.WarmPoolCost
	r.DrainedAfter = time.Duration(max(t-end, 0)) * time.Second
	slices.Sort(q.waits)
	r.WaitP50, r.WaitP95, r.WaitMax = percentile(q.waits, 0.50), percentile(q.waits, 0.95), percentile(q.waits, 1)
	return r
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
	fmt.Fprintf(&b, "tier: %s, %d GPU, $%.3f/h on-demand, $%.3f/h spot (%.0f%% off); %s per image per GPU; boot %s (warm %s); poll %s%s\n\n",
		s.Instance, s.GPUs, s.OnDemandHourly, s.OnDemandHourly*(1-o.SpotDiscount), o.SpotDiscount*100, s.ServiceTime, o.BootDelay, o.WarmPool.Boot, o.Config.PollInterval, r.basePoll())
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
