package autoscale

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// instance is one simulated GPU host.
type instance struct {
	started int   // second its current run started: billing, uptime
	ready   int   // second it starts taking work
	free    []int // second each GPU is free again
	spot    bool  // in the spot group
}

func (in *instance) busy(t int) bool { return slices.Max(in.free) > t }

func (in *instance) busyGPUs(t int) int {
	n := 0
	for _, f := range in.free {
		if f > t {
			n++
		}
	}
	return n
}

// fifo is one priority class's queue of arrival seconds.
type fifo struct {
	arrivals []int
	head     int // arrivals[head:] have not started
	waits    []int
}

// waiting counts the renders that have arrived by t and not started, and
// the oldest one's wait.
func (f *fifo) waiting(t int) (int, int) {
	// arrivals are in ascending order (arrive appends minute by minute), so
	// a binary search counts them: a backlog of millions is read every poll.
	n := sort.SearchInts(f.arrivals[f.head:], t+1)
	if n == 0 {
		return 0, 0
	}
	return n, t - f.arrivals[f.head]
}

func (f *fifo) ready(t int) bool { return f.head < len(f.arrivals) && f.arrivals[f.head] <= t }

func (f *fifo) take(t int) {
	f.waits = append(f.waits, t-f.arrivals[f.head])
	f.head++
}

// spotRefusalSeen is how long a refused spot launch takes to show as a
// failed scaling activity of the spot group, which the driver reads.
const spotRefusalSeen = 60

// spotSlot is the span of the spot market model: EC2 refuses spot capacity
// of the tier for whole half hours.
const spotSlot = 30 * 60

// queueSim is one run. Times are whole seconds from the trace start.
type queueSim struct {
	tr       Trace
	opt      SimOptions
	service  int
	poll     int
	static   bool
	paid     fifo
	freeQ    fifo
	arrived  int // renders so far, to draw each one's class
	live     []*instance
	draining []*instance
	state    State
	seconds  int // instance-seconds billed
	spotSecs int // of which spot
	bootSecs int // of which booting
	idleSecs int // of which ready and rendering nothing
	poolSecs int // of which initializing into the warm pool
	minSecs  int // of which billing minimums of short runs
	warm     int // stopped instances ready in the pool
	warming  []int
	stopped  int // pool instance-seconds stopped, for their volumes
	spotWant int // the spot group's desired capacity
	// refusedAt is when the spot group last failed to launch for want of
	// capacity, -1 while it is not short.
	refusedAt int
	refused   []bool // by spotSlot: EC2 refuses spot capacity
	hist      *History
	res       RunResult
}

// newQueueSim starts with capacity instances ready, or with the policy's
// minimum when capacity < 0 (autoscaled).
func newQueueSim(tr Trace, opt SimOptions, capacity int) *queueSim {
	q := &queueSim{tr: tr, opt: opt, static: capacity >= 0, refusedAt: -1,
		service: int(math.Ceil(opt.Spec.ServiceTime.Seconds())), poll: max(int(opt.Config.PollInterval.Seconds()), 1)}
	if capacity < 0 {
		capacity = opt.Config.BoundsAt(tr.Start).Min
	}
	q.launch(capacity, 0, false)
	q.warm = q.poolTarget()
	q.refused = spotRefusals(len(tr.Arrivals)*60+int(maxDrain.Seconds()), opt.SpotRefused, opt.Seed)
	if opt.History != nil {
		q.hist = opt.History.clone()
	}
	return q
}

// spotRefusals draws, for each half hour, whether EC2 refuses spot
// capacity: each with probability share, seeded.
func spotRefusals(seconds int, share float64, seed uint64) []bool {
	if share <= 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	out := make([]bool, seconds/spotSlot+1)
	for i := range out {
		out[i] = rng.Float64() < share
	}
	return out
}

func (q *queueSim) spotRefused(t int) bool {
	i := t / spotSlot
	return i < len(q.refused) && q.refused[i]
}

// launch starts n on-demand instances at second t: from the warm pool
// while it has any (boot WarmPool.Boot, and a replacement starts
// initializing into the pool), else cold (BootDelay). The first instances
// of a run are up at once.
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

