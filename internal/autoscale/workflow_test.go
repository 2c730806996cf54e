package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// fakeTier is a tier behind mocked activities: a backlog by time, a
// capacity that SetTierCapacity changes, and failures on demand.
type fakeTier struct {
	testsuite.WorkflowTestSuite
	env         *testsuite.TestWorkflowEnvironment
	start       time.Time
	capacity    int
	backlog     func(at time.Duration) int64
	sets        []string // "offset:capacity"
	failObserve func(at time.Duration) bool
	failSet     func(n int) bool
	setCalls    int
	frozen      bool // SetTierCapacity succeeds but the capacity stays
	// fleet makes ObserveTier report instances as a FleetDriver does:
	// busy GPUs for the history, and a spot group.
	fleet bool
	busy  int
	spot  int
	warm  []int // prepared capacities ConfigureWarmPool was asked for
}

func newFakeTier(start time.Time, capacity int, backlog func(time.Duration) int64) *fakeTier {
	f := &fakeTier{start: start, capacity: capacity, backlog: backlog,
		failObserve: func(time.Duration) bool { return false }, failSet: func(int) bool { return false }}
	// The test environment logs every timer at debug; failures read better
	// with warnings only.
	f.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	return f
}

func (f *fakeTier) now() time.Duration { return f.env.Now().Sub(f.start) }

// newEnv builds an environment for one run starting at the given time.
func (f *fakeTier) newEnv(at time.Time) *testsuite.TestWorkflowEnvironment {
	f.env = f.NewTestWorkflowEnvironment()
	f.env.SetStartTime(at)
	f.env.RegisterWorkflowWithOptions(Autoscaler, workflow.RegisterOptions{Name: WorkflowName})
	f.env.RegisterActivity(&Activities{})
	f.env.OnActivity(acts.ObserveTier, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in ObserveInput) (Observation, error) {
			if f.failObserve(f.now()) {
				return Observation{}, errors.New("temporal unavailable")
			}
			b := f.backlog(f.now())
			return Observation{Backlog: b, BacklogAge: time.Minute, Capacity: f.capacity,
				BacklogWork: time.Duration(b) * 20 * time.Second, GPUs: 1,
				InstancesKnown: f.fleet, BusyGPUs: f.busy, Spot: f.spot}, nil
		})
	f.env.OnActivity(acts.ConfigureWarmPool, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in WarmPoolInput) (WarmPoolStatus, error) {
			f.warm = append(f.warm, in.Prepared)
			return WarmPoolStatus{Prepared: in.Prepared, Warm: in.Prepared - f.capacity, Changed: len(f.warm) == 1}, nil
		})
	f.env.OnActivity(acts.SetTierCapacity, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in SetCapacityInput) error {
			f.setCalls++
			if f.failSet(f.setCalls) {
				return temporal.NewNonRetryableApplicationError("refused", ErrInvalidCapacity, nil)
			}
			if !f.frozen {
				f.capacity = in.Capacity
			}
			if in.SpotSet {
				f.spot = in.Spot
				f.sets = append(f.sets, fmt.Sprintf("%s:%d+spot%d", f.now(), in.Capacity, in.Spot))
				return nil
			}
			f.sets = append(f.sets, fmt.Sprintf("%s:%d", f.now(), in.Capacity))
			return nil
		})
	return f.env
}

// run executes one run to its continue-as-new and returns the next input.
func (f *fakeTier) run(t *testing.T, in Input, at time.Time) Input {
	t.Helper()
	if f.env == nil {
		f.newEnv(at)
	}
	defer func() { f.env = nil }()
	f.env.ExecuteWorkflow(Autoscaler, in)
	if !f.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var can *workflow.ContinueAsNewError
	if err := f.env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow ended with %v, want continue-as-new", err)
	}
	var next Input
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	return next
}

func (f *fakeTier) setsAre(t *testing.T, want string) {
	t.Helper()
	if got := strings.Join(f.sets, " "); got != want {
		t.Fatalf("SetTierCapacity calls %q, want %q", got, want)
	}
}

// testConfig is the deployment guide's rules without the night window, for polls over
// the given span of one run.
func testConfig(span time.Duration) Config {
	c := DefaultConfig()
	c.Windows = nil
	c.ContinueAsNewEvery = int(span / c.PollInterval)
	return c
}

