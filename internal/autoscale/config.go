package autoscale

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	// Embedded zone data: every worker (and every replay) resolves the night
	// window's time zone the same way, even on a host without tzdata.
	_ "time/tzdata"
)

// Rule adds Step instances when more than Above tasks wait. Cooldown is the
// least time since the last scale-up before this rule may fire: instances
// just launched are still booting, and the backlog does not show them yet.
type Rule struct {
	Above    int64
	Step     int
	Cooldown time.Duration
}

// ScaleIn removes Step instances once fewer than Below tasks have waited for
// For without a break. The hold restarts after each scale-in, so capacity
// drains one step per hold rather than all at once.
type ScaleIn struct {
	Below int64
	For   time.Duration
	Step  int
}

// Window caps capacity during a daily span of local time: Start and End are
// "15:04" clock times in Config.TimeZone; a window whose End is before its
// Start crosses midnight. Max also lowers Min when it is smaller, so a
// window with Max 0 turns a tier off.
type Window struct {
	Start string
	End   string
	Max   int
}

// Policies Decide knows.
const (
	// PolicyRules is the deployment guide's: backlog counts, steps and
	// cooldowns (Config.ScaleUp, Config.ScaleIn).
	PolicyRules = "rules"
	// PolicyWork scales on the backlog's GPU time and age and removes
	// instances that have idled (Config.Work).
	PolicyWork = "work"
)

// WorkPolicy sizes a tier to the GPU time waiting rather than the number of
// tasks, and removes instances by how long they have idled.
type WorkPolicy struct {
	// UpAge: capacity is added once the oldest waiting task has waited this
	// long; a shorter wait is noise the running instances absorb.
	UpAge time.Duration
	// UpWait: a paid backlog old enough to act on adds capacity only when
	// it would keep the newest render waiting this long on the GPUs ready
	// now (its GPU time over theirs, Little's law): a render or two the
	// running hosts clear in seconds does not pay for a host's minute.
	// The estimate does not know what the ready GPUs still have to render,
	// so a paid render that has waited UpAge+UpWait adds capacity anyway.
	// 0 adds capacity on age alone.
	UpWait time.Duration
	// Drain: enough instances are added, booting ones counted, that the
	// waiting GPU time would clear in Drain on them alone.
	Drain time.Duration
	// IdleFor: an instance that has rendered nothing this long is removed
	// (when nothing waits), down to the minimum.
	IdleFor time.Duration
	// BillingPeriod is the unit instances are billed in: 0 for per-second
	// billing (Linux on-demand and spot EC2), 1h where a started hour is
	// paid in full. With a period, an idle instance is removed only in the
	// last BillingMargin of its current period: the hour is paid anyway.
	BillingPeriod time.Duration
	BillingMargin time.Duration
	// BillingMinimum is the least time an instance is billed for each
	// time it starts: 60 s for Linux EC2 (on-demand and spot), also when
	// it resumes from a warm pool. An idle instance is kept that long: its
	// removal would save nothing.
	BillingMinimum time.Duration

	// FreeUpAge: hosts are added for Free renders, which wait behind every
	// paid one (a lower priority key), once the oldest has waited this
	// long; UpAge applies to paid renders. Free renders may wait longer,
	// never without end: past FreeUpAge they count as urgent work.
	FreeUpAge time.Duration

	// FloorShare, when above 0, holds a floor of hosts for FloorShare of
	// the GPUs the tier kept busy at the same time last week (History),
	// looking FloorLead ahead, so hosts are up before the load arrives
	// rather than after users waited for it. 0 turns the floor off.
	FloorShare float64
	FloorLead  time.Duration
	// Spot puts the floor above the minimum on the tier's spot group: it
	// is known FloorLead ahead, so a spot host's cold boot is paid for in
	// advance. Hosts added for waiting work come from the on-demand group
	// (its warm pool boots in seconds), and so do the floor's hosts that
	// the spot group cannot launch while EC2 refuses spot capacity.
	Spot bool
}

// DefaultWork is PolicyWork's default, from a sweep on the diurnal trace
// with a warm pool (docs/autoscaling.md): hold a floor of 80% of last
// week's load 10 minutes ahead; add capacity once a paid render has waited
// 10 s (a Free one 90 s) and would wait 20 s more on the ready GPUs, enough to clear the backlog in 4 minutes; remove
// an instance idle for 10 s once its first minute, which EC2 bills anyway,
// is over; per-second billing (Linux EC2, on-demand and spot); no spot.
func DefaultWork() WorkPolicy {
	return WorkPolicy{UpAge: 10 * time.Second, UpWait: 20 * time.Second, FreeUpAge: 90 * time.Second, Drain: 4 * time.Minute,
		IdleFor: 10 * time.Second, BillingMinimum: time.Minute, FloorShare: 0.8, FloorLead: 10 * time.Minute}
}

