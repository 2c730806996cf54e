// Package autoscale sizes each GPU tier to its task-queue backlog: pure rules
// (Decide), a long-running Temporal workflow per tier that applies them, the
// drivers that change capacity (EC2 Auto Scaling, a local worker pool), and a
// simulator that replays load traces through the same rules.
package autoscale

import (
	"fmt"
	"time"
)

// Observation is one reading of a tier: its backlog and its capacity.
type Observation struct {
	At         time.Time
	Backlog    int64         // tasks waiting for a worker
	BacklogAge time.Duration // how long the oldest of them has waited
	Capacity   int           // instances the driver has now (desired, booting ones included)
	// BacklogWork is the GPU time the waiting tasks need: the sum of each
	// one's expected render time, so four SDXL images weigh four times one.
	BacklogWork time.Duration
	// GPUs per instance of the tier (0 reads as 1).
	GPUs int
	// InstancesKnown says the driver reported Booting and Idle; without
	// them PolicyWork scales in on the backlog alone.
	InstancesKnown bool
	// Booting counts instances asked for that do not take work yet.
	Booting int
	// Idle lists the ready instances with no render running.
	Idle []IdleInstance
	// BusyGPUs counts the GPUs rendering now, when InstancesKnown: what
	// the autoscaler records in its History, poll by poll.
	BusyGPUs int

	// ClassesKnown says Paid and Free split the backlog by priority key:
	// Free renders carry a lower priority (workflows.PriorityFree) and
	// start only once no paid render waits, so PolicyWork lets them wait
	// up to FreeUpAge before it adds hosts for them.
	ClassesKnown bool
	Paid, Free   Waiting

	// Forecast is the most GPUs the tier kept busy a week ago over the
	// next FloorLead (History.Forecast); ForecastKnown is false without
	// a week of history. The caller of Decide sets both.
	Forecast      float64
	ForecastKnown bool

	// Spot is the desired capacity of the tier's spot group, on top of
	// Capacity (its on-demand group), SpotShort how many of those the
	// group could not launch because EC2 refused spot capacity, and
	// SpotBooting how many of those launched do not take work yet.
	Spot, SpotShort, SpotBooting int
}

// Waiting is one class of the backlog: how many renders, how long the
// oldest has waited, and the GPU time they need.
type Waiting struct {
	Count int64
	Age   time.Duration
	Work  time.Duration
}

// paid is the backlog PolicyWork serves first: the paid class, or the
// whole backlog when the observer did not split it.
func (o Observation) paid() Waiting {
	if o.ClassesKnown {
		return o.Paid
	}
	return Waiting{Count: o.Backlog, Age: o.BacklogAge, Work: o.BacklogWork}
}

func (o Observation) free() Waiting {
	if o.ClassesKnown {
		return o.Free
	}
	return Waiting{}
}

// IdleInstance is a ready instance that renders nothing.
type IdleInstance struct {
	IdleFor time.Duration // since its last render ended, or since it became ready
	Uptime  time.Duration // since it was started: where it is in its billed hour
	Spot    bool          // in the spot group, which the forecast sizes
}

// State is what the rules remember between observations. The workflow
// carries it through continue-as-new, so cooldowns survive a new run.
type State struct {
	LastScaleUp   time.Time
	LastScaleDown time.Time
	// LowSince is when the backlog fell under ScaleIn.Below and has stayed
	// there since; zero while it is not low.
	LowSince time.Time
}

// Decision is what the rules want for one observation: the on-demand
// group's capacity (Current, Desired) and, with spot, the spot group's.
type Decision struct {
	At          time.Time
	Backlog     int64
	BacklogAge  time.Duration
	Current     int
	Desired     int
	SpotCurrent int `json:",omitempty"`
	SpotDesired int `json:",omitempty"`
	// Floor is the hosts the forecast asked for (PolicyWork with a floor).
	Floor  int `json:",omitempty"`
	Reason string
}

// summary is one line for Temporal UI: the tier, the change, the reason.
func (d Decision) summary(tier string) string {
	line := fmt.Sprintf("%s on-demand %d -> %d", tier, d.Current, d.Desired)
	if d.SpotDesired != d.SpotCurrent || d.SpotDesired > 0 {
		line += fmt.Sprintf(", spot %d -> %d", d.SpotCurrent, d.SpotDesired)
	}
	return line + ": " + d.Reason
}

