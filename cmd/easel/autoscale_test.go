package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/easel/easel/internal/autoscale"
	"github.com/easel/easel/internal/config"
	"github.com/easel/easel/workflows"
)

// The work policy's knobs are environment, checked before the control
// worker starts any autoscaler.
func TestAutoscalePolicyFromEnvironment(t *testing.T) {
	t.Setenv("AUTOSCALE_POLICY", "work")
	t.Setenv("AUTOSCALE_UP_AGE", "5s")
	t.Setenv("AUTOSCALE_UP_WAIT", "45s")
	t.Setenv("AUTOSCALE_IDLE_FOR", "3m")
	t.Setenv("AUTOSCALE_BILLING_PERIOD", "1h")
	t.Setenv("AUTOSCALE_BILLING_MARGIN", "4m")
	t.Setenv("AUTOSCALE_FREE_UP_AGE", "2m")
	t.Setenv("AUTOSCALE_FLOOR", "0.9")
	t.Setenv("AUTOSCALE_FLOOR_LEAD", "15m")
	t.Setenv("AUTOSCALE_GROUPS", "t4=easel-gpu-t4,a10g=easel-gpu-a10g")
	t.Setenv("AUTOSCALE_SPOT_GROUPS", "t4=easel-gpu-t4-spot")
	t.Setenv("AUTOSCALE_WARM_POOL", "t4=10")
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	p, err := autoscalePolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := autoscale.WorkPolicy{UpAge: 5 * time.Second, UpWait: 45 * time.Second, FreeUpAge: 2 * time.Minute, Drain: 4 * time.Minute,
		IdleFor: 3 * time.Minute, BillingPeriod: time.Hour, BillingMargin: 4 * time.Minute, BillingMinimum: time.Minute,
		FloorShare: 0.9, FloorLead: 15 * time.Minute}
	if p.Policy != autoscale.PolicyWork || p.Work != want {
		t.Fatalf("policy %q, work %+v", p.Policy, p.Work)
	}
	// Per tier: the spot group turns spot on, the warm pool is the tier's.
	t4, err := tierPolicy(p, "t4", cfg)
	if err != nil {
		t.Fatal(err)
	}
	a10g, err := tierPolicy(p, "a10g", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !t4.Work.Spot || t4.WarmPool != 10 || a10g.Work.Spot || a10g.WarmPool != 0 {
		t.Fatalf("t4 spot %t warm pool %d, a10g spot %t warm pool %d", t4.Work.Spot, t4.WarmPool, a10g.Work.Spot, a10g.WarmPool)
	}
	if d := ec2Driver(aws.Config{}, nil, cfg); d.SpotGroups["t4"] != "easel-gpu-t4-spot" || d.ReportsFleet() {
		t.Fatalf("driver: spot groups %v, reports its fleet %t without AUTOSCALE_HOST_ACTIVITY", d.SpotGroups, d.ReportsFleet())
	}
	t.Setenv("AUTOSCALE_DRAIN", "0s")
	t.Setenv("AUTOSCALE_BILLING_MARGIN", "0s")
	t.Setenv("AUTOSCALE_FLOOR", "-1")
	if cfg, err = config.Load(); err != nil {
		t.Fatal(err)
	}
	_, err = autoscalePolicy(cfg)
	for _, want := range []string{"drain", "billing period", "floor share -1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %s refused", err, want)
		}
	}
	// The fleet settings are checked with the rest of the configuration.
	t.Setenv("AUTOSCALE_SPOT_GROUPS", "a100=easel-gpu-a100-spot")
	t.Setenv("AUTOSCALE_WARM_POOL", "t4=-1")
	t.Setenv("AUTOSCALE_HOST_ACTIVITY", "guess")
	if cfg, err = config.Load(); err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate(config.Needs{})
	for _, want := range []string{"spot group for a100", "AUTOSCALE_WARM_POOL=t4=-1", "AUTOSCALE_HOST_ACTIVITY"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
	}
}

