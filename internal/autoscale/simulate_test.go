package autoscale

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	simDay = time.Date(2025, 1, 6, 0, 0, 0, 0, seoul)
	t4Spec = TierSpecs["t4"]
)

func simOptions(c Config) SimOptions {
	return SimOptions{Config: c, Spec: t4Spec, BootDelay: 4 * time.Minute, SpotDiscount: DefaultSpotDiscount,
		BillingMinimum: DefaultBillingMinimum}
}

func simulate(t *testing.T, tr Trace, opt SimOptions) Report {
	t.Helper()
	r, err := Simulate(t.Context(), tr, opt)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSimulateDiurnalSavesAndBoundsWait(t *testing.T) {
	tr, err := BuiltinTrace(TraceDiurnal, simDay, DefaultPeak(TraceDiurnal, t4Spec), 1)
	if err != nil {
		t.Fatal(err)
	}
	r := simulate(t, tr, simOptions(DefaultConfig()))
	a, s := r.Autoscaled, r.Static
	if a.Served != tr.Images() || a.Unserved != 0 || s.Served != tr.Images() {
		t.Fatalf("served %d (unserved %d) and %d of %d images", a.Served, a.Unserved, s.Served, tr.Images())
	}
	if a.GPUHours >= 0.8*s.GPUHours {
		t.Fatalf("autoscaled %.1f GPU-hours vs static %.1f: want at least 20%% fewer", a.GPUHours, s.GPUHours)
	}
	if a.WaitP95 > 5*time.Minute || a.WaitP50 > time.Minute {
		t.Fatalf("autoscaled waits p50 %s p95 %s: want p50 <= 1m, p95 <= 5m", a.WaitP50, a.WaitP95)
	}
	if usd, frac := r.Savings(true); usd <= 0 || frac < 0.2 {
		t.Fatalf("spot savings %.2f (%.0f%%)", usd, frac*100)
	}
	// 02:00-07:00 KST: the night window holds the fleet at 2 or fewer.
	for m := 2 * 60; m < 7*60; m++ {
		if n := a.CapacityByMinute[m]; n > 2 {
			t.Fatalf("%d instances at minute %d, inside the night window", n, m)
		}
	}
}

func TestSimulateBurstUsesTheBigStep(t *testing.T) {
	tr, err := BuiltinTrace(TraceBurst, DefaultStart(TraceBurst, simDay), DefaultPeak(TraceBurst, t4Spec), 1)
	if err != nil {
		t.Fatal(err)
	}
	r := simulate(t, tr, simOptions(DefaultConfig()))
	a := r.Autoscaled
	// From 1 instance, +1 steps alone could not reach 7 within 15 minutes
	// of the first surge; +3 steps every 3 minutes do.
	first := a.CapacityByMinute[60:75]
	if peak := maxOf(first); peak < 7 {
		t.Fatalf("capacity during the first surge %v: want +3 steps", first)
	}
	if a.PeakCapacity > DefaultConfig().Max || a.GPUHours >= r.Static.GPUHours {
		t.Fatalf("peak %d, GPU-hours %.1f vs static %.1f", a.PeakCapacity, a.GPUHours, r.Static.GPUHours)
	}
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func TestSimulateQueueModelByHand(t *testing.T) {
	c := DefaultConfig()
	c.Min, c.Max, c.Windows = 1, 1, nil
	// Six images in the first minute arrive every 10 s; one T4 takes 20 s
	// each: they start at 0, 20, ..., 100 s, and the last ends at 120 s.
	r := simulate(t, Trace{Name: "hand", Start: simDay, Arrivals: []int{6}}, simOptions(c))
	a := r.Autoscaled
	if a.WaitP50 != 20*time.Second || a.WaitMax != 50*time.Second || a.Served != 6 {
		t.Fatalf("waits p50 %s max %s served %d; want 20s, 50s, 6", a.WaitP50, a.WaitMax, a.Served)
	}
	if want := 120.0 / 3600; a.InstanceHours != want || a.CostOnDemand != want*0.526 {
		t.Fatalf("instance-hours %g cost %g, want %g and %g", a.InstanceHours, a.CostOnDemand, want, want*0.526)
	}
	if r.Static.Capacity != 2 {
		t.Fatalf("static capacity %d, want 2 for 6 images a minute at 3 per instance", r.Static.Capacity)
	}
}

func TestSimulateIsDeterministic(t *testing.T) {
	tr := Diurnal(simDay, 1, 18, 7)
	a, b := simulate(t, tr, simOptions(DefaultConfig())), simulate(t, Diurnal(simDay, 1, 18, 7), simOptions(DefaultConfig()))
	var wa, wb bytes.Buffer
	if err := a.Write(&wa); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(&wb); err != nil {
		t.Fatal(err)
	}
	if wa.String() != wb.String() {
		t.Fatalf("two runs differ:\n%s\n%s", wa.String(), wb.String())
	}
	for _, want := range []string{"GPU-hours", "wait p95", "cost spot", "static at peak", "savings vs static at peak"} {
		if !strings.Contains(wa.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, wa.String())
		}
	}
}

func TestSimulateRejectsBadOptions(t *testing.T) {
	opt := simOptions(DefaultConfig())
	opt.SpotDiscount, opt.Spec.GPUs = 1.5, 0
	_, err := Simulate(t.Context(), Trace{}, opt)
	for _, want := range []string{"spot discount", "GPUs >= 1", "trace is empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v does not mention %q", err, want)
		}
	}
}

