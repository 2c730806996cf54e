package autoscale

import (
	"fmt"
	"math"
	"time"
)

// scaleWork is PolicyWork: add instances for the GPU time waiting once the
// oldest task has waited UpAge, counting those already booting; remove the
// instances that have idled IdleFor (at the end of their billed period where
// billing is by the period) when nothing waits.
func scaleWork(c Config, s State, o Observation, d Decision, b Bounds) Decision {
	w := c.Work
	if o.Backlog > 0 && o.BacklogAge >= w.UpAge {
		gpus := max(o.GPUs, 1)
		need := int(math.Ceil(float64(o.BacklogWork) / float64(w.Drain*time.Duration(gpus))))
		add := max(need-o.Booting, 0)
		work := fmt.Sprintf("oldest waited %s, %s of GPU time waiting, %d booting", o.BacklogAge, o.BacklogWork, o.Booting)
		switch {
		case !o.InstancesKnown && !s.LastScaleUp.IsZero() && o.At.Sub(s.LastScaleUp) < w.Drain:
			// The driver cannot say what is still booting: give the last
			// scale-up one Drain to show in the backlog.
			d.Reason = fmt.Sprintf("%s: last scale-up %s ago, within %s", work, o.At.Sub(s.LastScaleUp), w.Drain)
		case add == 0:
			d.Reason = work + ": enough on the way"
		case d.Current >= b.Max:
			d.Reason = work + ", " + maxReason(b)
		default:
			d.Desired = min(d.Current+add, b.Max)
			d.Reason = fmt.Sprintf("%s: +%d", work, d.Desired-d.Current)
		}
		return d
	}
	if o.Backlog > 0 {
		return d
	}
	n := removable(c, s, o)
	if n == 0 {
		return d
	}
	if d.Current <= b.Min {
		d.Reason = fmt.Sprintf("%d idle for %s, at minimum %d", n, w.IdleFor, b.Min)
		return d
	}
	d.Desired = max(d.Current-n, b.Min)
	d.Reason = fmt.Sprintf("%d idle for %s%s: -%d", n, w.IdleFor, w.periodNote(), d.Current-d.Desired)
	return d
}

// removable counts the instances PolicyWork may remove now. A driver that
// does not report instances leaves the backlog's low spell to stand for
// idling: one instance per IdleFor of an empty queue.
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
		if in.IdleFor >= w.IdleFor && w.nearPeriodEnd(in.Uptime) {
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
