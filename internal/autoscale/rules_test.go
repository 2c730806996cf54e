package autoscale

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

var seoul = mustLocation("Asia/Seoul")

// noon is outside the default night window (02:00-07:00 KST).
var noon = time.Date(2025, 1, 6, 12, 0, 0, 0, seoul)

func mustLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// step is one observation of a replay: the backlog at an offset.
type step struct {
	at      time.Duration
	backlog int64
}

// replay feeds observations to Decide, applying each decision to the
// capacity as a driver would, and returns the decisions that changed it.
func replay(c Config, capacity int, start time.Time, steps []step) []Decision {
	var s State
	var changes []Decision
	for _, st := range steps {
		d, next := Decide(c, s, Observation{At: start.Add(st.at), Backlog: st.backlog, Capacity: capacity})
		s = next
		if d.Changed() {
			changes = append(changes, d)
			capacity = d.Desired
		}
	}
	return changes
}

// every polls each interval over [0, span) with a backlog by offset.
func every(interval, span time.Duration, backlog func(time.Duration) int64) []step {
	var steps []step
	for at := time.Duration(0); at < span; at += interval {
		steps = append(steps, step{at, backlog(at)})
	}
	return steps
}

func constant(n int64) func(time.Duration) int64 { return func(time.Duration) int64 { return n } }

// changesAt renders changes as "offset:desired" for compact comparisons.
func changesAt(start time.Time, ds []Decision) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.At.Sub(start).String()+":"+strconv.Itoa(d.Desired))
	}
	return strings.Join(parts, " ")
}

func TestDecideThresholdsAreStrict(t *testing.T) {
	c := DefaultConfig()
	for _, tc := range []struct {
		backlog int64
		want    int
	}{{10, 2}, {11, 3}, {50, 3}, {51, 5}} {
		d, _ := Decide(c, State{}, Observation{At: noon, Backlog: tc.backlog, Capacity: 2})
		if d.Desired != tc.want {
			t.Errorf("backlog %d: desired %d (%s), want %d", tc.backlog, d.Desired, d.Reason, tc.want)
		}
	}
}