// Every simulation prints the baseline rules beside the policy, the static
// fleet and the floor, and says how the policy compares; the policy's floor
// forecasts from the built-in trace's previous week, and waits are split
// between paid and Free renders.
func TestAutoscaleSimulatePrintsBaseline(t *testing.T) {
	for _, trace := range autoscale.TraceNames() {
		cmd := autoscaleCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs([]string{"simulate", "--trace", trace})
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"trace " + trace, "baseline rules", "work + warm pool", "static at peak", "x floor", "floor (images x 20s)", "vs baseline rules: ",
			"renders: 50% Free", "paid p95 / max", "Free p95 / max", "floor 80% of last week's load 10m0s ahead (history: " + trace} {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("%s: output lacks %q:\n%s", trace, want, out.String())
			}
		}
		if strings.Contains(out.String(), "worse on both") {
			t.Fatalf("%s:\n%s", trace, out.String())
		}
	}
	cmd := autoscaleCommand()
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"simulate", "--policy", "guess"})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), `--policy "guess"`) {
		t.Fatalf("err = %v", err)
	}
	// A misspelt trace lists the built-in ones; bounds are reported once.
	for args, want := range map[string]string{
		"--trace diurnl":  `--trace "diurnl" is neither a built-in trace (diurnal, burst, bursty, launch-day) nor a file`,
		"--min 5 --max 2": "--max 2: want at least 1 and at least --min",
	} {
		cmd := autoscaleCommand()
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs(append([]string{"simulate"}, strings.Fields(args)...))
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), want) || strings.Count(err.Error(), want) != 1 {
			t.Errorf("%s: err = %v, want %q once", args, err, want)
		}
	}
}

// The autoscaler reads Free renders at the key the API gives them.
func TestAutoscaleFreePriorityKeyMatchesWorkflows(t *testing.T) {
	if autoscale.FreePriorityKey != workflows.PriorityFree || workflows.PriorityStandard >= workflows.PriorityFree {
		t.Fatalf("autoscale.FreePriorityKey %d, workflows.PriorityFree %d, PriorityStandard %d",
			autoscale.FreePriorityKey, workflows.PriorityFree, workflows.PriorityStandard)
	}
}