// onDemand counts the on-demand group's instances (its capacity).
func (q *queueSim) onDemand() int {
	n := 0
	for _, in := range q.live {
		if !in.spot {
			n++
		}
	}
	return n
}

// poolTarget is how many stopped instances the on-demand group keeps now.
func (q *queueSim) poolTarget() int { return max(q.opt.WarmPool.Prepared-q.onDemand(), 0) }

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

// run simulates the trace second by second. It checks ctx once a simulated
// minute and gives up with ctx's error, saying how far it got, once ctx is
// done (Ctrl-C, SIGTERM).
func (q *queueSim) run(ctx context.Context, label string) (RunResult, error) {
	end := len(q.tr.Arrivals) * 60
	limit := end + int(maxDrain.Seconds())
	t := 0
	for ; t < limit && (t < end || q.working(t)); t++ {
		if t%60 == 0 {
			if err := ctx.Err(); err != nil {
				return RunResult{}, fmt.Errorf("%s run stopped at minute %d of the trace's %d: %w", label, t/60, len(q.tr.Arrivals), err)
			}
			if t < end {
				q.arrive(t / 60)
			}
		}
		q.dispatch(t)
		if !q.static && t%q.poll == 0 {
			q.decide(t)
		}
		q.bill(t)
	}
	return q.result(label, t, end), nil
}

// working says whether images still wait or render.
func (q *queueSim) working(t int) bool {
	if q.paid.head < len(q.paid.arrivals) || q.freeQ.head < len(q.freeQ.arrivals) || len(q.draining) > 0 {
		return true
	}
	return slices.ContainsFunc(q.live, func(in *instance) bool { return in.busy(t) })
}

// freeGolden spreads Free renders evenly through a trace: render k is
// Free when the fractional part of k times the golden ratio is under
// the Free share, a low-discrepancy draw with no random state.
const freeGolden = 0.6180339887498949

// arrive queues a minute's images, spread evenly over the minute, each
// in its class's queue.
func (q *queueSim) arrive(minute int) {
	n := q.tr.Arrivals[minute]
	for i := range n {
		at := minute*60 + i*60/n
		_, frac := math.Modf(float64(q.arrived) * freeGolden)
		q.arrived++
		if frac < q.opt.FreeShare {
			q.freeQ.arrivals = append(q.freeQ.arrivals, at)
		} else {
			q.paid.arrivals = append(q.paid.arrivals, at)
		}
	}
}

// dispatch gives each free GPU of a ready instance the oldest waiting
// paid image, or the oldest Free one when no paid image waits: Temporal's
// priority keys are strict within a queue.
func (q *queueSim) dispatch(t int) {
	for _, in := range q.live {
		if in.ready > t {
			continue
		}
		for g := range in.free {
			if in.free[g] > t {
				continue
			}
			switch {
			case q.paid.ready(t):
				q.paid.take(t)
			case q.freeQ.ready(t):
				q.freeQ.take(t)
			default:
				continue
			}
			in.free[g] = t + q.service
		}
	}
}

// decide runs the real policy on the simulated observation.
func (q *queueSim) decide(t int) {
	q.reconcileSpot(t)
	o := q.observe(t)
	q.hist.Record(o.At, o.BusyGPUs, q.opt.Config.PollInterval)
	d, next := Decide(q.opt.Config, q.state, o)
	q.state = next
	switch {
	case d.Desired > d.Current:
		// The first decision stands for the fleet the autoscaler already
		// ran before the trace began: its instances are up at once.
		q.launch(d.Desired-d.Current, t, t > 0)
		q.res.ScaleUps++
	case d.Desired < d.Current:
		q.retire(d.Current-d.Desired, t)
		q.res.ScaleDowns++
	}
	if d.SpotDesired != q.spotWant {
		q.spotWant = d.SpotDesired
		q.reconcileSpot(t)
	}
}

