package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/easel/easel/internal/costmodel"
)

// runCostCLI runs `easel cost --json` with args and decodes its report.
func runCostCLI(t *testing.T, args ...string) (costmodel.Report, error) {
	t.Helper()
	cmd := costCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs(append([]string{"--json"}, args...))
	if err := cmd.Execute(); err != nil {
		return costmodel.Report{}, err
	}
	var r costmodel.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("decode report: %v\n%s", err, out.String())
	}
	return r, nil
}

// Per-tier flags are key=value lists; a floor given for one tier keeps the
// others' defaults.
func TestCostFlags(t *testing.T) {
	def := costmodel.Defaults()
	r, err := runCostCLI(t, "--tier-mix", "t4=0.5,a10g=0.5", "--min-instances", "a10g=1", "--fixed", "rds=280")
	if err != nil {
		t.Fatal(err)
	}
	in := r.Inputs
	if in.TierMix["t4"] != 0.5 || in.TierMix["a10g"] != 0.5 || len(in.TierMix) != 2 {
		t.Errorf("tier mix = %v", in.TierMix)
	}
	if in.MinInstances["a10g"] != 1 || in.MinInstances["t4"] != def.MinInstances["t4"] {
		t.Errorf("floors = %v, want a10g=1 and t4 at its default %d", in.MinInstances, def.MinInstances["t4"])
	}
	for _, bad := range [][]string{{"--tier-mix", "t4"}, {"--tier-mix", "t4=x"}, {"--min-instances", "t4=1.5"},
		{"--seconds", "h100=3"}, {"--fixed", "nope=1"}} {
		if _, err := runCostCLI(t, bad...); err == nil {
			t.Errorf("easel cost %s accepted", strings.Join(bad, " "))
		}
	}
}