func (w WorkPolicy) validate() []error {
	var errs []error
	if w.UpAge < 0 || w.UpWait < 0 || w.FreeUpAge < 0 || w.Drain < time.Second || w.IdleFor < 0 {
		errs = append(errs, fmt.Errorf("work policy up-age %s, up-wait %s, free up-age %s, drain %s, idle-for %s: need up-ages and up-wait >= 0, drain >= 1s, idle-for >= 0",
			w.UpAge, w.UpWait, w.FreeUpAge, w.Drain, w.IdleFor))
	}
	if w.BillingMinimum < 0 {
		errs = append(errs, fmt.Errorf("billing minimum %s: need >= 0", w.BillingMinimum))
	}
	if w.FloorShare < 0 || w.FloorShare > 4 || w.FloorLead < 0 || w.FloorLead > 24*time.Hour {
		errs = append(errs, fmt.Errorf("floor share %g, lead %s: need a share in [0, 4] and a lead in [0, 24h]", w.FloorShare, w.FloorLead))
	}
	if w.BillingPeriod < 0 || w.BillingMargin < 0 || (w.BillingPeriod > 0 && (w.BillingMargin == 0 || w.BillingMargin > w.BillingPeriod)) {
		errs = append(errs, fmt.Errorf("billing period %s, margin %s: need period 0 (per second), or a margin in (0, period]", w.BillingPeriod, w.BillingMargin))
	}
	return errs
}

// Config is a tier's autoscaling policy. The zero value is not valid; start
// from DefaultConfig.
type Config struct {
	// Policy is PolicyRules (also when empty) or PolicyWork.
	Policy   string
	Work     WorkPolicy
	ScaleUp  []Rule
	ScaleIn  ScaleIn
	Min, Max int
	// TimeZone is an IANA name (e.g. "Asia/Seoul") for Windows.
	TimeZone string
	Windows  []Window
	// WarmPool, when above 0, is the prepared capacity of the tier's
	// on-demand group and its warm pool of stopped instances
	// (MaxGroupPreparedCapacity), which the workflow has the driver keep
	// (a WarmPoolDriver); 0 leaves the group's warm pool as it is.
	WarmPool int `json:",omitempty"`
	// PollInterval is how often the backlog is read.
	PollInterval time.Duration
	// ContinueAsNewEvery bounds one run's history to this many polls.
	ContinueAsNewEvery int
}

// DefaultConfig is the deployment guide's policy: more than 10 waiting adds one instance
// (5 min cooldown), more than 50 adds three (3 min cooldown), fewer than 3
// for 10 minutes removes one; 1 to 10 instances. The deployment guide's cost section
// scales GPUs down before dawn; its region is Seoul, hence 02:00-07:00 KST
// capped at 2 instances.
func DefaultConfig() Config {
	return Config{
		Policy: PolicyRules,
		Work:   DefaultWork(),
		ScaleUp: []Rule{
			{Above: 10, Step: 1, Cooldown: 5 * time.Minute},
			{Above: 50, Step: 3, Cooldown: 3 * time.Minute},
		},
		ScaleIn:            ScaleIn{Below: 3, For: 10 * time.Minute, Step: 1},
		Min:                1,
		Max:                10,
		TimeZone:           "Asia/Seoul",
		Windows:            []Window{{Start: "02:00", End: "07:00", Max: 2}},
		PollInterval:       30 * time.Second,
		ContinueAsNewEvery: 200,
	}
}

// Validate reports every problem in the policy at once.
func (c Config) Validate() error {
	var errs []error
	if c.Min < 0 || c.Max < c.Min || c.Max < 1 {
		errs = append(errs, fmt.Errorf("min %d and max %d: need 0 <= min <= max and max >= 1", c.Min, c.Max))
	}
	errs = append(errs, validateRules(c.ScaleUp)...)
	if c.ScaleIn.Step < 1 || c.ScaleIn.Below < 0 || c.ScaleIn.For < 0 {
		errs = append(errs, fmt.Errorf("scale-in %+v: need step >= 1, below >= 0, for >= 0", c.ScaleIn))
	}
	if c.WarmPool < 0 {
		errs = append(errs, fmt.Errorf("warm pool %d: need 0 (unmanaged) or more prepared instances", c.WarmPool))
	}
	if c.PollInterval < time.Second {
		errs = append(errs, fmt.Errorf("poll interval %s: need at least 1s", c.PollInterval))
	}
	if c.ContinueAsNewEvery < 1 {
		errs = append(errs, fmt.Errorf("continue-as-new every %d polls: need at least 1", c.ContinueAsNewEvery))
	}
	errs = append(errs, c.validateWindows()...)
	switch c.Policy {
	case "", PolicyRules:
	case PolicyWork:
		errs = append(errs, c.Work.validate()...)
	default:
		errs = append(errs, fmt.Errorf("policy %q: want %s or %s", c.Policy, PolicyRules, PolicyWork))
	}
	return errors.Join(errs...)
}

