package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/easel/easel/internal/autoscale"
	"github.com/easel/easel/internal/config"
	"github.com/easel/easel/workflows"
)

// The work policy's knobs are environment, checked before the control
// worker starts any autoscaler.
func TestAutoscalePolicyFromEnvironment(t *testing.T) {
	t.Setenv("AUTOSCALE_POLICY", "work")
	t.Setenv("AUTOSCALE_UP_AGE", "5s")
	t.Setenv("AUTOSCALE_IDLE_FOR", "3m")
	t.Setenv("AUTOSCALE_BILLING_PERIOD", "1h")
	t.Setenv("AUTOSCALE_BILLING_MARGIN", "4m")
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	p, err := autoscalePolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := autoscale.WorkPolicy{UpAge: 5 * time.Second, Drain: 4 * time.Minute, IdleFor: 3 * time.Minute,
		BillingPeriod: time.Hour, BillingMargin: 4 * time.Minute}
	if p.Policy != autoscale.PolicyWork || p.Work != want {
		t.Fatalf("policy %q, work %+v", p.Policy, p.Work)
	}
	t.Setenv("AUTOSCALE_DRAIN", "0s")
	t.Setenv("AUTOSCALE_BILLING_MARGIN", "0s")
	if cfg, err = config.Load(); err != nil {
		t.Fatal(err)
	}
	_, err = autoscalePolicy(cfg)
	if err == nil || !strings.Contains(err.Error(), "drain") || !strings.Contains(err.Error(), "billing period") {
		t.Fatalf("err = %v, want drain and billing period refused", err)
	}
}

// Every simulation prints the baseline rules beside the policy, the static
// fleet and the floor, and says how the policy compares.
func TestAutoscaleSimulatePrintsBaseline(t *testing.T) {
	for _, trace := range autoscale.TraceNames() {
		cmd := autoscaleCommand()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs([]string{"simulate", "--trace", trace})
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"trace " + trace, "baseline rules", "work + warm pool", "static at peak", "x floor", "floor (images x 20s)", "vs baseline rules: "} {
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
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), `policy "guess"`) {
		t.Fatalf("err = %v", err)
	}
}

// The autoscaler reads Free renders at the key the API gives them.
func TestAutoscaleFreePriorityKeyMatchesWorkflows(t *testing.T) {
	if autoscale.FreePriorityKey != workflows.PriorityFree || workflows.PriorityStandard >= workflows.PriorityFree {
		t.Fatalf("autoscale.FreePriorityKey %d, workflows.PriorityFree %d, PriorityStandard %d",
			autoscale.FreePriorityKey, workflows.PriorityFree, workflows.PriorityStandard)
	}
}
