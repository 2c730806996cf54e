package autoscale

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// scaleWork is PolicyWork. The floor first: hosts for FloorShare of last
// week's load FloorLead ahead, on the spot group above the minimum when
// Spot is on, and on the on-demand group for what spot cannot launch.
// Then, on the on-demand group: add hosts for the GPU time waiting once
// the oldest paid render has waited UpAge (a Free one FreeUpAge), counting
// those already booting; remove the hosts that have idled IdleFor (past
// their billing minimum, at the end of their billed period where billing
// is by the period) when nothing waits, down to the floor.
func scaleWork(c Config, s State, o Observation, d Decision, b Bounds) Decision {
	w := c.Work
	gpus := max(o.GPUs, 1)
	f := w.floor(o, b, gpus)
	d.Floor = f.hosts
	var why []string
	if f.note != "" {
		why = append(why, f.note)
	}
	desired := o.Capacity
	if desired > b.Max {
		desired = b.Max
		why = append(why, maxReason(b))
	}
	// Spot takes the floor above the minimum, within the room the
	// on-demand group leaves under the maximum: on-demand hosts that
	// covered a refusal are not forced out when spot capacity returns;
	// they leave as they idle, and spot takes their room.
	d.SpotDesired = 0
	if w.Spot {
		d.SpotDesired = max(min(f.hosts-b.Min, b.Max-desired), 0)
	}
	// Spot hosts that are up or on their way: while EC2 refuses spot
	// capacity, the on-demand group covers the floor, and its hosts stay
	// until the spot hosts that replace them are ready.
	spotUp := max(d.SpotDesired-o.SpotShort, 0)
	spotReady := max(min(d.SpotDesired, o.Spot-o.SpotShort-o.SpotBooting), 0)
	odMin := max(max(f.hosts, b.Min)-spotUp, 0)
	keep := max(max(f.hosts, b.Min)-spotReady, 0)
	odMax := max(b.Max-spotUp, desired)
	if o.SpotShort > 0 {
		why = append(why, fmt.Sprintf("spot short %d", o.SpotShort))
	}
	if desired < odMin {
		desired = odMin
		why = append(why, fmt.Sprintf("on-demand floor %d", odMin))
	}
	up, upWhy := w.scaleUp(s, o, gpus, desired-o.Capacity)
	why = append(why, upWhy...)
	switch {
	case up > 0 && desired >= odMax:
		why = append(why, maxReason(b))
	case up > 0:
		desired = min(desired+up, odMax)
	case o.Capacity+o.Spot == 0 && o.Backlog > 0 && odMax > 0:
		// A tier at zero wakes for its first render before it is old.
		desired = max(desired, 1)
		why = append(why, "work waiting and no hosts")
	case o.Backlog == 0 && desired > max(odMin, keep):
		if n := removable(c, s, o); n > 0 {
			desired = max(desired-n, odMin, keep)
			why = append(why, fmt.Sprintf("%d idle for %s%s", n, w.IdleFor, w.periodNote()))
		}
	}
	d.Desired = desired
	d.Reason = strings.Join(why, "; ") + changeNote(d)
	return d
}