func validateRules(rules []Rule) []error {
	var errs []error
	seen := map[int64]bool{}
	for _, r := range rules {
		if r.Step < 1 || r.Above < 0 || r.Cooldown < 0 {
			errs = append(errs, fmt.Errorf("scale-up rule %+v: need step >= 1, above >= 0, cooldown >= 0", r))
		}
		if seen[r.Above] {
			errs = append(errs, fmt.Errorf("two scale-up rules for above %d", r.Above))
		}
		seen[r.Above] = true
	}
	return errs
}

func (c Config) validateWindows() []error {
	if len(c.Windows) == 0 {
		return nil
	}
	var errs []error
	if _, err := location(c.TimeZone); err != nil {
		errs = append(errs, err)
	}
	for _, w := range c.Windows {
		_, errS := clock(w.Start)
		_, errE := clock(w.End)
		if errS != nil || errE != nil || w.Max < 0 || w.Start == w.End {
			errs = append(errs, fmt.Errorf("window %+v: need distinct HH:MM start and end, max >= 0", w))
		}
	}
	return errs
}

// Bounds is the capacity range in force at t, and the window that set it.
type Bounds struct {
	Min, Max int
	Window   *Window
}

// BoundsAt applies the tightest window open at t to Min and Max.
func (c Config) BoundsAt(t time.Time) Bounds {
	b := Bounds{Min: c.Min, Max: c.Max}
	loc, err := location(c.TimeZone)
	if err != nil {
		return b // Validate refuses such a config; keep the plain bounds.
	}
	local := t.In(loc)
	minute := local.Hour()*60 + local.Minute()
	for i, w := range c.Windows {
		if w.open(minute) && w.Max < b.Max {
			b.Max, b.Window = w.Max, &c.Windows[i]
		}
	}
	b.Min = min(b.Min, b.Max)
	return b
}

// open says whether the window covers a minute of the local day.
func (w Window) open(minute int) bool {
	start, errS := clock(w.Start)
	end, errE := clock(w.End)
	if errS != nil || errE != nil {
		return false
	}
	if start < end {
		return minute >= start && minute < end
	}
	return minute >= start || minute < end
}

// clock parses "15:04" into minutes after midnight.
func clock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("clock time %q: %w", s, err)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// zones caches loaded time zones: the rules run every poll in the workflow
// and every simulated second in the simulator.
var zones sync.Map

func location(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, err)
	}
	zones.Store(name, loc)
	return loc, nil
}

// rule is the rule for a backlog: the one with the highest threshold the
// backlog exceeds, so a surge gets the big step, not the sum of all steps.
func (c Config) rule(backlog int64) (Rule, bool) {
	var best Rule
	found := false
	for _, r := range c.ScaleUp {
		if backlog > r.Above && (!found || r.Above > best.Above) {
			best, found = r, true
		}
	}
	return best, found
}

// ParseRules reads scale-up rules written above:step:cooldown, comma
// separated, e.g. "10:1:5m,50:3:3m" (the deployment guide's), for an environment
// variable.
func ParseRules(s string) ([]Rule, error) {
	var rules []Rule
	for _, part := range strings.Split(s, ",") {
		f := strings.Split(strings.TrimSpace(part), ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("scale-up rule %q: want above:step:cooldown, e.g. 10:1:5m", part)
		}
		above, errA := strconv.ParseInt(f[0], 10, 64)
		step, errS := strconv.Atoi(strings.TrimPrefix(f[1], "+"))
		cooldown, errC := time.ParseDuration(f[2])
		if err := errors.Join(errA, errS, errC); err != nil {
			return nil, fmt.Errorf("scale-up rule %q: %w", part, err)
		}
		rules = append(rules, Rule{Above: above, Step: step, Cooldown: cooldown})
	}
	return rules, nil
}

// ParseWindows reads night windows written start-end=max, comma separated,
// e.g. "02:00-07:00=2"; an empty string is no window.
func ParseWindows(s string) ([]Window, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var windows []Window
	for _, part := range strings.Split(s, ",") {
		span, maxText, ok := strings.Cut(strings.TrimSpace(part), "=")
		start, end, ok2 := strings.Cut(span, "-")
		n, err := strconv.Atoi(maxText)
		if !ok || !ok2 || err != nil {
			return nil, fmt.Errorf("window %q: want start-end=max, e.g. 02:00-07:00=2", part)
		}
		w := Window{Start: start, End: end, Max: n}
		if _, err := clock(start); err != nil {
			return nil, fmt.Errorf("window %q: %w", part, err)
		}
		if _, err := clock(end); err != nil {
			return nil, fmt.Errorf("window %q: %w", part, err)
		}
		windows = append(windows, w)
	}
	return windows, nil
}
