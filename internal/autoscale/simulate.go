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
}

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
	CostOnDemand     float64
	CostSpot         float64
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
	Autoscaled RunResult
	Static     RunResult
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
	return Report{
		Trace:      tr,
		Options:    opt,
		Autoscaled: newQueueSim(tr, opt, -1).run("autoscaled"),
		Static:     newQueueSim(tr, opt, static).run(fmt.Sprintf("static at peak (%d)", static)),
	}, nil
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
	ready int   // second it starts taking work
	free  []int // second each GPU is free again
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
	seconds  int // instance-seconds billed
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
	q.launch(capacity, 0)
	return q
}

func (q *queueSim) launch(n, ready int) {
	for range n {
		q.live = append(q.live, &instance{ready: ready, free: make([]int, q.opt.Spec.GPUs)})
	}
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
	count, age := q.backlog(t)
	o := Observation{At: q.tr.Start.Add(time.Duration(t) * time.Second), Backlog: count, BacklogAge: age, Capacity: len(q.live)}
	d, next := Decide(q.opt.Config, q.state, o)
	q.state = next
	switch {
	case d.Desired > d.Current:
		q.launch(d.Desired-d.Current, t+int(q.opt.BootDelay.Seconds()))
		q.res.ScaleUps++
	case d.Desired < d.Current:
		q.retire(d.Current-d.Desired, t)
		q.res.ScaleDowns++
	}
}

// retire removes the newest instances, as an Auto Scaling group's default
// policy would; one still rendering is billed until it finishes.
func (q *queueSim) retire(n, t int) {
	for range n {
		last := q.live[len(q.live)-1]
		q.live = q.live[:len(q.live)-1]
		if last.ready <= t && last.busy(t) {
			q.draining = append(q.draining, last)
		}
	}
}

func (q *queueSim) bill(t int) {
	q.draining = slices.DeleteFunc(q.draining, func(in *instance) bool { return !in.busy(t) })
	n := len(q.live) + len(q.draining)
	q.seconds += n
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
	r.CostOnDemand = r.InstanceHours * q.opt.Spec.OnDemandHourly
	r.CostSpot = r.CostOnDemand * (1 - q.opt.SpotDiscount)
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
	fmt.Fprintf(&b, "tier: %s, %d GPU, $%.3f/h on-demand, $%.3f/h spot (%.0f%% off); %s per image per GPU; boot %s; poll %s\n\n",
		s.Instance, s.GPUs, s.OnDemandHourly, s.OnDemandHourly*(1-o.SpotDiscount), o.SpotDiscount*100, s.ServiceTime, o.BootDelay, o.Config.PollInterval)
	r.writeTable(&b)
	od, odf := r.Savings(false)
	sp, spf := r.Savings(true)
	fmt.Fprintf(&b, "\nsavings vs static at peak: %s (%.1f%%) on-demand, %s (%.1f%%) spot\n", usd(od), odf*100, usd(sp), spf*100)
	if st := r.Static.CostOnDemand; st > 0 {
		both := st - r.Autoscaled.CostSpot
		fmt.Fprintf(&b, "autoscaled on spot vs static on-demand: %s (%.1f%%)\n", usd(both), both/st*100)
	}
	if a := r.Autoscaled; a.Unserved > 0 || a.DrainedAfter > 10*time.Minute {
		fmt.Fprintf(&b, "autoscaled: last render ended %s after the trace; %d images never started\n", a.DrainedAfter, a.Unserved)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func (r Report) writeTable(b *bytes.Buffer) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	a, st := r.Autoscaled, r.Static
	rows := [][3]string{
		{"", a.Label, st.Label},
		{"GPU-hours", fmt.Sprintf("%.1f", a.GPUHours), fmt.Sprintf("%.1f", st.GPUHours)},
		{"wait p50", a.WaitP50.String(), st.WaitP50.String()},
		{"wait p95", a.WaitP95.String(), st.WaitP95.String()},
		{"wait max", a.WaitMax.String(), st.WaitMax.String()},
		{"images served", fmt.Sprint(a.Served), fmt.Sprint(st.Served)},
		{"peak instances", fmt.Sprint(a.PeakCapacity), fmt.Sprint(st.PeakCapacity)},
		{"scale-ups / downs", fmt.Sprintf("%d / %d", a.ScaleUps, a.ScaleDowns), "-"},
		{"cost on-demand", usd(a.CostOnDemand), usd(st.CostOnDemand)},
		{"cost spot", usd(a.CostSpot), usd(st.CostSpot)},
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t\n", row[0], row[1], row[2])
	}
	_ = tw.Flush() // a bytes.Buffer does not fail
}

func usd(v float64) string {
	if v < 0 {
		return fmt.Sprintf("-$%.2f", -v)
	}
	return fmt.Sprintf("$%.2f", v)
}