func TestReadTraceCSV(t *testing.T) {
	in := "minute,arrivals\n# quiet start\n0,3\n1, 4\n4,10\n"
	tr, err := ReadTraceCSV(strings.NewReader(in), "file", simDay)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Arrivals; len(got) != 5 || got[0] != 3 || got[1] != 4 || got[2] != 0 || got[4] != 10 {
		t.Fatalf("arrivals %v, want [3 4 0 0 10]", got)
	}
	if tr.Peak() != 10 || tr.Images() != 17 || PeakRate(tr, 2) != 5 {
		t.Fatalf("peak %d images %d rate %g", tr.Peak(), tr.Images(), PeakRate(tr, 2))
	}
	for _, bad := range []string{"", "0,1\n0,2\n", "0,-1\n", "0,x\n", "0,1,2\n", "99999999,1\n"} {
		if _, err := ReadTraceCSV(strings.NewReader(bad), "bad", simDay); err == nil {
			t.Errorf("trace %q: no error", bad)
		}
	}
}

func TestBuiltinTraces(t *testing.T) {
	d := Diurnal(simDay, 1, 20, 1)
	night, day := sum(d.Arrivals[3*60:5*60]), sum(d.Arrivals[15*60:17*60])
	if len(d.Arrivals) != 24*60 || night*5 > day {
		t.Fatalf("diurnal: %d minutes, 03-05h %d images, 15-17h %d", len(d.Arrivals), night, day)
	}
	b := Burst(simDay, 2, 40, 1)
	if len(b.Arrivals) != 12*60 || sum(b.Arrivals[60:70]) < 300 || sum(b.Arrivals[70:80]) > 60 {
		t.Fatalf("burst: %d minutes, surge %d, after %d", len(b.Arrivals), sum(b.Arrivals[60:70]), sum(b.Arrivals[70:80]))
	}
	if _, err := BuiltinTrace("weekly", simDay, 10, 1); err == nil {
		t.Fatal("unknown trace accepted")
	}
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

func TestReadTraceCSVErrorLine(t *testing.T) {
	_, err := ReadTraceCSV(strings.NewReader("# comment\nminute,arrivals\n0,1\n\n1,x\n"), "bad", simDay)
	if err == nil || !strings.Contains(err.Error(), "line 5: arrivals \"x\"") {
		t.Fatalf("error %v, want one naming line 5", err)
	}
}

func TestBuiltinTracesAreSeeded(t *testing.T) {
	for _, name := range TraceNames() {
		start := DefaultStart(name, simDay)
		a, errA := BuiltinTrace(name, start, DefaultPeak(name, t4Spec), 7)
		b, errB := BuiltinTrace(name, start, DefaultPeak(name, t4Spec), 7)
		c, errC := BuiltinTrace(name, start, DefaultPeak(name, t4Spec), 8)
		if errA != nil || errB != nil || errC != nil {
			t.Fatal(errA, errB, errC)
		}
		if a.Name != name || a.Images() == 0 || !slices.Equal(a.Arrivals, b.Arrivals) || slices.Equal(a.Arrivals, c.Arrivals) {
			t.Fatalf("%s: %d images; the same seed must give the same trace, another seed another", name, a.Images())
		}
	}
	if _, err := BuiltinTrace("weekly", simDay, 1, 1); err == nil || !strings.Contains(err.Error(), TraceLaunchDay) {
		t.Fatalf("unknown trace: %v", err)
	}
}

func TestLaunchDayClimbsAtTen(t *testing.T) {
	tr := LaunchDay(simDay, DefaultPeak(TraceLaunchDay, t4Spec), 1)
	before, after := sum(tr.Arrivals[9*60:10*60]), sum(tr.Arrivals[10*60+15:11*60+15])
	if after < 3*before {
		t.Fatalf("hour before the launch %d images, hour after %d: want the launch to triple it", before, after)
	}
}

// policyRun simulates the default work policy with a warm pool on a
// built-in trace, with the History its autoscaler recorded the week
// before, beside the baseline rules.
func policyRun(t *testing.T, name string, seed uint64, freeShare float64, spot bool) (Trace, Report) {
	t.Helper()
	start, peak := DefaultStart(name, simDay), DefaultPeak(name, t4Spec)
	tr, err := BuiltinTrace(name, start, peak, seed)
	if err != nil {
		t.Fatal(err)
	}
	policy := DefaultConfig()
	policy.Policy, policy.Work, policy.PollInterval = PolicyWork, DefaultWork(), 10*time.Second
	policy.Work.Spot = spot
	opt := simOptions(policy)
	opt.WarmPool, opt.Baseline, opt.FreeShare, opt.Seed, opt.SpotRefused = DefaultWarmPool(), DefaultConfig(), freeShare, seed, 0.1
	prev, err := PreviousWeek(name, start, peak, seed)
	if err != nil {
		t.Fatal(err)
	}
	if opt.History, err = RecordHistory(t.Context(), prev, opt); err != nil {
		t.Fatal(err)
	}
	return tr, simulate(t, tr, opt)
}

// The work policy with a warm pool and last week's floor must never be
// worse than the baseline rules on both GPU-hours and p95 wait at once, on
// any built-in trace and seed, with half the renders from Free users
// (behind paid ones) or none; a Free render must never wait without end.
// On the diurnal day it must meet the autoscaling issue's targets for paid
// renders (p95 <= 30 s, max <= 90 s) within 1.15x the rendering floor,
// Free renders waiting at most 3 minutes; with every render paid, the
// targets on wait hold within 1.20x (docs/autoscaling.md, "Results").
func TestSimulatePolicyNeverWorseThanBaselineRules(t *testing.T) {
	for _, name := range TraceNames() {
		for seed := uint64(1); seed <= 3; seed++ {
			for _, free := range []float64{0.5, 0} {
				tr, r := policyRun(t, name, seed, free, false)
				a, b := r.Autoscaled, *r.Baseline
				if a.Served != tr.Images() || b.Served != tr.Images() {
					t.Fatalf("%s seed %d: served %d and %d of %d", name, seed, a.Served, b.Served, tr.Images())
				}
				if strings.HasPrefix(r.Verdict(), "worse on both") {
					t.Errorf("%s seed %d Free %g: %s", name, seed, free, r.Verdict())
				}
				if a.FreeMax > 6*time.Minute {
					t.Errorf("%s seed %d: a Free render waited %s", name, seed, a.FreeMax)
				}
				if name != TraceDiurnal {
					continue
				}
				ratio, bound, freeMax := a.GPUHours/r.FloorGPUHours(), 1.15, 3*time.Minute
				if free == 0 {
					bound = 1.20
				}
				if a.PaidP95 > 30*time.Second || a.PaidMax > 90*time.Second || ratio > bound || a.FreeMax > freeMax {
					t.Errorf("diurnal seed %d Free %g: paid p95 %s, max %s, Free max %s, %.3fx floor (want <= %.2fx)",
						seed, free, a.PaidP95, a.PaidMax, a.FreeMax, ratio, bound)
				}
			}
		}
	}
}

// Spot hosts carry the floor at the spot price; while EC2 refuses spot
// capacity the on-demand group covers, and waits stay as without spot.
func TestSimulateSpotFallsBackToOnDemand(t *testing.T) {
	_, onDemand := policyRun(t, TraceDiurnal, 1, 0.5, false)
	tr, spot := policyRun(t, TraceDiurnal, 1, 0.5, true)
	opt := spot.Options
	opt.SpotRefused = 0.3 // of the half hours
	a, s := onDemand.Autoscaled, simulate(t, tr, opt).Autoscaled
	if s.SpotHours < s.InstanceHours/2 || s.CostAsRun > 0.75*a.CostAsRun || s.SpotRefusals == 0 {
		t.Fatalf("spot: %.1f of %.1f hours on spot, $%.2f vs $%.2f on-demand, %d refusals",
			s.SpotHours, s.InstanceHours, s.CostAsRun, a.CostAsRun, s.SpotRefusals)
	}
	if s.PaidP95 > 30*time.Second || s.PaidMax > 90*time.Second || s.GPUHours > 1.02*a.GPUHours {
		t.Fatalf("spot: paid p95 %s max %s, %.1f GPU-hours vs %.1f", s.PaidP95, s.PaidMax, s.GPUHours, a.GPUHours)
	}
	// Spot refused all day: the on-demand group carries everything.
	opt.SpotRefused = 1
	r := simulate(t, tr, opt).Autoscaled
	if r.SpotHours != 0 || r.SpotRefusals == 0 || r.PaidP95 > 30*time.Second || r.PaidMax > 90*time.Second {
		t.Fatalf("spot always refused: %.1f spot hours, %d refusals, paid p95 %s max %s", r.SpotHours, r.SpotRefusals, r.PaidP95, r.PaidMax)
	}
}

// The floor from last week buys shorter waits and fewer boots for about
// the same GPU-hours (its idle hosts cost what the boots it saves did);
// without a history the policy is reactive alone.
func TestSimulateFloorFromLastWeek(t *testing.T) {
	_, with := policyRun(t, TraceDiurnal, 1, 0, false)
	opt := with.Options
	opt.History = nil
	without := simulate(t, with.Trace, opt)
	w, o := with.Autoscaled, without.Autoscaled
	if w.ScaleUps >= o.ScaleUps*3/4 || w.WaitP95 >= o.WaitP95 || w.GPUHours > 1.01*o.GPUHours {
		t.Fatalf("floor: %d scale-ups, p95 %s, %.1f GPU-hours; without history: %d, %s, %.1f",
			w.ScaleUps, w.WaitP95, w.GPUHours, o.ScaleUps, o.WaitP95, o.GPUHours)
	}
}

// EC2 bills a minute per start. One render on a tier at zero: the host
// starts, renders 20 s and leaves once 10 s idle; it pays 60 s.
func TestSimulateBillingMinimum(t *testing.T) {
	c := DefaultConfig()
	c.Policy, c.Min, c.Windows, c.PollInterval = PolicyWork, 0, nil, 10*time.Second
	c.Work = DefaultWork()
	c.Work.FloorShare, c.Work.BillingMinimum = 0, 0 // the policy removes it as soon as it idles
	opt := simOptions(c)
	opt.BillingMinimum = 0
	tr := Trace{Name: "one", Start: simDay, Arrivals: []int{1, 0}}
	if got := simulate(t, tr, opt).Autoscaled.InstanceHours * 3600; got != 40 {
		t.Fatalf("no minimum: %g instance-seconds, want 40 (up at 0, renders from 1 s to 21 s, removed at the 40 s poll)", got)
	}
	opt.BillingMinimum = DefaultBillingMinimum
	if got := simulate(t, tr, opt).Autoscaled.InstanceHours * 3600; got != 60 {
		t.Fatalf("60 s minimum: %g instance-seconds, want 60", got)
	}
}

// Free renders start after paid ones: with one host and both waiting, the
// paid ones go first whatever their arrival order.
func TestSimulatePaidBeforeFree(t *testing.T) {
	c := DefaultConfig()
	c.Min, c.Max, c.Windows = 1, 1, nil
	opt := simOptions(c)
	opt.FreeShare = 0.5
	r := simulate(t, Trace{Name: "hand", Start: simDay, Arrivals: []int{6}}, opt).Autoscaled
	// Renders 1 and 3 are paid (the golden-ratio draw), 0, 2, 4 and 5
	// Free; they arrive every 10 s and take 20 s each on the one host:
	// both paid ones wait 10 s, the Free ones behind them up to 50 s.
	if r.FreeServed != 4 || r.PaidMax != 10*time.Second || r.FreeMax != 50*time.Second {
		t.Fatalf("paid p95 %s max %s, Free %d served, max %s", r.PaidP95, r.PaidMax, r.FreeServed, r.FreeMax)
	}
}

// Warm starts are priced by their stopped volumes, and a pool that takes
// every scale-up boots none cold.
func TestSimulateWarmPoolPricesStoppedVolumes(t *testing.T) {
	tr, err := BuiltinTrace(TraceDiurnal, simDay, DefaultPeak(TraceDiurnal, t4Spec), 1)
	if err != nil {
		t.Fatal(err)
	}
	policy := DefaultConfig()
	policy.Policy, policy.PollInterval = PolicyWork, 10*time.Second
	opt := simOptions(policy)
	opt.WarmPool = DefaultWarmPool()
	a := simulate(t, tr, opt).Autoscaled
	// At most ten instances stopped for a day: 10 x 100 GB x $0.08 / 730 h x 24 h.
	if a.WarmStarts == 0 || a.WarmPoolCost <= 0 || a.WarmPoolCost > 10*100*0.08/730*24 {
		t.Fatalf("warm starts %d, volumes $%.2f", a.WarmStarts, a.WarmPoolCost)
	}
	opt.WarmPool = WarmPool{}
	cold := simulate(t, tr, opt).Autoscaled
	if cold.WarmStarts != 0 || cold.WarmPoolCost != 0 || cold.WaitP95 <= a.WaitP95 {
		t.Fatalf("cold: warm starts %d, volumes $%.2f, p95 %s vs warm %s", cold.WarmStarts, cold.WarmPoolCost, cold.WaitP95, a.WaitP95)
	}
}

// A simulation stops, with the context's error, soon after its context is
// done (Ctrl-C or SIGTERM in the command): a month of overload would
// otherwise run on for seconds, and a bigger trace for minutes.
func TestSimulateStopsWhenContextIsDone(t *testing.T) {
	month := Trace{Name: "month", Start: simDay, Arrivals: make([]int, 31*24*60)}
	for i := range month.Arrivals {
		month.Arrivals[i] = 200
	}
	opt := simOptions(DefaultConfig())
	opt.Baseline = DefaultConfig()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := Simulate(ctx, month, opt)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "stopped at minute") {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("stopped %s after the context was done", took)
	}
	done, stop := context.WithCancel(t.Context())
	stop()
	if _, err := RecordHistory(done, month, opt); !errors.Is(err, context.Canceled) {
		t.Fatalf("RecordHistory: err = %v, want context.Canceled", err)
	}
}

