package autoscale

import (
	"strings"
	"testing"
	"time"
)

func workConfig() Config {
	c := DefaultConfig()
	c.Policy, c.PollInterval = PolicyWork, 10*time.Second
	return c
}

// Four images of 20 s wait the same as one image of 80 s (a batch of four
// versus one heavy render): the work policy sizes by GPU time, not count.
func TestRuleWorkScalesOnGPUTimeNotCount(t *testing.T) {
	c := workConfig()
	c.Work.Drain, c.Work.UpWait = time.Minute, 0
	o := Observation{At: noon, Capacity: 2, GPUs: 1, InstancesKnown: true, BacklogAge: 15 * time.Second}
	batch, heavy, light := o, o, o
	batch.Backlog, batch.BacklogWork = 4, 4*20*time.Second
	heavy.Backlog, heavy.BacklogWork = 1, 80*time.Second
	light.Backlog, light.BacklogWork = 4, 4*5*time.Second
	db, _ := Decide(c, State{}, batch)
	dh, _ := Decide(c, State{}, heavy)
	dl, _ := Decide(c, State{}, light)
	if db.Desired != 4 || dh.Desired != 4 || dl.Desired != 3 {
		t.Fatalf("80 s as 4 images -> %d, as 1 image -> %d, 20 s as 4 images -> %d: want 4, 4, 3", db.Desired, dh.Desired, dl.Desired)
	}
	if !strings.Contains(db.Reason, "1m20s of GPU time") {
		t.Fatalf("reason %q does not show the GPU time", db.Reason)
	}
	// Instances already booting count: no second order for the same work.
	batch.Booting = 2
	if d, _ := Decide(c, State{}, batch); d.Changed() || !strings.Contains(d.Reason, "enough on the way") {
		t.Fatalf("with 2 booting: %+v", d)
	}
	// A task younger than UpAge is noise the fleet absorbs.
	batch.Booting, batch.BacklogAge = 0, 5*time.Second
	if d, _ := Decide(c, State{}, batch); d.Changed() {
		t.Fatalf("backlog 5 s old scaled: %+v", d)
	}
}

// A backlog the ready GPUs clear within UpWait adds no host, until its
// oldest render has waited UpAge+UpWait; hosts still booting do not count
// as ready.
func TestRuleWorkWaitsForBacklogWorthAHost(t *testing.T) {
	c := workConfig()
	c.Work.Drain, c.Work.UpWait = time.Minute, 20*time.Second
	o := Observation{At: noon, Capacity: 2, GPUs: 1, InstancesKnown: true, BacklogAge: 15 * time.Second,
		Backlog: 2, BacklogWork: 2 * 15 * time.Second}
	d, _ := Decide(c, State{}, o)
	if d.Changed() || !strings.Contains(d.Reason, "clears in 15s on the ready GPUs") {
		t.Fatalf("30 s of work on 2 ready GPUs: %+v", d)
	}
	o.Backlog, o.BacklogWork = 3, 3*15*time.Second // 22.5 s each
	if d, _ := Decide(c, State{}, o); d.Desired != 3 {
		t.Fatalf("45 s of work on 2 ready GPUs: desired %d (%s), want 3", d.Desired, d.Reason)
	}
	o.Backlog, o.BacklogWork, o.Capacity, o.Booting = 2, 2*15*time.Second, 3, 2 // 1 ready
	if d, _ := Decide(c, State{}, o); d.Changed() || !strings.Contains(d.Reason, "enough on the way") {
		t.Fatalf("30 s of work on 1 ready GPU, 2 booting: %+v", d)
	}
	// Ready GPUs busy with long renders: once the oldest has waited UpWait
	// past UpAge, hosts come whatever the estimate says.
	o.Booting, o.Capacity, o.BacklogAge = 0, 2, c.Work.UpAge+c.Work.UpWait
	if d, _ := Decide(c, State{}, o); d.Desired != 3 {
		t.Fatalf("30 s of work waiting %s on 2 ready GPUs: desired %d (%s), want 3", o.BacklogAge, d.Desired, d.Reason)
	}
	o.BacklogAge = time.Minute
	o.Booting, o.Capacity = 0, 0 // none ready: the first render wakes the tier
	if d, _ := Decide(c, State{}, o); d.Desired < 1 {
		t.Fatalf("work waiting on no hosts: %+v", d)
	}
}