func input(c Config) Input { return Input{Tier: "t4", Config: c} }

func TestAutoscalerScaleUpOneCooldown(t *testing.T) {
	f := newFakeTier(noon, 1, constant(20))
	next := f.run(t, input(testConfig(15*time.Minute)), noon)
	f.setsAre(t, "0s:2 5m0s:3 10m0s:4")
	if len(next.Decisions) != 3 || next.Decisions[2].Outcome != OutcomeApplied || !strings.Contains(next.Decisions[2].Reason, "+1") {
		t.Fatalf("decisions %+v", next.Decisions)
	}
}

// The work policy is configuration of the same workflow: 20 renders of
// 20 s waiting a minute want 400 s of GPU time cleared within the 4 min
// Drain, +2; an EC2 group reports no booting instances, so the next +2
// waits one Drain. Each decision shows its GPU time.
func TestAutoscalerWorkPolicy(t *testing.T) {
	f := newFakeTier(noon, 1, constant(20))
	c := testConfig(10 * time.Minute)
	c.Policy, c.PollInterval, c.ContinueAsNewEvery = PolicyWork, 10*time.Second, 60
	next := f.run(t, input(c), noon)
	f.setsAre(t, "0s:3 4m0s:5 8m0s:7")
	if len(next.Decisions) != 3 || next.Config.Policy != PolicyWork || !strings.Contains(next.Decisions[0].Reason, "6m40s of GPU time") {
		t.Fatalf("decisions %+v", next.Decisions)
	}
}

// The floor comes from the history the input carries, recorded by the
// autoscaler's own polls a week earlier: it raises the tier before the
// load, on the spot group above the minimum; this week's polls go into
// the history the next run carries.
func TestAutoscalerFloorFromHistoryOnSpot(t *testing.T) {
	h := NewHistory()
	lastWeek := noon.Add(-week)
	for at := lastWeek.Add(-time.Hour); at.Before(lastWeek.Add(time.Hour)); at = at.Add(10 * time.Second) {
		h.Record(at, 5, 10*time.Second) // five GPUs busy around noon last week
	}
	f := newFakeTier(noon, 1, constant(0))
	f.fleet, f.busy = true, 3
	c := testConfig(time.Minute)
	c.Policy, c.PollInterval, c.ContinueAsNewEvery = PolicyWork, 10*time.Second, 6
	c.Work = DefaultWork()
	c.Work.Spot = true
	in := input(c)
	in.History = h
	next := f.run(t, in, noon)
	// ceil(0.8 x 5) = 4 hosts: the minimum on-demand, 3 on spot.
	f.setsAre(t, "0s:1+spot3")
	d := next.Decisions[0]
	if d.Floor != 4 || !strings.Contains(d.Reason, "floor 4 (last week 5.0 GPUs busy)") || !strings.Contains(d.Reason, "spot +3") {
		t.Fatalf("decision %+v", d)
	}
	w, i := slot(noon)
	if b := next.History.Cur[i]; b.Week != w || b.Busy != 6*10*3 || b.Covered != 60 {
		t.Fatalf("this week's bucket %+v: want six polls of 3 busy GPUs", b)
	}
}

func TestAutoscalerScaleUpThreeCooldownAndMax(t *testing.T) {
	f := newFakeTier(noon, 1, constant(60))
	f.run(t, input(testConfig(15*time.Minute)), noon)
	f.setsAre(t, "0s:4 3m0s:7 6m0s:10")
}

func TestAutoscalerMinClampAndExternalChange(t *testing.T) {
	f := newFakeTier(noon, 0, constant(0))
	env := f.newEnv(noon)
	// Someone raises the group by hand past the max: the next poll sees it.
	env.RegisterDelayedCallback(func() { f.capacity = 14 }, 2*time.Minute+time.Second)
	f.run(t, input(testConfig(5*time.Minute)), noon)
	f.setsAre(t, "0s:1 2m30s:10")
}