// Changed says whether the decision asks for a different capacity.
func (d Decision) Changed() bool { return d.Desired != d.Current || d.SpotDesired != d.SpotCurrent }

// Decide applies the policy to one observation and returns the decision and
// the state to keep. It is pure: the workflow and the simulator both call it,
// so a simulated trace exercises exactly the rules production runs. The state
// assumes the decision is carried out; a caller whose change failed keeps the
// previous state, so a failed scale-up does not start a cooldown.
func Decide(c Config, s State, o Observation) (Decision, State) {
	s = Track(c, s, o)
	d := Decision{At: o.At, Backlog: o.Backlog, BacklogAge: o.BacklogAge, Current: o.Capacity, Desired: o.Capacity,
		SpotCurrent: o.Spot, SpotDesired: o.Spot}
	b := c.BoundsAt(o.At)
	if c.Policy == PolicyWork {
		d = scaleWork(c, s, o, d, b)
		return d, record(s, d)
	}
	switch {
	case o.Capacity < b.Min:
		d.Desired, d.Reason = b.Min, fmt.Sprintf("below minimum %d", b.Min)
	case o.Capacity > b.Max:
		d.Desired, d.Reason = b.Max, maxReason(b)
	case o.Capacity == 0 && o.Backlog > 0 && b.Max > 0:
		// A tier scaled to zero (min 0, e.g. the A100s) must wake for its
		// first job: the backlog rules alone would wait for 11 of them.
		d.Desired, d.Reason = 1, "work waiting and no hosts"
	default:
		d = scale(c, s, d, b)
	}
	return d, record(s, d)
}

// Track folds an observation into the scale-in hold without deciding
// anything: a paused autoscaler still learns how long the backlog was low.
func Track(c Config, s State, o Observation) State {
	switch {
	case o.Backlog >= c.ScaleIn.Below:
		s.LowSince = time.Time{}
	case s.LowSince.IsZero():
		s.LowSince = o.At
	}
	return s
}

// scale applies the scale-up rules, then the scale-in hold, within bounds.
func scale(c Config, s State, d Decision, b Bounds) Decision {
	if r, ok := c.rule(d.Backlog); ok {
		return scaleUp(s, d, b, r)
	}
	if s.LowSince.IsZero() || d.At.Sub(s.LowSince) < c.ScaleIn.For {
		return d
	}
	if d.Current <= b.Min {
		d.Reason = fmt.Sprintf("backlog under %d for %s, at minimum %d", c.ScaleIn.Below, c.ScaleIn.For, b.Min)
		return d
	}
	d.Desired = max(d.Current-c.ScaleIn.Step, b.Min)
	d.Reason = fmt.Sprintf("backlog under %d for %s: -%d", c.ScaleIn.Below, c.ScaleIn.For, c.ScaleIn.Step)
	return d
}

func scaleUp(s State, d Decision, b Bounds, r Rule) Decision {
	if d.Current >= b.Max {
		d.Reason = fmt.Sprintf("backlog over %d, %s", r.Above, maxReason(b))
		return d
	}
	if since := d.At.Sub(s.LastScaleUp); !s.LastScaleUp.IsZero() && since < r.Cooldown {
		d.Reason = fmt.Sprintf("backlog over %d, cooling down (%s of %s)", r.Above, since, r.Cooldown)
		return d
	}
	d.Desired = min(d.Current+r.Step, b.Max)
	d.Reason = fmt.Sprintf("backlog over %d: +%d", r.Above, r.Step)
	return d
}

func maxReason(b Bounds) string {
	if b.Window != nil {
		return fmt.Sprintf("at window %s-%s maximum %d", b.Window.Start, b.Window.End, b.Max)
	}
	return fmt.Sprintf("at maximum %d", b.Max)
}

// record stamps a change into the state. A scale-in restarts the hold, so the
// next one needs another full period of low backlog.
func record(s State, d Decision) State {
	switch {
	case d.Desired > d.Current:
		s.LastScaleUp = d.At
	case d.Desired < d.Current:
		s.LastScaleDown = d.At
		if !s.LowSince.IsZero() {
			s.LowSince = d.At
		}
	}
	return s
}