// --history chooses what the floor forecasts from, and --spot puts the
// floor on spot with refusals covered on-demand.
func TestAutoscaleSimulateHistoryAndSpot(t *testing.T) {
	run := func(args ...string) string {
		t.Helper()
		cmd := autoscaleCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs(append([]string{"simulate"}, args...))
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	for args, want := range map[string]string{
		"--history none":                          "(history: none)",
		"--history same-day":                      "(history: diurnal (shifted), 13392 images)",
		"--trace launch-day":                      "(history: launch-day (previous week, no launch)",
		"--spot --spot-refused 0.3":               "floor on spot, EC2 refusing spot capacity 30% of half hours",
		"--floor 0 --free-share 0 --idle-for 90s": "renders: 0% Free",
	} {
		if out := run(strings.Fields(args)...); !strings.Contains(out, want) {
			t.Errorf("%s: output lacks %q:\n%s", args, want, out)
		}
	}
}

// simulateErr runs `autoscale simulate` with args and returns its error.
func simulateErr(ctx context.Context, args ...string) error {
	cmd := autoscaleCommand()
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs(append([]string{"simulate"}, args...))
	return cmd.ExecuteContext(ctx)
}

// Values the help does not allow are refused by flag, all in one error,
// before anything runs; where 0 means "the default" it stays allowed.
func TestAutoscaleSimulateRefusesBadFlags(t *testing.T) {
	for args, want := range map[string]string{
		"--peak -5":             "--peak -5: want",
		"--peak NaN":            "--peak NaN: want",
		"--service-time -1s":    "--service-time -1s: want",
		"--service-time 500ms":  "--service-time 500ms: want at least 1s",
		"--free-share -1":       "--free-share -1: want a share from 0 to 1",
		"--free-share -0.5":     "--free-share -0.5: want",
		"--free-share 2":        "--free-share 2: want",
		"--policy foo":          `--policy "foo": want work or rules`,
		"--warm-pool -1":        "--warm-pool -1: want",
		"--keep-for -1s":        "--keep-for -1s: want 0 or more",
		"--tier h100":           `--tier "h100": want one of`,
		"--poll 0s":             "--poll 0s: want at least 1s",
		"--drain 0s":            "--drain 0s: want at least 1s",
		"--floor 5":             "--floor 5: want",
		"--spot-discount 1":     "--spot-discount 1: want",
		"--boot-delay -1m":      "--boot-delay -1m0s: want",
		"--start tomorrow":      `--start "tomorrow": want 2006-01-02T15:04`,
		"--timezone Mars/Base":  "--timezone: ",
		"--history nowhere.csv": `--history "nowhere.csv": want last-week, same-day, none or a CSV file`,
		"--billing-period 1h":   "--billing-margin 0s: want above 0 and at most --billing-period 1h0m0s",
	} {
		err := simulateErr(t.Context(), strings.Fields(args)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", args, err, want)
			continue
		}
		for _, internal := range []string{"history trace", "{", "billing minimum", "tier spec"} {
			if strings.Contains(err.Error(), internal) {
				t.Errorf("%s: err = %v names %q, not the flag", args, err, internal)
			}
		}
	}
	// All together, each once.
	err := simulateErr(t.Context(), "--peak", "-5", "--service-time", "0.5s", "--free-share", "-1", "--policy", "foo",
		"--warm-pool", "-1", "--keep-for", "-1s", "--trace", "diurnl")
	for _, flag := range []string{"--peak", "--service-time", "--free-share", "--policy", "--warm-pool", "--keep-for", "--trace"} {
		if err == nil || strings.Count(err.Error(), flag+" ") != 1 {
			t.Errorf("err = %v, want %s named once", err, flag)
		}
	}
	// 0 for --peak and --service-time means the tier's default; the
	// default --free-share is the tier's; --free-share 0 is no Free renders.
	cmd := autoscaleCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"simulate", "--trace", "burst", "--peak", "0", "--service-time", "0s", "--free-share", "0", "--history", "none"})
	if err := cmd.ExecuteContext(t.Context()); err != nil || !strings.Contains(out.String(), "20s per image") || !strings.Contains(out.String(), "renders: 0% Free") {
		t.Fatalf("err = %v, output:\n%s", err, out.String())
	}
}

// Ctrl-C and SIGTERM cancel the command's context (main's
// signal.NotifyContext): the simulation stops and the command fails
// rather than running on to the end and succeeding.
func TestAutoscaleSimulateStopsOnSignal(t *testing.T) {
	var csv strings.Builder
	for m := range 31 * 24 * 60 {
		fmt.Fprintf(&csv, "%d,200\n", m)
	}
	path := filepath.Join(t.TempDir(), "month.csv")
	if err := os.WriteFile(path, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	began := time.Now()
	err := simulateErr(ctx, "--trace", path)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the simulation cancelled", err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Fatalf("the simulation stopped %s after it began", took)
	}
	// A trace over the image limit is refused before it runs, naming it.
	if err := os.WriteFile(path, []byte("0,100000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := simulateErr(t.Context(), "--trace", path); err == nil || !strings.Contains(err.Error(), "more than 10000000 images") {
		t.Fatalf("err = %v, want the image limit", err)
	}
}

// Every bad autoscaling setting is reported in one error, not one a start.
func TestAutoscalePolicyReportsEveryBadSetting(t *testing.T) {
	cfg := config.Config{AutoscaleUpRules: "x", AutoscaleWindows: "bad", AutoscaleTimeZone: "Mars/Base",
		AutoscaleMin: 5, AutoscaleMax: 2, AutoscalePollInterval: 30 * time.Second, AutoscaleInBelow: 3,
		AutoscaleInFor: 10 * time.Minute, AutoscalePolicy: "rules"}
	_, err := autoscalePolicy(cfg)
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{"AUTOSCALE_UP_RULES", "AUTOSCALE_WINDOWS", "Mars/Base", "min 5 and max 2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not report %q: %v", want, err)
		}
	}
}
