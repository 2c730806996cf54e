package workflows

import (
	"testing"
	"time"
	_ "time/tzdata" // the DST case needs Europe/Paris wherever the tests run
)

func utc(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }

func TestAddMonths(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		t    time.Time
		n    int
		want time.Time
	}{
		{"Jan 31 to Feb 28", utc(2025, 1, 31, 12), 1, utc(2025, 2, 28, 12)},
		{"Jan 31 to Feb 29 in a leap year", utc(2024, 1, 31, 12), 1, utc(2024, 2, 29, 12)},
		{"Jan 30 to Feb 29 in a leap year", utc(2024, 1, 30, 0), 1, utc(2024, 2, 29, 0)},
		{"Jan 29 stays the 29th in a leap year", utc(2024, 1, 29, 0), 1, utc(2024, 2, 29, 0)},
		{"Jan 31 two months on keeps the 31st", utc(2025, 1, 31, 12), 2, utc(2025, 3, 31, 12)},
		{"Mar 31 to Apr 30", utc(2025, 3, 31, 0), 1, utc(2025, 4, 30, 0)},
		{"leap day a year on", utc(2024, 2, 29, 0), 12, utc(2025, 2, 28, 0)},
		{"leap day four years on", utc(2024, 2, 29, 0), 48, utc(2028, 2, 29, 0)},
		{"Dec 31 into the next year", utc(2025, 12, 31, 23), 1, utc(2026, 1, 31, 23)},
		{"Nov 30 into the next year", utc(2025, 11, 30, 0), 3, utc(2026, 2, 28, 0)},
		{"mid-month is plain", utc(2025, 4, 15, 6), 1, utc(2025, 5, 15, 6)},
		{"zero months", utc(2025, 1, 31, 12), 0, utc(2025, 1, 31, 12)},
		{"back a month clamps too", utc(2025, 3, 31, 0), -1, utc(2025, 2, 28, 0)},
		{"keeps nanoseconds", time.Date(2025, 1, 31, 1, 2, 3, 4, time.UTC), 1, time.Date(2025, 2, 28, 1, 2, 3, 4, time.UTC)},
		{"keeps the wall clock across DST", time.Date(2025, 3, 1, 9, 0, 0, 0, paris), 1, time.Date(2025, 4, 1, 9, 0, 0, 0, paris)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := addMonths(tt.t, tt.n)
			if !got.Equal(tt.want) || got.Location() != tt.want.Location() {
				t.Fatalf("addMonths(%v, %d) = %v, want %v", tt.t, tt.n, got, tt.want)
			}
		})
	}
}

func TestPeriodEnd(t *testing.T) {
	jan31 := utc(2025, 1, 31, 12)
	tests := []struct {
		name          string
		anchor, start time.Time
		want          time.Time
	}{
		{"first period from a month-end anchor", jan31, jan31, utc(2025, 2, 28, 12)},
		{"after a short month the anchor's day returns", jan31, utc(2025, 2, 28, 12), utc(2025, 3, 31, 12)},
		{"then the 30th in a 30-day month", jan31, utc(2025, 3, 31, 12), utc(2025, 4, 30, 12)},
		{"a year on", jan31, utc(2025, 12, 31, 12), utc(2026, 1, 31, 12)},
		{"leap February", utc(2024, 1, 31, 12), utc(2024, 1, 31, 12), utc(2024, 2, 29, 12)},
		{"leap February, then Mar 31", utc(2024, 1, 31, 12), utc(2024, 2, 29, 12), utc(2024, 3, 31, 12)},
		{"leap-day anchor in a common year", utc(2024, 2, 29, 0), utc(2025, 1, 29, 0), utc(2025, 2, 28, 0)},
		{"a start between boundaries ends at the next one", jan31, utc(2025, 2, 10, 0), utc(2025, 2, 28, 12)},
		{"a start a second before a boundary", jan31, utc(2025, 2, 28, 12).Add(-time.Second), utc(2025, 2, 28, 12)},
		{"a start on a boundary ends at the next", utc(2025, 4, 1, 0), utc(2025, 5, 1, 0), utc(2025, 6, 1, 0)},
		{"a start before the anchor ends a month after it", utc(2025, 4, 1, 0), utc(2025, 3, 1, 0), utc(2025, 5, 1, 0)},
		{"an anchor moved by an early renewal", utc(2025, 4, 6, 0), utc(2025, 4, 6, 0), utc(2025, 5, 6, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := periodEnd(tt.anchor, tt.start); !got.Equal(tt.want) {
				t.Fatalf("periodEnd(%v, %v) = %v, want %v", tt.anchor, tt.start, got, tt.want)
			}
		})
	}
}

func TestInTrial(t *testing.T) {
	start, end := utc(2025, 4, 1, 0), utc(2025, 4, 15, 0)
	tests := []struct {
		name     string
		trialEnd time.Time
		want     bool
	}{
		{"no trial", time.Time{}, false},
		{"ends at the period end", end, true},
		{"ends inside the period", start.Add(day), true},
		{"ends as the period starts", start, false},
		{"ends after the period", end.Add(time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := inTrial(tt.trialEnd, start, end); got != tt.want {
				t.Fatalf("inTrial(%v) = %v, want %v", tt.trialEnd, got, tt.want)
			}
		})
	}
}

