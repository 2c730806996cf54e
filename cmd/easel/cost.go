package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/easel/easel/internal/costmodel"
)

type costOptions struct {
	in           costmodel.Inputs
	tierMix      map[string]string
	modelMix     map[string]string
	seconds      map[string]string
	minInstances map[string]int
	fixed        map[string]string
	noExtras     bool
	json         bool
}

// costCommand prints the monthly cost model (docs/cost.md).
func costCommand() *cobra.Command {
	o := costOptions{in: costmodel.Defaults()}
	def := o.in
	cmd := &cobra.Command{
		Use:   "cost",
		Short: "Monthly AWS cost, cost per 1,000 images and plan margins from the deployment guide's cost table",
		Long: `Models the deployment guide's monthly cost table (section 10.1, 100 daily active users,
~$1,580/month): GPU lines from demand (users x images, the tier and model
mixes, GPU seconds per image, a utilisation target, a per-tier floor, an
optional night window when the GPUs are off and a spot share), the deployment guide's
numbers for everything else, and the lines the deployment guide leaves out.

Prints the bill by line item beside the deployment guide's, each tier's month, the cost
of 1,000 images per tier on-demand and on spot, each plan's margin when all
its credits are spent, and what spot workers and a night scale-down save.
Defaults are the deployment guide's scenario; docs/cost.md gives each one's source.

Mixes are key=share lists that replace the default and sum to 1
(--tier-mix t4=0.7,a10g=0.3). --seconds overrides GPU seconds per image,
tier/model=s for one (t4/flux=120) or tier=s to set the tier's SDXL time and
scale its other models with it (a10g=10). --min-instances changes only the
tiers it names. --fixed overrides fixed lines by key (rds=280,nat=0).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			report, err := runCost(o)
			if err != nil {
				return err
			}
			if o.json {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(report)
			}
			return report.Write(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.in.DAU, "dau", def.DAU, "daily active users (deployment guide 10.1: 100)")
	f.Float64Var(&o.in.ImagesPerUserDay, "images-per-user", def.ImagesPerUserDay, "images per active user per day (estimate)")
	f.Float64Var(&o.in.DaysPerMonth, "days", def.DaysPerMonth, "days in the month (the deployment guide's GPU lines use 30)")
	f.StringToStringVar(&o.tierMix, "tier-mix", shares(def.TierMix), "share of images per GPU tier (estimate)")
	f.StringToStringVar(&o.modelMix, "model-mix", shares(def.ModelMix), "share of images per model (estimate)")
	f.StringToStringVar(&o.seconds, "seconds", nil, "GPU seconds per image overrides: tier/model=s or tier=s (SDXL, others scaled)")
	f.Float64Var(&o.in.Utilisation, "utilisation", def.Utilisation, "share of paid GPU time above the floor that renders")
	f.StringToIntVar(&o.minInstances, "min-instances", nil, "per-tier floor outside the night window, e.g. a10g=1 (default "+intList(def.MinInstances)+")")
	f.Float64Var(&o.in.PeakToTrough, "peak-to-trough", def.PeakToTrough, "busiest hour's images over the quietest hour's")
	f.IntVar(&o.in.NightStart, "night-start", def.NightStart, "local hour the night window starts")
	f.IntVar(&o.in.NightHours, "night-hours", def.NightHours, "hours a night every GPU tier is off (images wait for the morning)")
	f.Float64Var(&o.in.SpotShare, "spot-share", def.SpotShare, "share of GPU instance-hours on spot")
	f.Float64Var(&o.in.SpotDiscount, "spot-discount", def.SpotDiscount, "spot price as a fraction off on-demand (deployment guide 10.2: up to 0.7)")
	f.Float64Var(&o.in.WhatIfSpotShare, "whatif-spot-share", def.WhatIfSpotShare, "spot share the savings table tries")
	f.IntVar(&o.in.WhatIfNightHours, "whatif-night-hours", def.WhatIfNightHours, "night window the savings table tries (the autoscaler's 02:00-07:00)")
	f.StringToStringVar(&o.fixed, "fixed", nil, "fixed monthly USD overrides by key: "+strings.Join(def.FixedKeys(), ", "))
	f.BoolVar(&o.noExtras, "no-extras", false, "leave out the lines the deployment guide's table does not have (NAT, ALB, Temporal, ...)")
	f.BoolVar(&o.json, "json", false, "print the inputs and results as JSON")
	return cmd
}

func runCost(o costOptions) (costmodel.Report, error) {
	in := o.in
	var err error
	if in.TierMix, err = costmodel.Floats(o.tierMix); err != nil {
		return costmodel.Report{}, fmt.Errorf("--tier-mix: %w", err)
	}
	if in.ModelMix, err = costmodel.Floats(o.modelMix); err != nil {
		return costmodel.Report{}, fmt.Errorf("--model-mix: %w", err)
	}
	secs, err := costmodel.Floats(o.seconds)
	if err != nil {
		return costmodel.Report{}, fmt.Errorf("--seconds: %w", err)
	}
	if err := in.SetSeconds(secs); err != nil {
		return costmodel.Report{}, fmt.Errorf("--seconds: %w", err)
	}
	mins := maps.Clone(in.MinInstances)
	maps.Copy(mins, o.minInstances)
	in.MinInstances = mins
	fixed, err := costmodel.Floats(o.fixed)
	if err != nil {
		return costmodel.Report{}, fmt.Errorf("--fixed: %w", err)
	}
	if err := in.SetFixed(fixed); err != nil {
		return costmodel.Report{}, fmt.Errorf("--fixed: %w", err)
	}
	if o.noExtras {
		var guideLines []costmodel.Fixed
		for _, f := range in.Fixed {
			if f.InGuide {
				guideLines = append(guideLines, f)
			}
		}
		in.Fixed = guideLines
	}
	return costmodel.Compute(in)
}

// shares is a mix as the flag holds it.
func shares(m map[string]float64) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return out
}

func intList(m map[string]int) string {
	var parts []string
	for _, k := range costmodel.Tiers {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%d", k, v))
		}
	}
	return strings.Join(parts, ",")
}
