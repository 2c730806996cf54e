package autoscale

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// WorkflowName is the registered name of Autoscaler.
const WorkflowName = "Autoscaler"

// WorkflowID is the id of a tier's autoscaler: one per tier, so a second
// start finds the first instead of doubling the scaling.
func WorkflowID(tier string) string { return "autoscaler/" + tier }

// Autoscaler query and updates.
const (
	StateQuery      = "state"
	SetConfigUpdate = "set_config"
	PauseUpdate     = "pause"
	ResumeUpdate    = "resume"
)

// Outcomes of a decision that asked for a change.
const (
	OutcomeApplied = "applied"
	OutcomePaused  = "paused"
)

// maxDecisions bounds the recent decisions carried through continue-as-new.
const maxDecisions = 20

// Input starts a tier's autoscaler and carries its state through
// continue-as-new; a caller sets Tier and Config and leaves the rest zero.
type Input struct {
	Tier        string
	Config      Config
	Paused      bool
	PauseReason string
	State       State
	// Decisions are the recent decisions that asked for a change, newest
	// last, with their outcome.
	Decisions []Record
	// History is the load the autoscaler has seen over the last two
	// weeks, which PolicyWork's floor forecasts from.
	History *History `json:",omitempty"`
}

// Record is a decision and what became of it: OutcomeApplied, OutcomePaused
// or the error that stopped it.
type Record struct {
	Decision
	Outcome string
}

// Status answers the state query.
type Status struct {
	Tier        string
	Paused      bool
	PauseReason string
	Current     int // capacity at the last observation, or as last set
	Desired     int // what the rules want now
	Reason      string
	Observed    Observation // the last observation, forecast included
	ObserveErr  string      // why the last observation failed; empty when it did not
	Bounds      Bounds
	State       State
	Config      Config
	Decisions   []Record
	Polls       int // polls in this run
	// WarmPool is the warm pool as last configured, WarmPoolErr why that
	// failed.
	WarmPool    WarmPoolStatus
	WarmPoolErr string `json:",omitempty"`
}

// PauseRequest stops scaling; the autoscaler keeps observing.
type PauseRequest struct{ Reason string }

// autoscaler is the state of one run.
type autoscaler struct {
	in         Input
	polls      int
	last       Decision
	observed   Observation
	current    int // capacity as observed, or as set since
	observeErr string
	wake       bool // a config change or a resume polls at once
	// warmPoolDone says the warm pool is configured for the current
	// config; a config change clears it.
	warmPoolDone bool
	warmPool     WarmPoolStatus
	warmPoolErr  string
}

// Autoscaler sizes one GPU tier: every poll interval it reads the tier's
// backlog, applies Decide and sets the capacity when it changes. It never
// ends: every Config.ContinueAsNewEvery polls it continues as new with its
// state, so its history stays bounded.
func Autoscaler(ctx workflow.Context, in Input) error {
	if err := validateInput(in); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), "AutoscaleInvalidInput", err)
	}
	a := &autoscaler{in: in}
	if err := a.register(ctx); err != nil {
		return err
	}
	for a.polls < a.in.Config.ContinueAsNewEvery && !workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
		a.configureWarmPool(ctx)
		a.poll(ctx)
		a.showDetails(ctx)
		a.polls++
		if err := a.sleep(ctx); err != nil {
			return err
		}
	}
	// Updates accepted in this run must finish before the run closes.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	return workflow.NewContinueAsNewError(ctx, Autoscaler, a.in)
}

func validateInput(in Input) error {
	if in.Tier == "" {
		return errors.New("autoscaler input: tier is required")
	}
	if err := in.Config.Validate(); err != nil {
		return fmt.Errorf("autoscaler config of tier %s: %w", in.Tier, err)
	}
	return nil
}

// sleep waits one poll interval, or less when a config change or a resume
// should take effect now.
func (a *autoscaler) sleep(ctx workflow.Context) error {
	_, err := workflow.AwaitWithTimeout(ctx, a.in.Config.PollInterval, func() bool { return a.wake })
	a.wake = false
	return err
}