func TestRetryAt(t *testing.T) {
	since := utc(2025, 5, 1, 0)
	for attempt, want := range map[int]time.Time{1: since.Add(day), 2: since.Add(3 * day), 3: since.Add(7 * day)} {
		if got := retryAt(since, attempt); !got.Equal(want) {
			t.Errorf("retryAt(attempt %d) = %v, want %v", attempt, got, want)
		}
	}
}

func TestNextGrantStart(t *testing.T) {
	start := utc(2025, 4, 1, 0)
	tests := []struct {
		name           string
		now, lastGrant time.Time
		want           time.Time
	}{
		{"now, in whole seconds", start.Add(5*day + 1500*time.Millisecond), time.Time{}, start.Add(5*day + time.Second)},
		{"the period's own second is taken", start.Add(400 * time.Millisecond), time.Time{}, start.Add(time.Second)},
		{"exactly the period start", start, time.Time{}, start.Add(time.Second)},
		{"before the period start (clock skew)", start.Add(-time.Minute), time.Time{}, start.Add(time.Second)},
		{"the last grant's second is taken", start.Add(day + 200*time.Millisecond), start.Add(day), start.Add(day + time.Second)},
		{"a grant after the last one", start.Add(2 * day), start.Add(day), start.Add(2 * day)},
		{"a last grant before the period start is ignored", start.Add(time.Hour), start.Add(-day), start.Add(time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextGrantStart(tt.now, start, tt.lastGrant); !got.Equal(tt.want) {
				t.Fatalf("nextGrantStart(%v) = %v, want %v", tt.now, got, tt.want)
			}
		})
	}
}

func TestProrate(t *testing.T) {
	if got := prorate(2000, 20*day, 30*day); got != 1333 {
		t.Fatalf("prorate = %d", got)
	}
	if got := prorate(1, day, 2*day); got != 1 {
		t.Fatalf("half a cent rounds to %d, want 1", got)
	}
}

func TestProrateTable(t *testing.T) {
	tests := []struct {
		name             string
		amount           int64
		remaining, total time.Duration
		want             int64
	}{
		{"at the period start: all of it", 2000, 30 * day, 30 * day, 2000},
		{"two thirds left", 2000, 20 * day, 30 * day, 1333},
		{"half left", 2000, 15 * day, 30 * day, 1000},
		{"a third left rounds up", 2000, 10 * day, 30 * day, 667},
		{"at the period end: nothing", 2000, 0, 30 * day, 0},
		{"past the period end: nothing", 2000, -day, 30 * day, 0},
		{"a clock before the period start: capped at all of it", 2000, 31 * day, 30 * day, 2000},
		{"half a cent rounds up", 1, day, 2 * day, 1},
		{"under half a cent rounds down", 1, day, 3 * day, 0},
		{"a millisecond left of a month", 3000, time.Millisecond, 31 * day, 0},
		{"a zero-length period", 2000, 0, 0, 0},
		{"a negative period", 2000, day, -day, 0},
		{"nothing to prorate", 0, day, 30 * day, 0},
		{"a negative amount (a downgrade)", -2000, 20 * day, 30 * day, 0},
		{"a large amount over a long month does not overflow", 100_000_000, 31 * day / 3, 31 * day, 33_333_333},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := prorate(tt.amount, tt.remaining, tt.total); got != tt.want {
				t.Fatalf("prorate(%d, %v, %v) = %d, want %d", tt.amount, tt.remaining, tt.total, got, tt.want)
			}
		})
	}
}

// The credits an upgrade adds follow what it charges: charged the whole
// difference, the whole difference in credits; charged nothing, none.
func TestProrateUpgradeCreditsFollowTheCharge(t *testing.T) {
	pro := SubscriptionPlan{Slug: "pro", PriceCents: 2999, Credits: 2000}
	enterprise := SubscriptionPlan{Slug: "enterprise", PriceCents: 9998, Credits: 10000}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(30 * day)
	tests := []struct {
		name        string
		elapsed     time.Duration
		wantCents   int64
		wantCredits int
	}{
		{"at the start", 0, 6999, 8000},
		// 3 min in: 6999 x 0.99993 rounds up to the whole 6999, while
		// 8000 x 0.99993 alone would round down to 7999.
		{"a few minutes in, charged in full", 3 * time.Minute, 6999, 8000},
		// 3499.5 cents round up to 3500, which pay for 4000.57 credits.
		{"half way", 15 * day, 3500, 4001},
		{"a third left", 20 * day, 2333, 2667},
		{"a second before the end: nothing charged, nothing added", 30*day - time.Second, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cents, credits := prorateUpgrade(pro, enterprise, start, end, start.Add(tt.elapsed))
			if cents != tt.wantCents || credits != tt.wantCredits {
				t.Fatalf("charged %d cents for %d credits, want %d for %d", cents, credits, tt.wantCents, tt.wantCredits)
			}
		})
	}
	if cents, credits := prorateUpgrade(enterprise, pro, start, end, start); cents != 0 || credits != 0 {
		t.Fatalf("a downgrade: %d cents, %d credits", cents, credits)
	}
}