// reconcileSpot is the spot group reaching its desired capacity: cold
// launches while EC2 has spot capacity, nothing while it refuses (the
// group retries), and idle hosts first on scale-in (busy ones are
// protected).
func (q *queueSim) reconcileSpot(t int) {
	n := len(q.live) - q.onDemand()
	switch {
	case n > q.spotWant:
		q.retireFrom(n-q.spotWant, t, true)
	case n < q.spotWant && q.spotRefused(t):
		if q.refusedAt < 0 {
			q.refusedAt = t
			q.res.SpotRefusals++
		}
		return
	case n < q.spotWant:
		ready := t + int(q.opt.BootDelay.Seconds())
		if t == 0 {
			ready = t // up before the trace began, as in decide
		}
		for range q.spotWant - n {
			q.live = append(q.live, &instance{started: t, ready: ready,
				free: make([]int, q.opt.Spec.GPUs), spot: true})
		}
	}
	q.refusedAt = -1
}

// observe is what ObserveTier and a driver that reports its instances
// would read: the backlog by class, its GPU time, the booting and the idle
// instances, the spot group and its shortfall, and last week's load.
func (q *queueSim) observe(t int) Observation {
	at := q.tr.Start.Add(time.Duration(t) * time.Second)
	pn, pAge := q.paid.waiting(t)
	fn, fAge := q.freeQ.waiting(t)
	svc := time.Duration(q.service) * time.Second
	o := Observation{At: at, Backlog: int64(pn + fn), BacklogAge: time.Duration(max(pAge, fAge)) * time.Second,
		Capacity: q.onDemand(), BacklogWork: time.Duration(pn+fn) * svc, GPUs: q.opt.Spec.GPUs, InstancesKnown: true,
		ClassesKnown: true, Spot: q.spotWant,
		Paid: Waiting{Count: int64(pn), Age: time.Duration(pAge) * time.Second, Work: time.Duration(pn) * svc},
		Free: Waiting{Count: int64(fn), Age: time.Duration(fAge) * time.Second, Work: time.Duration(fn) * svc}}
	if q.refusedAt >= 0 && t-q.refusedAt >= spotRefusalSeen {
		o.SpotShort = q.spotWant - (len(q.live) - o.Capacity)
	}
	if w := q.opt.Config.Work; q.opt.Config.Policy == PolicyWork && w.FloorShare > 0 {
		o.Forecast, o.ForecastKnown = q.hist.Forecast(at, w.FloorLead)
	}
	for _, in := range q.live {
		switch {
		case in.ready > t:
			o.Booting++
			if in.spot {
				o.SpotBooting++
			}
		case !in.busy(t):
			idle := t - max(in.ready, slices.Max(in.free))
			o.Idle = append(o.Idle, IdleInstance{IdleFor: time.Duration(idle) * time.Second,
				Uptime: time.Duration(t-in.started) * time.Second, Spot: in.spot})
		default:
			o.BusyGPUs += in.busyGPUs(t)
		}
	}
	return o
}

// retire removes n on-demand instances: for the work policy the longest
// idle first (GPU workers are protected from scale-in while they render),
// for the baseline rules the newest, as their group's default termination
// policy would. One still rendering is billed until it finishes; each
// returns to the warm pool while the pool is short.
func (q *queueSim) retire(n, t int) {
	if q.opt.Config.Policy != PolicyWork {
		q.retireNewest(n, t)
		return
	}
	q.retireFrom(n, t, false)
}

// retireFrom removes n instances of one group, the longest idle first.
func (q *queueSim) retireFrom(n, t int, spot bool) {
	slices.SortStableFunc(q.live, func(a, b *instance) int {
		return retireRank(a, t, spot) - retireRank(b, t, spot)
	})
	for range n {
		last := q.live[len(q.live)-1]
		if last.spot != spot {
			return
		}
		q.live = q.live[:len(q.live)-1]
		q.stop(last, t)
	}
}

func (q *queueSim) retireNewest(n, t int) {
	for range n {
		last := q.live[len(q.live)-1]
		q.live = q.live[:len(q.live)-1]
		q.stop(last, t)
	}
}

// stop takes an instance out of service at t: a busy one drains first;
// an on-demand one returns to the warm pool; the billing minimum applies.
func (q *queueSim) stop(in *instance, t int) {
	if in.ready <= t && in.busy(t) {
		q.draining = append(q.draining, in)
	} else {
		q.billMinimum(in, t)
	}
	if !in.spot {
		q.toPool(t)
	}
}