// poll observes the tier, decides and applies. A failed activity never
// fails the workflow: the next poll tries again.
func (a *autoscaler) poll(ctx workflow.Context) {
	o, err := a.observe(ctx)
	if err != nil {
		// Nobody saw the backlog meanwhile, so the scale-in hold restarts.
		a.observeErr, a.in.State.LowSince = err.Error(), time.Time{}
		workflow.GetLogger(ctx).Warn("autoscaler observe failed", "tier", a.in.Tier, "error", err)
		return
	}
	a.observeErr, a.current = "", o.Capacity
	a.learn(&o)
	a.observed = o
	if a.in.Paused {
		a.in.State = Track(a.in.Config, a.in.State, o)
		a.last = Decision{At: o.At, Backlog: o.Backlog, BacklogAge: o.BacklogAge, Current: o.Capacity,
			Desired: o.Capacity, Reason: OutcomePaused}
		return
	}
	d, next := Decide(a.in.Config, a.in.State, o)
	a.last = d
	if !d.Changed() {
		a.in.State = next
		return
	}
	if err := a.setCapacity(ctx, d); err != nil {
		// The change did not happen: no cooldown starts.
		a.in.State = Track(a.in.Config, a.in.State, o)
		a.remember(Record{Decision: d, Outcome: err.Error()})
		workflow.GetLogger(ctx).Error("autoscaler set capacity failed", "tier", a.in.Tier, "error", err)
		return
	}
	a.in.State, a.current = next, d.Desired
	a.remember(Record{Decision: d, Outcome: OutcomeApplied})
}

// learn records the observation's busy GPUs in the history, where the
// driver reports them, and gives the observation the history's forecast
// when the policy holds a floor.
func (a *autoscaler) learn(o *Observation) {
	c := a.in.Config
	if o.InstancesKnown {
		if a.in.History == nil {
			a.in.History = NewHistory()
		}
		a.in.History.Record(o.At, o.BusyGPUs, c.PollInterval)
	}
	if c.Policy == PolicyWork && c.Work.FloorShare > 0 {
		o.Forecast, o.ForecastKnown = a.in.History.Forecast(o.At, c.Work.FloorLead)
	}
}

// configureWarmPool has the driver keep the configured warm pool, once
// per run and after each config change. A failure is kept for the state
// query and retried at the next change or run; it never stops scaling.
func (a *autoscaler) configureWarmPool(ctx workflow.Context) {
	if a.warmPoolDone {
		return
	}
	a.warmPoolDone = true
	if a.in.Config.WarmPool <= 0 {
		return
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             fmt.Sprintf("%s warm pool: %d prepared", a.in.Tier, a.in.Config.WarmPool),
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, MaximumAttempts: 3,
			NonRetryableErrorTypes: []string{ErrUnknownTier, ErrInvalidCapacity}},
	})
	var st WarmPoolStatus
	err := workflow.ExecuteActivity(actx, acts.ConfigureWarmPool, WarmPoolInput{Tier: a.in.Tier, Prepared: a.in.Config.WarmPool}).Get(ctx, &st)
	a.warmPool, a.warmPoolErr = st, ""
	if err != nil {
		a.warmPoolErr = err.Error()
		workflow.GetLogger(ctx).Error("autoscaler warm pool failed", "tier", a.in.Tier, "error", err)
	}
}

// showDetails sets the workflow's current details, which Temporal UI
// shows on the autoscaler's page: the fleet, the backlog by class and the
// last decision with its reason.
func (a *autoscaler) showDetails(ctx workflow.Context) {
	o, d := a.observed, a.last
	var b strings.Builder
	fmt.Fprintf(&b, "**%s**: %d on-demand", a.in.Tier, a.current)
	if o.Spot > 0 || d.SpotDesired > 0 {
		fmt.Fprintf(&b, ", %d spot (%d short)", o.Spot, o.SpotShort)
	}
	if d.Floor > 0 {
		fmt.Fprintf(&b, "; floor %d (last week %.1f GPUs busy)", d.Floor, o.Forecast)
	}
	if a.in.Config.WarmPool > 0 {
		fmt.Fprintf(&b, "; warm pool %d prepared, %d stopped", a.warmPool.Prepared, a.warmPool.Warm)
	}
	fmt.Fprintf(&b, "\n\nbacklog %d: paid %d (oldest %s), Free %d (oldest %s)", o.Backlog, o.paid().Count, o.paid().Age,
		o.Free.Count, o.Free.Age)
	switch {
	case a.observeErr != "":
		fmt.Fprintf(&b, "\n\nobserve failed: %s", a.observeErr)
	case a.in.Paused:
		fmt.Fprintf(&b, "\n\npaused: %s", a.in.PauseReason)
	case d.Reason != "":
		fmt.Fprintf(&b, "\n\n%s: %s", d.At.Format(time.TimeOnly), d.Reason)
	}
	if a.warmPoolErr != "" {
		fmt.Fprintf(&b, "\n\nwarm pool failed: %s", a.warmPoolErr)
	}
	workflow.SetCurrentDetails(ctx, b.String())
}