func TestRuleWorkRemovesIdleInstancesAtTheEndOfTheirHour(t *testing.T) {
	c := workConfig()
	c.Min = 1
	c.Work.IdleFor = 90 * time.Second
	idle := []IdleInstance{
		{IdleFor: 5 * time.Minute, Uptime: 20 * time.Minute},
		{IdleFor: 2 * time.Minute, Uptime: 58 * time.Minute},
		{IdleFor: 30 * time.Second, Uptime: 59 * time.Minute},
	}
	o := Observation{At: noon, Capacity: 4, GPUs: 1, InstancesKnown: true, Idle: idle}
	if d, _ := Decide(c, State{}, o); d.Desired != 2 {
		t.Fatalf("per-second billing, two idle past %s: desired %d (%s), want 2", c.Work.IdleFor, d.Desired, d.Reason)
	}
	c.Work.BillingPeriod, c.Work.BillingMargin = time.Hour, 5*time.Minute
	d, _ := Decide(c, State{}, o)
	if d.Desired != 3 || !strings.Contains(d.Reason, "billed 1h0m0s") {
		t.Fatalf("hourly billing: desired %d (%s), want only the one at minute 58 removed", d.Desired, d.Reason)
	}
	// Never below the minimum, and never while work waits.
	o.Capacity = 1
	if d, _ := Decide(c, State{}, o); d.Changed() {
		t.Fatalf("at minimum: %+v", d)
	}
	o.Capacity, o.Backlog, o.BacklogAge = 4, 1, time.Second
	if d, _ := Decide(c, State{}, o); d.Changed() {
		t.Fatalf("work waiting: %+v", d)
	}
}

// A driver that reports no instances (EC2 today) leaves the empty
// backlog's spell to stand for idling: one instance per IdleFor.
func TestRuleWorkWithoutInstanceReports(t *testing.T) {
	c := workConfig()
	s := State{}
	var d Decision
	for at := time.Duration(0); at <= c.Work.IdleFor; at += c.PollInterval {
		d, s = Decide(c, s, Observation{At: noon.Add(at), Capacity: 3})
	}
	if d.Desired != 2 {
		t.Fatalf("after %s of empty backlog: %+v", c.Work.IdleFor, d)
	}
}

func TestRuleWorkConfigValidated(t *testing.T) {
	c := workConfig()
	c.Work = WorkPolicy{Drain: 0, IdleFor: -time.Second, BillingPeriod: time.Hour}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "drain") || !strings.Contains(err.Error(), "billing period") {
		t.Fatalf("err = %v", err)
	}
	c = workConfig()
	c.Policy = "predict"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `policy "predict"`) {
		t.Fatalf("err = %v", err)
	}
}

// Free renders wait behind paid ones and may wait FreeUpAge before hosts
// are added for them, never longer: then their GPU time counts, with the
// paid work they wait behind.
func TestRuleWorkFreeWaitsLongerNeverForever(t *testing.T) {
	c := workConfig()
	c.Work.Drain = time.Minute
	o := Observation{At: noon, Capacity: 2, GPUs: 1, InstancesKnown: true, ClassesKnown: true,
		Backlog: 3, BacklogAge: time.Minute, BacklogWork: 60 * time.Second,
		Free: Waiting{Count: 3, Age: time.Minute, Work: 60 * time.Second}}
	if d, _ := Decide(c, State{}, o); d.Changed() {
		t.Fatalf("Free renders waiting %s of %s: %+v", o.Free.Age, c.Work.FreeUpAge, d)
	}
	o.Free.Age, o.BacklogAge = c.Work.FreeUpAge, c.Work.FreeUpAge
	o.Backlog, o.BacklogWork = 6, 120*time.Second
	o.Paid = Waiting{Count: 3, Age: 5 * time.Second, Work: 60 * time.Second}
	d, _ := Decide(c, State{}, o)
	if d.Desired != 4 || !strings.Contains(d.Reason, "oldest Free render waited 1m30s") {
		t.Fatalf("Free render at %s behind 1m of paid work: desired %d (%s), want +2 for 2m of GPU time", c.Work.FreeUpAge, d.Desired, d.Reason)
	}
	// A paid render is urgent after UpAge, for its own work only.
	o.Free.Age, o.Paid.Age = 30*time.Second, c.Work.UpAge
	if d, _ := Decide(c, State{}, o); d.Desired != 3 || !strings.Contains(d.Reason, "oldest paid render") {
		t.Fatalf("paid render at %s: desired %d (%s), want +1", c.Work.UpAge, d.Desired, d.Reason)
	}
}