// A trace over MaxTraceImages is refused before anything runs, from a
// file at the row that crosses it, naming the limit.
func TestTraceImageLimit(t *testing.T) {
	for in, line := range map[string]string{"0,100000000\n": "line 1", "0,6000000\n1,4000000\n2,1\n": "line 3"} {
		_, err := ReadTraceCSV(strings.NewReader(in), "big", simDay)
		if err == nil || !strings.Contains(err.Error(), line) || !strings.Contains(err.Error(), "more than 10000000 images") {
			t.Errorf("%q: err = %v, want the limit named at %s", in, err, line)
		}
	}
	if tr, err := ReadTraceCSV(strings.NewReader("0,6000000\n1,4000000\n"), "at the limit", simDay); err != nil || tr.Images() != MaxTraceImages {
		t.Fatalf("a trace of exactly MaxTraceImages: %d images, %v", tr.Images(), err)
	}
	big := Trace{Name: "big", Start: simDay, Arrivals: []int{MaxTraceImages, 1}}
	if _, err := Simulate(t.Context(), big, simOptions(DefaultConfig())); err == nil || !strings.Contains(err.Error(), "at most 10000000") {
		t.Fatalf("err = %v, want the limit", err)
	}
}

// The queue counts what waits by binary search over ascending arrivals:
// the same counts and ages as a scan.
func TestFIFOWaiting(t *testing.T) {
	f := fifo{arrivals: []int{0, 0, 5, 9, 9, 20}, head: 1}
	for _, c := range []struct{ t, n, age int }{{0, 1, 0}, {4, 1, 4}, {5, 2, 5}, {9, 4, 9}, {19, 4, 19}, {20, 5, 20}, {99, 5, 99}} {
		if n, age := f.waiting(c.t); n != c.n || age != c.age {
			t.Errorf("waiting(%d) = %d, %d; want %d, %d", c.t, n, age, c.n, c.age)
		}
	}
	f.head = len(f.arrivals)
	if n, age := f.waiting(99); n != 0 || age != 0 {
		t.Errorf("empty queue: %d, %d", n, age)
	}
}

// Poisson draws keep their mean at any rate: one product of uniforms
// underflows past a mean of about 745, which capped large traces.
func TestPoissonLargeMeans(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, lambda := range []float64{3, 400, 1200, 5000} {
		const n = 400
		sum := 0
		for range n {
			sum += poisson(rng, lambda)
		}
		mean := float64(sum) / n
		// The mean of n draws has a standard deviation of sqrt(lambda/n);
		// five of them is far outside chance.
		if tol := 5 * math.Sqrt(lambda/n); math.Abs(mean-lambda) > tol {
			t.Errorf("mean of %d draws at %.0f: %.1f, want within %.1f", n, lambda, mean, tol)
		}
	}
}