func (a *autoscaler) observe(ctx workflow.Context) (Observation, error) {
	var o Observation
	err := workflow.ExecuteActivity(observeContext(ctx, a.in.Config.PollInterval), acts.ObserveTier,
		ObserveInput{Tier: a.in.Tier}).Get(ctx, &o)
	if err != nil {
		return o, fmt.Errorf("observe tier %s: %w", a.in.Tier, err)
	}
	o.At = workflow.Now(ctx)
	return o, nil
}

func (a *autoscaler) setCapacity(ctx workflow.Context, d Decision) error {
	in := SetCapacityInput{Tier: a.in.Tier, Capacity: d.Desired, Spot: d.SpotDesired,
		SpotSet: d.SpotDesired != d.SpotCurrent, Reason: d.Reason}
	err := workflow.ExecuteActivity(setCapacityContext(ctx, d.summary(a.in.Tier)), acts.SetTierCapacity, in).Get(ctx, nil)
	if err != nil {
		return fmt.Errorf("set capacity of tier %s to %d (spot %d): %w", a.in.Tier, d.Desired, d.SpotDesired, err)
	}
	return nil
}

func (a *autoscaler) remember(r Record) {
	a.in.Decisions = append(a.in.Decisions, r)
	if n := len(a.in.Decisions); n > maxDecisions {
		a.in.Decisions = append([]Record(nil), a.in.Decisions[n-maxDecisions:]...)
	}
}

// observeContext gives up within one poll interval: a stale backlog is worth
// less than the next poll's fresh one.
func observeContext(ctx workflow.Context, interval time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    15 * time.Second,
		ScheduleToCloseTimeout: max(interval, 20*time.Second),
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
}

// setCapacityContext allows for a local pool stopping a worker mid-render;
// errors the configuration causes are not retried. The summary is the
// activity's line in Temporal UI's timeline.
func setCapacityContext(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, MaximumAttempts: 5,
			NonRetryableErrorTypes: []string{ErrUnknownTier, ErrInvalidCapacity}},
	})
}

// Nil receiver names the activities; the worker registers the real ones.
var acts *Activities

// register installs the query and the updates with their validators: a
// refused update writes nothing to history.
func (a *autoscaler) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, StateQuery, a.status); err != nil {
		return fmt.Errorf("register state query: %w", err)
	}
	updates := []struct {
		name      string
		handler   any
		validator any
	}{
		{SetConfigUpdate, a.setConfig, a.validateConfig},
		{PauseUpdate, a.pause, a.validatePause},
		{ResumeUpdate, a.resume, a.validateResume},
	}
	for _, u := range updates {
		opts := workflow.UpdateHandlerOptions{Validator: u.validator}
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler, opts); err != nil {
			return fmt.Errorf("register %s update: %w", u.name, err)
		}
	}
	return nil
}

func (a *autoscaler) status() (Status, error) {
	return Status{Tier: a.in.Tier, Paused: a.in.Paused, PauseReason: a.in.PauseReason,
		Current: a.current, Desired: a.last.Desired, Reason: a.last.Reason,
		Observed: a.observed, ObserveErr: a.observeErr, Bounds: a.in.Config.BoundsAt(a.last.At), State: a.in.State,
		Config: a.in.Config, Decisions: a.in.Decisions, Polls: a.polls, WarmPool: a.warmPool, WarmPoolErr: a.warmPoolErr}, nil
}

func (a *autoscaler) validateConfig(c Config) error { return c.Validate() }

func (a *autoscaler) setConfig(_ workflow.Context, c Config) (Status, error) {
	a.in.Config, a.wake, a.warmPoolDone = c, true, false
	return a.status()
}

func (a *autoscaler) validatePause(PauseRequest) error {
	if a.in.Paused {
		return errors.New("autoscaler is already paused")
	}
	return nil
}

func (a *autoscaler) pause(_ workflow.Context, req PauseRequest) (Status, error) {
	a.in.Paused, a.in.PauseReason = true, req.Reason
	return a.status()
}

func (a *autoscaler) validateResume() error {
	if !a.in.Paused {
		return errors.New("autoscaler is not paused")
	}
	return nil
}

func (a *autoscaler) resume(workflow.Context) (Status, error) {
	a.in.Paused, a.in.PauseReason, a.wake = false, "", true
	return a.status()
}