// The floor holds FloorShare of last week's busy GPUs in hosts: it raises
// capacity before the load arrives and keeps idle hosts from leaving.
func TestRuleWorkFloorFromLastWeek(t *testing.T) {
	c := workConfig()
	o := Observation{At: noon, Capacity: 1, GPUs: 1, InstancesKnown: true, Forecast: 4.2, ForecastKnown: true}
	d, _ := Decide(c, State{}, o)
	if d.Desired != 4 || d.Floor != 4 || !strings.Contains(d.Reason, "floor 4 (last week 4.2 GPUs busy)") {
		t.Fatalf("forecast 4.2 GPUs at share %g: desired %d, floor %d (%s); want 4", c.Work.FloorShare, d.Desired, d.Floor, d.Reason)
	}
	o.Capacity = 5
	o.Idle = []IdleInstance{{IdleFor: time.Hour, Uptime: time.Hour}, {IdleFor: time.Hour, Uptime: time.Hour}}
	if d, _ := Decide(c, State{}, o); d.Desired != 4 {
		t.Fatalf("two idle hosts above a floor of 4 out of 5: desired %d (%s), want 4", d.Desired, d.Reason)
	}
	// Within the bounds: a night window's max caps the floor.
	o.At = time.Date(2025, 1, 6, 3, 0, 0, 0, seoul)
	if d, _ := Decide(c, State{}, o); d.Desired != 2 {
		t.Fatalf("night window: desired %d (%s), want its max 2", d.Desired, d.Reason)
	}
	// No week of history: no floor, the reactive rules alone.
	o.At, o.ForecastKnown, o.Capacity, o.Idle = noon, false, 1, nil
	if d, _ := Decide(c, State{}, o); d.Changed() || !strings.Contains(d.Reason, "no forecast yet") {
		t.Fatalf("without history: %+v", d)
	}
}

// With Spot, the floor above the minimum goes to the spot group; while EC2
// refuses spot capacity the on-demand group covers it, and its hosts stay
// until the spot hosts that replace them take work.
func TestRuleWorkSpotFloorWithOnDemandFallback(t *testing.T) {
	c := workConfig()
	c.Work.Spot = true
	o := Observation{At: noon, Capacity: 1, GPUs: 1, InstancesKnown: true, Forecast: 6, ForecastKnown: true}
	d, _ := Decide(c, State{}, o)
	if d.Desired != 1 || d.SpotDesired != 4 || !strings.Contains(d.Reason, "spot +4") {
		t.Fatalf("floor 5 with min 1: on-demand %d, spot %d (%s); want 1 and 4", d.Desired, d.SpotDesired, d.Reason)
	}
	o.Spot, o.SpotShort = 4, 3
	d, _ = Decide(c, State{}, o)
	if d.Desired != 4 || d.SpotDesired != 4 || !strings.Contains(d.Reason, "spot short 3") {
		t.Fatalf("3 spot refused: on-demand %d, spot %d (%s); want on-demand 4 covering, spot still asked 4", d.Desired, d.SpotDesired, d.Reason)
	}
	// Spot capacity returns: the spot hosts boot cold, the on-demand
	// hosts that covered stay, idle or not, until they are ready.
	o.Capacity, o.SpotShort, o.SpotBooting, o.Booting = 4, 0, 3, 3
	o.Idle = []IdleInstance{{IdleFor: time.Hour, Uptime: time.Hour}, {IdleFor: time.Hour, Uptime: time.Hour}, {IdleFor: time.Hour, Uptime: time.Hour}}
	if d, _ := Decide(c, State{}, o); d.Changed() {
		t.Fatalf("spot hosts booting: %+v", d)
	}
	o.SpotBooting, o.Booting = 0, 0
	if d, _ := Decide(c, State{}, o); d.Desired != 1 {
		t.Fatalf("spot hosts ready: on-demand %d (%s), want back to 1", d.Desired, d.Reason)
	}
	// The spot group only takes the room the on-demand group leaves
	// under the maximum.
	o = Observation{At: noon, Capacity: 8, GPUs: 1, InstancesKnown: true, Forecast: 6, ForecastKnown: true}
	if d, _ := Decide(c, State{}, o); d.SpotDesired != 2 {
		t.Fatalf("8 on-demand of max 10: spot %d, want 2", d.SpotDesired)
	}
}

// EC2 bills a minute per start: an instance idle before it has run that
// long stays, since removing it would save nothing.
func TestRuleWorkKeepsAnInstanceItsBillingMinimum(t *testing.T) {
	c := workConfig()
	o := Observation{At: noon, Capacity: 2, GPUs: 1, InstancesKnown: true,
		Idle: []IdleInstance{{IdleFor: 30 * time.Second, Uptime: 50 * time.Second}}}
	if d, _ := Decide(c, State{}, o); d.Changed() {
		t.Fatalf("idle host up %s of a %s minimum removed: %+v", o.Idle[0].Uptime, c.Work.BillingMinimum, d)
	}
	o.Idle[0].Uptime = time.Minute
	if d, _ := Decide(c, State{}, o); d.Desired != 1 {
		t.Fatalf("idle host up a minute: %+v", d)
	}
}