// billMinimum bills an instance that stops at t for the rest of its
// minimum, when it ran less.
func (q *queueSim) billMinimum(in *instance, t int) {
	short := int(q.opt.BillingMinimum.Seconds()) - (t - in.started)
	if short <= 0 {
		return
	}
	q.seconds += short
	q.minSecs += short
	if in.spot {
		q.spotSecs += short
	}
}

// retireRank orders instances for retirement, which takes from the end:
// the other group first (kept), then booting and busy ones, then idle
// ones by how long they have idled, the longest idle last (removed first).
func retireRank(in *instance, t int, spot bool) int {
	switch {
	case in.spot != spot:
		return math.MinInt32
	case in.ready > t || in.busy(t):
		return math.MinInt32 + 1
	}
	return t - max(in.ready, slices.Max(in.free))
}

func (q *queueSim) bill(t int) {
	q.draining = slices.DeleteFunc(q.draining, func(in *instance) bool {
		if in.busy(t) {
			return false
		}
		q.billMinimum(in, t)
		return true
	})
	warmed := len(q.warming)
	q.warming = slices.DeleteFunc(q.warming, func(ready int) bool { return ready <= t })
	q.warm += warmed - len(q.warming)
	n := len(q.live) + len(q.draining) + len(q.warming)
	q.seconds += n
	q.poolSecs += len(q.warming)
	for _, in := range q.live {
		switch {
		case in.ready > t:
			q.bootSecs++
		case !in.busy(t):
			q.idleSecs++
		}
		if in.spot {
			q.spotSecs++
		}
	}
	for _, in := range q.draining {
		if in.spot {
			q.spotSecs++
		}
	}
	q.stopped += q.warm
	q.res.PeakCapacity = max(q.res.PeakCapacity, len(q.live))
	if t%60 == 0 {
		q.res.CapacityByMinute = append(q.res.CapacityByMinute, len(q.live))
	}
}

func (q *queueSim) result(label string, t, end int) RunResult {
	r := q.res
	r.Label = label
	r.Served = len(q.paid.waits) + len(q.freeQ.waits)
	r.Unserved = len(q.paid.arrivals) - q.paid.head + len(q.freeQ.arrivals) - q.freeQ.head
	if q.static {
		r.Capacity = len(q.live)
	}
	r.InstanceHours = float64(q.seconds) / 3600
	r.GPUHours = r.InstanceHours * float64(q.opt.Spec.GPUs)
	r.SpotHours = float64(q.spotSecs) / 3600
	r.BootHours, r.IdleHours = float64(q.bootSecs+q.poolSecs)/3600, float64(q.idleSecs+q.minSecs)/3600
	w := q.opt.WarmPool
	r.WarmPoolCost = float64(q.stopped) / 3600 * w.VolumeGB * w.EBSMonthlyPerGB / hoursPerMonth
	price, spotPrice := q.opt.Spec.OnDemandHourly, q.opt.Spec.OnDemandHourly*(1-q.opt.SpotDiscount)
	r.CostOnDemand = r.InstanceHours*price + r.WarmPoolCost
	r.CostSpot = r.InstanceHours*spotPrice + r.WarmPoolCost
	r.CostAsRun = (r.InstanceHours-r.SpotHours)*price + r.SpotHours*spotPrice + r.WarmPoolCost
	r.DrainedAfter = time.Duration(max(t-end, 0)) * time.Second
	all := slices.Concat(q.paid.waits, q.freeQ.waits)
	r.WaitP50, r.WaitP95, r.WaitMax = waitStats(all)
	_, r.PaidP95, r.PaidMax = waitStats(q.paid.waits)
	_, r.FreeP95, r.FreeMax = waitStats(q.freeQ.waits)
	r.FreeServed = len(q.freeQ.waits)
	return r
}

// waitStats sorts waits and returns their p50, p95 and max.
func waitStats(waits []int) (p50, p95, maximum time.Duration) {
	slices.Sort(waits)
	return percentile(waits, 0.50), percentile(waits, 0.95), percentile(waits, 1)
}

// clone copies a history, so each run records into its own.
func (h *History) clone() *History {
	if h == nil {
		return nil
	}
	return &History{Cur: slices.Clone(h.Cur), Prev: slices.Clone(h.Prev)}
}
