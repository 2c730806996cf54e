package autoscale

import (
	"bytes"
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
	return SimOptions{Config: c, Spec: t4Spec, BootDelay: 4 * time.Minute, SpotDiscount: DefaultSpotDiscount}
}

func simulate(t *testing.T, tr Trace, opt SimOptions) Report {
	t.Helper()
	r, err := Simulate(tr, opt)
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
	_, err := Simulate(Trace{}, opt)
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

// The work policy with a warm pool must never be worse than the baseline
// rules on both GPU-hours and p95 wait at once, on any built-in trace and
// seed; on the diurnal day it must meet the wait targets of the autoscaling
// issue (p95 <= 30 s, max <= 90 s) within 1.35x the rendering floor.
func TestSimulatePolicyNeverWorseThanBaselineRules(t *testing.T) {
	policy := DefaultConfig()
	policy.Policy, policy.Work, policy.PollInterval = PolicyWork, DefaultWork(), 10*time.Second
	for _, name := range TraceNames() {
		for seed := uint64(1); seed <= 3; seed++ {
			tr, err := BuiltinTrace(name, DefaultStart(name, simDay), DefaultPeak(name, t4Spec), seed)
			if err != nil {
				t.Fatal(err)
			}
			opt := simOptions(policy)
			opt.WarmPool, opt.Baseline = DefaultWarmPool(), DefaultConfig()
			r := simulate(t, tr, opt)
			a, b := r.Autoscaled, *r.Baseline
			if a.Served != tr.Images() || b.Served != tr.Images() {
				t.Fatalf("%s seed %d: served %d and %d of %d", name, seed, a.Served, b.Served, tr.Images())
			}
			if strings.HasPrefix(r.Verdict(), "worse on both") {
				t.Errorf("%s seed %d: %s", name, seed, r.Verdict())
			}
			if name != TraceDiurnal {
				continue
			}
			if ratio := a.GPUHours / r.FloorGPUHours(); a.WaitP95 > 30*time.Second || a.WaitMax > 90*time.Second || ratio > 1.35 {
				t.Errorf("diurnal seed %d: p95 %s, max %s, %.2fx floor", seed, a.WaitP95, a.WaitMax, ratio)
			}
		}
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
