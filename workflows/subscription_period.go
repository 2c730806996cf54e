package workflows

import (
	"time"

	"github.com/easel/easel/internal/pricing"
)

// Billing periods and proration: arithmetic on times and amounts only, so
// that it is tested without a workflow.

// addMonths adds n months, clamping the day to the month's last day (Go's
// AddDate would turn Jan 31 + 1 month into Mar 3).
func addMonths(t time.Time, n int) time.Time {
	first := time.Date(t.Year(), t.Month()+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(t.Day(), last)-1)
}

// periodEnd is the first monthly boundary after start, counted from the
// anchor so that a period starting Jan 31 ends Feb 28 and the next Mar 31.
func periodEnd(anchor, start time.Time) time.Time {
	for n := 1; ; n++ {
		if end := addMonths(anchor, n); end.After(start) {
			return end
		}
	}
}

// inTrial says a trial ending at trialEnd covers the period from start to
// end: it ends after the period starts and no later than the period ends.
func inTrial(trialEnd, start, end time.Time) bool {
	return trialEnd.After(start) && !trialEnd.After(end)
}

// retryAt is when dunning retries a charge after attempt declines (from 1),
// counted from the first decline.
func retryAt(since time.Time, attempt int) time.Time {
	return since.Add(DunningSchedule[attempt-1])
}

// periodKey names a period by its start, in keys and messages.
func periodKey(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// nextGrantStart keys a grant made now (an upgrade, a renewal by the
// billing team). Grants are unique per subscription and start second
// (store.PeriodReference), so the start must differ from every earlier
// grant of this run, the period's (periodStart) included: a grant in the
// same second as the last one moves to the next second.
func nextGrantStart(now, periodStart, lastGrant time.Time) time.Time {
	start := now.Truncate(time.Second)
	floor := periodStart
	if lastGrant.After(floor) {
		floor = lastGrant
	}
	if !start.After(floor) {
		start = floor.Truncate(time.Second).Add(time.Second)
	}
	return start
}

// isUpgrade says a plan change costs more: it is charged now, prorated,
// while any other change waits for the period end.
func isUpgrade(from, to SubscriptionPlan) bool { return to.PriceCents > from.PriceCents }

// prorateUpgrade is what an upgrade at now costs, and the credits it adds,
// for the rest of the period from start to end. The credits are the share
// of the plans' difference that the charge pays for, so an upgrade charged
// the whole difference adds every credit of it, and one whose charge
// rounds to nothing adds none (prorating each on its own could round them
// apart: a charge rounded up beside credits rounded down). A change that
// lowers the price or the credits adds nothing of that.
func prorateUpgrade(from, to SubscriptionPlan, start, end, now time.Time) (amountCents int64, credits int) {
	priceDiff := to.PriceCents - from.PriceCents
	amountCents = prorate(priceDiff, end.Sub(now), end.Sub(start))
	return amountCents, int(pricing.Share(int64(to.Credits-from.Credits), amountCents, priceDiff))
}

// prorate scales an amount by remaining/total, rounded half up, at
// millisecond precision (int64 holds cents times a month of milliseconds).
func prorate(amount int64, remaining, total time.Duration) int64 {
	if remaining <= 0 || total <= 0 {
		return 0
	}
	return pricing.Share(amount, min(remaining, total).Milliseconds(), total.Milliseconds())
}

// PlanChangeQuote is what changing plan costs at a given moment: an upgrade
// takes effect now and is charged the prorated difference for the rest of
// the period, with the prorated extra credits; anything else (a downgrade,
// a change of equal price, any change during a trial, which has nothing to
// prorate against) takes effect at the period end and costs nothing now.
type PlanChangeQuote struct {
	Upgrade     bool
	EffectiveAt time.Time
	AmountCents int64
	Credits     int
}

// QuotePlanChange prices a change from one plan to another made at now, in
// a period from start to end. The subscription workflow's change_plan
// update charges exactly this (at the moment it runs), and the API's
// preview shows it before the person confirms.
func QuotePlanChange(from, to SubscriptionPlan, trialing bool, start, end, now time.Time) PlanChangeQuote {
	if !isUpgrade(from, to) || trialing {
		return PlanChangeQuote{EffectiveAt: end}
	}
	amount, credits := prorateUpgrade(from, to, start, end, now)
	return PlanChangeQuote{Upgrade: true, EffectiveAt: now, AmountCents: amount, Credits: credits}
}