func TestAutoscalerScaleInHold(t *testing.T) {
	// Low except one poll at 5m: the hold restarts at 5m30s.
	f := newFakeTier(noon, 3, func(at time.Duration) int64 {
		if at == 5*time.Minute {
			return 5
		}
		return 2
	})
	f.run(t, input(testConfig(35*time.Minute)), noon)
	f.setsAre(t, "15m30s:2 25m30s:1")
}

func TestAutoscalerNightWindow(t *testing.T) {
	start := time.Date(2025, 1, 6, 1, 55, 0, 0, seoul)
	f := newFakeTier(start, 5, func(at time.Duration) int64 {
		if at < 35*time.Minute {
			return 0
		}
		return 100 // busy from 02:30: still capped at 2 until 07:00
	})
	c := DefaultConfig()
	c.ContinueAsNewEvery = int((5*time.Hour + 10*time.Minute) / c.PollInterval)
	f.run(t, input(c), start)
	// 02:00 caps at 2; the idle hold takes it to 1; the 02:30 surge gets
	// only back to the window's 2; 07:00 lifts the cap for +3 twice.
	f.setsAre(t, "5m0s:2 15m0s:1 35m0s:2 5h5m0s:5 5h8m0s:8")
}

func TestAutoscalerContinueAsNewCarriesState(t *testing.T) {
	f := newFakeTier(noon, 1, constant(20))
	c := testConfig(4 * time.Minute)
	next := f.run(t, input(c), noon)
	f.setsAre(t, "0s:2")
	if !next.State.LastScaleUp.Equal(noon) || len(next.Decisions) != 1 || next.Tier != "t4" || next.Config.ContinueAsNewEvery != c.ContinueAsNewEvery {
		t.Fatalf("carried input %+v", next)
	}
	// The second run starts 4 minutes in: the +1 cooldown from the first
	// run still holds until 5 minutes.
	next = f.run(t, next, noon.Add(4*time.Minute))
	f.setsAre(t, "0s:2 5m0s:3")
	if len(next.Decisions) != 2 || !next.State.LastScaleUp.Equal(noon.Add(5*time.Minute)) {
		t.Fatalf("second carried input %+v", next)
	}
}

func TestAutoscalerDecisionHistoryIsBounded(t *testing.T) {
	// The driver never reaches the min, so every poll decides again.
	f := newFakeTier(noon, 0, constant(0))
	f.frozen = true
	next := f.run(t, input(testConfig(30*time.Minute)), noon)
	if len(next.Decisions) != maxDecisions {
		t.Fatalf("%d decisions carried, want %d", len(next.Decisions), maxDecisions)
	}
}

var updateSeq int

// update sends an update with a fresh id and stores its refusal or failure.
func update(env *testsuite.TestWorkflowEnvironment, name string, out *error, args ...any) {
	updateSeq++
	env.UpdateWorkflow(name, fmt.Sprintf("%s-%d", name, updateSeq), &testsuite.TestUpdateCallback{
		OnReject: func(err error) { *out = err }, OnAccept: func() {}, OnComplete: func(_ any, err error) {
			if err != nil {
				*out = err
			}
		}}, args...)
}

func query(t *testing.T, env *testsuite.TestWorkflowEnvironment) Status {
	t.Helper()
	var s Status
	v, err := env.QueryWorkflow(StateQuery)
	if err != nil || v.Get(&s) != nil {
		t.Fatalf("state query: %v", err)
	}
	return s
}