// changeNote ends a reason with the change it led to.
func changeNote(d Decision) string {
	var parts []string
	if n := d.Desired - d.Current; n != 0 {
		parts = append(parts, fmt.Sprintf("on-demand %+d", n))
	}
	if n := d.SpotDesired - d.SpotCurrent; n != 0 {
		parts = append(parts, fmt.Sprintf("spot %+d", n))
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}

// scaleUp is how many on-demand hosts the waiting work asks for beyond
// those booting and the raise already decided, and why.
func (w WorkPolicy) scaleUp(s State, o Observation, gpus, raised int) (int, []string) {
	paid, free := o.paid(), o.free()
	var work time.Duration
	var why []string
	if paid.Count > 0 && paid.Age >= w.UpAge {
		// The estimate counts ready GPUs, not what they still have to
		// render: a render that has waited UpWait past UpAge is added for
		// whatever the estimate says.
		if wait := readyWait(o, paid.Work, gpus); wait >= w.UpWait || paid.Age >= w.UpAge+w.UpWait {
			work = paid.Work
			why = append(why, fmt.Sprintf("oldest paid render waited %s, %s of GPU time", paid.Age, paid.Work))
		} else {
			why = append(why, fmt.Sprintf("paid backlog clears in %s on the ready GPUs, under %s", wait.Round(time.Second), w.UpWait))
		}
	}
	if free.Count > 0 && free.Age >= w.FreeUpAge {
		// Free renders start after every paid one: clearing them needs
		// the paid work too.
		work = paid.Work + free.Work
		why = append(why, fmt.Sprintf("oldest Free render waited %s, %s of GPU time", free.Age, free.Work))
	}
	if work == 0 {
		return 0, why
	}
	if !o.InstancesKnown && !s.LastScaleUp.IsZero() && o.At.Sub(s.LastScaleUp) < w.Drain {
		// The driver cannot say what is still booting: give the last
		// scale-up one Drain to show in the backlog.
		return 0, append(why, fmt.Sprintf("last scale-up %s ago, within %s", o.At.Sub(s.LastScaleUp), w.Drain))
	}
	need := int(math.Ceil(float64(work) / float64(w.Drain*time.Duration(gpus))))
	add := max(need-o.Booting-raised, 0)
	why = append(why, fmt.Sprintf("%d booting", o.Booting))
	if add == 0 {
		why = append(why, "enough on the way")
	}
	return add, why
}

// readyWait is how long the newest of work would wait on the GPUs ready
// now: its GPU time over theirs. With none ready it is all of work.
func readyWait(o Observation, work time.Duration, gpus int) time.Duration {
	ready := o.Capacity + o.Spot - o.SpotShort
	if o.InstancesKnown {
		ready -= o.Booting + o.SpotBooting
	}
	if ready <= 0 {
		return work
	}
	return work / time.Duration(ready*gpus)
}

// workFloor is the hosts the forecast asks for, and the reason.
type workFloor struct {
	hosts int
	note  string
}

// floor is FloorShare of the forecast GPUs in hosts, within the bounds.
func (w WorkPolicy) floor(o Observation, b Bounds, gpus int) workFloor {
	if w.FloorShare <= 0 {
		return workFloor{}
	}
	if !o.ForecastKnown {
		return workFloor{note: "no forecast yet"}
	}
	n := int(math.Ceil(w.FloorShare*o.Forecast/float64(gpus) - 1e-9))
	n = min(max(n, 0), b.Max)
	return workFloor{hosts: n, note: fmt.Sprintf("floor %d (last week %.1f GPUs busy)", n, o.Forecast)}
}

// removable counts the on-demand instances PolicyWork may remove now. A
// driver that does not report instances leaves the backlog's low spell
// to stand for idling: one instance per IdleFor of an empty queue.
func removable(c Config, s State, o Observation) int {
	w := c.Work
	if !o.InstancesKnown {
		if !s.LowSince.IsZero() && o.At.Sub(s.LowSince) >= w.IdleFor {
			return 1
		}
		return 0
	}
	n := 0
	for _, in := range o.Idle {
		if !in.Spot && in.IdleFor >= w.IdleFor && in.Uptime >= w.BillingMinimum && w.nearPeriodEnd(in.Uptime) {
			n++
		}
	}
	return n
}

// nearPeriodEnd says whether an instance up this long is in the last
// BillingMargin of a billed period (always, under per-second billing).
func (w WorkPolicy) nearPeriodEnd(uptime time.Duration) bool {
	if w.BillingPeriod <= 0 {
		return true
	}
	return w.BillingPeriod-uptime%w.BillingPeriod <= w.BillingMargin
}

func (w WorkPolicy) periodNote() string {
	if w.BillingPeriod <= 0 {
		return ""
	}
	return fmt.Sprintf(" within %s of a billed %s", w.BillingMargin, w.BillingPeriod)
}