func TestIsUpgrade(t *testing.T) {
	cheapMoreCredits := SubscriptionPlan{Slug: "bulk", PriceCents: 1000, Credits: 900}
	tests := []struct {
		name     string
		from, to SubscriptionPlan
		want     bool
	}{
		{"basic to pro", basicPlan, proPlan, true},
		{"pro to basic", proPlan, basicPlan, false},
		{"free to basic", freePlan, basicPlan, true},
		{"basic to free", basicPlan, freePlan, false},
		{"same price, more credits waits", basicPlan, cheapMoreCredits, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isUpgrade(tt.from, tt.to); got != tt.want {
				t.Fatalf("isUpgrade(%s, %s) = %v, want %v", tt.from.Slug, tt.to.Slug, got, tt.want)
			}
		})
	}
}

func TestProrateUpgrade(t *testing.T) {
	start := utc(2025, 4, 1, 0) // April: 30 days
	end := addMonths(start, 1)
	feb, mar := utc(2024, 2, 1, 0), utc(2024, 3, 1, 0) // a leap February: 29 days
	pricierFewer := SubscriptionPlan{Slug: "fast", PriceCents: 2500, Credits: 50}
	tests := []struct {
		name            string
		from, to        SubscriptionPlan
		start, end, now time.Time
		wantCents       int64
		wantCredits     int
	}{
		{"at the period start: the full difference", basicPlan, proPlan, start, end, start, 2000, 400},
		{"a third in: two thirds of it", basicPlan, proPlan, start, end, start.Add(10 * day), 1333, 267},
		{"halfway", basicPlan, proPlan, start, end, start.Add(15 * day), 1000, 200},
		{"a second before the end: too little to charge", basicPlan, proPlan, start, end, end.Add(-time.Second), 0, 0},
		{"at the period end: nothing", basicPlan, proPlan, start, end, end, 0, 0},
		{"after the period end: nothing", basicPlan, proPlan, start, end, end.Add(day), 0, 0},
		{"from free", freePlan, proPlan, start, end, start.Add(10 * day), 2000, 300},
		{"a downgrade adds nothing", proPlan, basicPlan, start, end, start.Add(10 * day), 0, 0},
		{"pricier with fewer credits adds no credits", basicPlan, pricierFewer, start, end, start.Add(15 * day), 750, 0},
		{"a zero-length period", basicPlan, proPlan, end, end, end, 0, 0},
		{"a zero-length period, a later clock", basicPlan, proPlan, end, end, end.Add(time.Hour), 0, 0},
		{"a leap February, halfway", basicPlan, proPlan, feb, mar, feb.Add(14*day + 12*time.Hour), 1000, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cents, credits := prorateUpgrade(tt.from, tt.to, tt.start, tt.end, tt.now)
			if cents != tt.wantCents || credits != tt.wantCredits {
				t.Fatalf("prorateUpgrade = %d cents, %d credits; want %d, %d", cents, credits, tt.wantCents, tt.wantCredits)
			}
		})
	}
}

func TestPeriodKey(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	if got := periodKey(time.Date(2025, 4, 1, 2, 0, 0, 500, paris)); got != "2025-04-01T01:00:00Z" {
		t.Fatalf("periodKey = %q", got)
	}
}

// TestQuotePlanChange: an upgrade is charged now, prorated; a downgrade, a
// change of equal price and any change during a trial wait for the period
// end and cost nothing now.
func TestQuotePlanChange(t *testing.T) {
	start := utc(2025, 4, 1, 0)
	end := addMonths(start, 1)
	third := start.Add(10 * day)
	tests := []struct {
		name     string
		from, to SubscriptionPlan
		trialing bool
		want     PlanChangeQuote
	}{
		{"upgrade a third in", basicPlan, proPlan, false, PlanChangeQuote{Upgrade: true, EffectiveAt: third, AmountCents: 1333, Credits: 267}},
		{"downgrade at the period end", proPlan, basicPlan, false, PlanChangeQuote{EffectiveAt: end}},
		{"an upgrade during a trial waits", basicPlan, proPlan, true, PlanChangeQuote{EffectiveAt: end}},
		{"same price waits", basicPlan, SubscriptionPlan{Slug: "other", PriceCents: basicPlan.PriceCents, Credits: 900}, false, PlanChangeQuote{EffectiveAt: end}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := QuotePlanChange(tt.from, tt.to, tt.trialing, start, end, third)
			if got != tt.want {
				t.Fatalf("QuotePlanChange = %+v, want %+v", got, tt.want)
			}
		})
	}
}