func TestAutoscalerQueryUpdatesAndPause(t *testing.T) {
	f := newFakeTier(noon, 1, constant(20))
	env := f.newEnv(noon)
	var early, badConfig, pauseErr, pauseAgain, configErr, resumeErr error
	var atOne, atEnd Status
	env.RegisterDelayedCallback(func() {
		atOne = query(t, env)
		bad := testConfig(20 * time.Minute)
		bad.Min, bad.Max = 5, 2
		update(env, SetConfigUpdate, &badConfig, bad)
		update(env, ResumeUpdate, &early)
		update(env, PauseUpdate, &pauseErr, PauseRequest{Reason: "maintenance"})
		update(env, PauseUpdate, &pauseAgain, PauseRequest{Reason: "twice"})
	}, time.Minute+10*time.Second)
	env.RegisterDelayedCallback(func() {
		c := testConfig(20 * time.Minute)
		c.Max = 3
		update(env, SetConfigUpdate, &configErr, c)
	}, 8*time.Minute+10*time.Second)
	env.RegisterDelayedCallback(func() { update(env, ResumeUpdate, &resumeErr) }, 10*time.Minute+10*time.Second)
	env.RegisterDelayedCallback(func() { atEnd = query(t, env) }, 12*time.Minute+10*time.Second)
	f.run(t, input(testConfig(20*time.Minute)), noon)

	// Paused from 1m10s to 10m10s: the +1 due at 5m waits for the resume,
	// which polls at once; the new max 3 then holds it.
	f.setsAre(t, "0s:2 10m10s:3")
	if atOne.Current != 2 || atOne.Desired != 2 || atOne.Observed.Backlog != 20 || len(atOne.Decisions) != 1 || atOne.Tier != "t4" {
		t.Fatalf("state at 1m10s: %+v", atOne)
	}
	if badConfig == nil || early == nil || pauseErr != nil || pauseAgain == nil || configErr != nil || resumeErr != nil {
		t.Fatalf("updates: bad config %v, early resume %v, pause %v, pause again %v, config %v, resume %v",
			badConfig, early, pauseErr, pauseAgain, configErr, resumeErr)
	}
	if atEnd.Paused || atEnd.Config.Max != 3 || atEnd.Current != 3 || !strings.Contains(atEnd.Reason, "at maximum 3") {
		t.Fatalf("state at 12m10s: %+v", atEnd)
	}
}

// The warm pool is configured once a run and again after a config change;
// the state query shows it.
func TestAutoscalerConfiguresTheWarmPool(t *testing.T) {
	f := newFakeTier(noon, 1, constant(0))
	env := f.newEnv(noon)
	c := testConfig(10 * time.Minute)
	c.WarmPool = 10
	var configErr error
	var st Status
	env.RegisterDelayedCallback(func() {
		c := c
		c.WarmPool = 6
		update(env, SetConfigUpdate, &configErr, c)
	}, 2*time.Minute+time.Second)
	env.RegisterDelayedCallback(func() { st = query(t, env) }, 3*time.Minute+time.Second)
	next := f.run(t, input(c), noon)
	if configErr != nil || len(f.warm) != 2 || f.warm[0] != 10 || f.warm[1] != 6 {
		t.Fatalf("warm pool calls %v (config update %v), want 10 then 6", f.warm, configErr)
	}
	if st.WarmPool.Prepared != 6 || st.WarmPool.Warm != 5 || st.WarmPoolErr != "" {
		t.Fatalf("state %+v", st.WarmPool)
	}
	f.run(t, next, noon.Add(10*time.Minute))
	if len(f.warm) != 3 {
		t.Fatalf("the next run configured the warm pool %d times in all, want once more", len(f.warm))
	}
}

func TestAutoscalerSurvivesActivityFailures(t *testing.T) {
	f := newFakeTier(noon, 1, constant(20))
	f.failObserve = func(at time.Duration) bool { return at >= time.Minute && at < 3*time.Minute }
	f.failSet = func(n int) bool { return n == 2 }
	next := f.run(t, input(testConfig(10*time.Minute)), noon)
	if len(f.sets) != 2 || len(next.Decisions) != 3 {
		t.Fatalf("sets %v, decisions %+v", f.sets, next.Decisions)
	}
	refused, retried := next.Decisions[1], next.Decisions[2]
	if !strings.Contains(refused.Outcome, "refused") || retried.Outcome != OutcomeApplied || retried.Desired != 3 {
		t.Fatalf("decisions %+v", next.Decisions)
	}
	// The refused change started no cooldown: the very next poll retried it.
	if got := retried.At.Sub(refused.At); got != 30*time.Second {
		t.Fatalf("retried %s after the refusal, want one poll (30s)", got)
	}
}

func TestAutoscalerRejectsInvalidInput(t *testing.T) {
	f := newFakeTier(noon, 1, constant(0))
	env := f.newEnv(noon)
	env.ExecuteWorkflow(Autoscaler, Input{Tier: "t4"})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || !appErr.NonRetryable() {
		t.Fatalf("zero config: %v, want a non-retryable error", err)
	}
}