func TestDecideScaleUpCooldowns(t *testing.T) {
	c := DefaultConfig()
	for _, tc := range []struct {
		name    string
		backlog func(time.Duration) int64
		want    string
	}{
		{"over 10: +1 every 5 min", constant(20), "0s:2 5m0s:3 10m0s:4"},
		{"over 50: +3 every 3 min up to max", constant(60), "0s:4 3m0s:7 6m0s:10"},
		// The +3 rule's shorter cooldown lets a surge escalate 3 min after a +1.
		{"escalation", func(at time.Duration) int64 {
			if at < 2*time.Minute {
				return 20
			}
			return 60
		}, "0s:2 3m0s:5 6m0s:8 9m0s:10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := changesAt(noon, replay(c, 1, noon, every(30*time.Second, 12*time.Minute, tc.backlog)))
			if got != tc.want {
				t.Fatalf("changes %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecideCooldownMessageAndMax(t *testing.T) {
	c := DefaultConfig()
	s := State{LastScaleUp: noon}
	d, next := Decide(c, s, Observation{At: noon.Add(4 * time.Minute), Backlog: 20, Capacity: 2})
	if d.Changed() || !strings.Contains(d.Reason, "cooling down") || next.LastScaleUp != noon {
		t.Fatalf("in cooldown: %+v, state %+v", d, next)
	}
	d, next = Decide(c, State{}, Observation{At: noon, Backlog: 500, Capacity: 10})
	if d.Changed() || !strings.Contains(d.Reason, "at maximum 10") || !next.LastScaleUp.IsZero() {
		t.Fatalf("at max: %+v, state %+v: a refused scale-up must not start a cooldown", d, next)
	}
	d, _ = Decide(c, State{}, Observation{At: noon, Backlog: 500, Capacity: 9})
	if d.Desired != 10 {
		t.Fatalf("+3 from 9: desired %d, want the max 10", d.Desired)
	}
}

func TestDecideClampsToMinAndMax(t *testing.T) {
	c := DefaultConfig()
	d, s := Decide(c, State{}, Observation{At: noon, Backlog: 0, Capacity: 0})
	if d.Desired != 1 || !strings.Contains(d.Reason, "below minimum") || !s.LastScaleUp.Equal(noon) {
		t.Fatalf("capacity 0: %+v %+v", d, s)
	}
	d, s = Decide(c, State{}, Observation{At: noon, Backlog: 100, Capacity: 14})
	if d.Desired != 10 || !s.LastScaleDown.Equal(noon) {
		t.Fatalf("capacity 14: %+v %+v", d, s)
	}
}

func TestDecideScaleInHold(t *testing.T) {
	c := DefaultConfig()
	low := constant(2)
	if got := changesAt(noon, replay(c, 3, noon, every(30*time.Second, 35*time.Minute, low))); got != "10m0s:2 20m0s:1" {
		t.Fatalf("steady low backlog: changes %q, want -1 at 10m and 20m, then hold at min", got)
	}
	// A backlog of 3 (not under 3) at 9 min breaks the hold; it restarts
	// at the next low observation.
	blip := func(at time.Duration) int64 {
		if at == 9*time.Minute {
			return 3
		}
		return 2
	}
	if got := changesAt(noon, replay(c, 3, noon, every(30*time.Second, 20*time.Minute, blip))); got != "19m30s:2" {
		t.Fatalf("interrupted hold: changes %q, want one -1 at 19m30s", got)
	}
}

func TestTrackHold(t *testing.T) {
	c := DefaultConfig()
	s := Track(c, State{}, Observation{At: noon, Backlog: 1})
	s = Track(c, s, Observation{At: noon.Add(time.Minute), Backlog: 0})
	if !s.LowSince.Equal(noon) {
		t.Fatalf("low since %v, want %v", s.LowSince, noon)
	}
	if s = Track(c, s, Observation{At: noon.Add(2 * time.Minute), Backlog: 7}); !s.LowSince.IsZero() {
		t.Fatalf("hold not reset by backlog 7: %v", s.LowSince)
	}
}

func TestBoundsAtNightWindow(t *testing.T) {
	c := DefaultConfig()
	c.Windows = []Window{{Start: "02:00", End: "07:00", Max: 2}, {Start: "23:00", End: "01:00", Max: 4}, {Start: "03:00", End: "04:00", Max: 0}}
	for _, tc := range []struct {
		clock    string
		min, max int
	}{
		{"01:59", 1, 10}, {"02:00", 1, 2}, {"03:30", 0, 0}, {"06:59", 1, 2}, {"07:00", 1, 10},
		{"23:30", 1, 4}, {"00:30", 1, 4}, {"01:00", 1, 10},
	} {
		at, _ := time.ParseInLocation("2006-01-02 15:04", "2025-01-06 "+tc.clock, seoul)
		b := c.BoundsAt(at.UTC()) // the zone comes from the config, not the time
		if b.Min != tc.min || b.Max != tc.max {
			t.Errorf("%s KST: bounds %d-%d, want %d-%d", tc.clock, b.Min, b.Max, tc.min, tc.max)
		}
	}
}

func TestDecideNightWindowCapsAndScalesDown(t *testing.T) {
	c := DefaultConfig()
	night := time.Date(2025, 1, 6, 2, 0, 0, 0, seoul)
	d, _ := Decide(c, State{}, Observation{At: night, Backlog: 0, Capacity: 5})
	if d.Desired != 2 || !strings.Contains(d.Reason, "window 02:00-07:00") {
		t.Fatalf("02:00 with 5: %+v, want 2 (window max)", d)
	}
	d, _ = Decide(c, State{}, Observation{At: night, Backlog: 80, Capacity: 2})
	if d.Changed() {
		t.Fatalf("scale-up past the window max: %+v", d)
	}
	d, _ = Decide(c, State{}, Observation{At: night.Add(5 * time.Hour), Backlog: 80, Capacity: 2})
	if d.Desired != 5 {
		t.Fatalf("07:00 with backlog 80: %+v, want +3", d)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	c := DefaultConfig()
	c.Min, c.Max = 5, 2
	c.ScaleUp = append(c.ScaleUp, Rule{Above: 10, Step: 0})
	c.TimeZone = "Mars/Olympus"
	c.Windows = append(c.Windows, Window{Start: "25:00", End: "07:00"})
	c.PollInterval = 0
	err := c.Validate()
	for _, want := range []string{"min 5 and max 2", "step >= 1", "two scale-up rules", "Mars/Olympus", "25:00", "poll interval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

func TestParseRulesAndWindows(t *testing.T) {
	rules, err := ParseRules("10:1:5m, 50:+3:3m")
	if err != nil || len(rules) != 2 || rules[1] != (Rule{Above: 50, Step: 3, Cooldown: 3 * time.Minute}) {
		t.Fatalf("rules %+v, %v", rules, err)
	}
	def := DefaultConfig()
	if rules[0] != def.ScaleUp[0] || rules[1] != def.ScaleUp[1] {
		t.Fatalf("the deployment guide's rules written out parse to %+v, not the defaults %+v", rules, def.ScaleUp)
	}
	windows, err := ParseWindows("02:00-07:00=2,23:00-01:00=4")
	if err != nil || len(windows) != 2 || windows[0] != def.Windows[0] || windows[1] != (Window{Start: "23:00", End: "01:00", Max: 4}) {
		t.Fatalf("windows %+v, %v", windows, err)
	}
	if w, err := ParseWindows(" "); err != nil || w != nil {
		t.Fatalf("empty windows: %v %v", w, err)
	}
	for _, bad := range []string{"10:1", "x:1:5m", "10:1:5", ""} {
		if _, err := ParseRules(bad); err == nil {
			t.Errorf("rules %q accepted", bad)
		}
	}
	for _, bad := range []string{"02:00-07:00", "2-7=1", "02:00=1", "02:00-07:00=x"} {
		if _, err := ParseWindows(bad); err == nil {
			t.Errorf("windows %q accepted", bad)
		}
	}
}

// A tier allowed to scale to zero wakes for its first job, and goes back to
// zero once the backlog has been low for the hold.
func TestDecideWakesFromZero(t *testing.T) {
	c := DefaultConfig()
	c.Min, c.Windows = 0, nil
	d, s := Decide(c, State{}, Observation{At: noon, Backlog: 0, Capacity: 0})
	if d.Changed() {
		t.Fatalf("idle tier at zero: %+v", d)
	}
	d, s = Decide(c, s, Observation{At: noon.Add(time.Minute), Backlog: 1, Capacity: 0})
	if d.Desired != 1 {
		t.Fatalf("one job waiting at zero: desired %d (%s)", d.Desired, d.Reason)
	}
	d, s = Decide(c, s, Observation{At: noon.Add(2 * time.Minute), Backlog: 0, Capacity: 1})
	if d.Changed() {
		t.Fatalf("just woken: %+v", d)
	}
	d, _ = Decide(c, s, Observation{At: noon.Add(13 * time.Minute), Backlog: 0, Capacity: 1})
	if d.Desired != 0 {
		t.Fatalf("low for 11 minutes: desired %d (%s)", d.Desired, d.Reason)
	}
}
