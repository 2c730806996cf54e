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
	c.Work.Drain = time.Minute
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

func TestRuleWorkRemovesIdleInstancesAtTheEndOfTheirHour(t *testing.T) {
	c := workConfig()
	c.Min = 1
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
