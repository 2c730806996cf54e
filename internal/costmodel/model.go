package costmodel

import (
	"math"
	"slices"
	"strings"

	"github.com/easel/easel/internal/pricing"
)

// Line is one row of the monthly bill.
type Line struct {
	Key      string  `json:"key"`
	Item     string  `json:"item"`
	Spec     string  `json:"spec"`
	InGuide  bool    `json:"in_guide"`
	GuideUSD float64 `json:"guide_usd"`
	USD      float64 `json:"usd"`
	Source   string  `json:"source"`
}

// TierUsage is a GPU tier's month.
type TierUsage struct {
	Tier            string  `json:"tier"`
	Instance        string  `json:"instance"`
	GPUs            int     `json:"gpus"`
	OnDemandHourly  float64 `json:"on_demand_hourly_usd"`
	SpotHourly      float64 `json:"spot_hourly_usd"`
	Images          float64 `json:"images"`
	SecondsPerImage float64 `json:"seconds_per_image"` // the model mix's average
	BusyGPUHours    float64 `json:"busy_gpu_hours"`
	InstanceHours   float64 `json:"instance_hours"`
	Utilisation     float64 `json:"utilisation"` // busy GPU-hours / paid GPU-hours
	OnDemandUSD     float64 `json:"on_demand_usd"`
	SpotUSD         float64 `json:"spot_usd"` // every hour on spot
	USD             float64 `json:"usd"`      // at the spot share
}

// UnitCost is what 1,000 images cost on a tier at the utilisation target:
// the marginal cost once demand is above the floor.
type UnitCost struct {
	Tier string `json:"tier"`
	// By model, then "mix" for the model mix.
	OnDemand map[string]float64 `json:"on_demand_usd"`
	Spot     map[string]float64 `json:"spot_usd"`
	// Scenario is the tier's bill over its images (floor and spot share
	// included), per 1,000; 0 when the tier renders nothing.
	Scenario float64 `json:"scenario_usd"`
}

// Mix is the key of the model mix's column in UnitCost.
const Mix = "mix"

// Margin is a plan's price against the GPU cost of spending all its
// monthly credits at the model mix.
type Margin struct {
	Plan              string  `json:"plan"`
	PriceUSD          float64 `json:"price_usd"`
	Credits           int     `json:"credits"`
	Tier              string  `json:"tier"`
	Images            float64 `json:"images"`
	GPUOnDemandUSD    float64 `json:"gpu_on_demand_usd"`
	GPUSpotUSD        float64 `json:"gpu_spot_usd"`
	MarginOnDemandUSD float64 `json:"margin_on_demand_usd"`
	MarginSpotUSD     float64 `json:"margin_spot_usd"`
}

// Saving is the GPU bill under one choice of spot share and night
// scale-down, against on-demand GPUs that never switch off.
type Saving struct {
	Label         string  `json:"label"`
	SpotShare     float64 `json:"spot_share"`
	NightHours    int     `json:"night_hours"`
	GPUUSD        float64 `json:"gpu_usd"`
	TotalUSD      float64 `json:"total_usd"`
	SavedUSD      float64 `json:"saved_usd"`
	SavedFraction float64 `json:"saved_fraction"` // of the reference GPU bill
	Deferred      float64 `json:"deferred_share"` // of images waiting for the window's end
}

// Report is the model's answer.
type Report struct {
	Inputs          Inputs      `json:"inputs"`
	ImagesPerDay    float64     `json:"images_per_day"`
	ImagesPerMonth  float64     `json:"images_per_month"`
	CreditsPerImage float64     `json:"credits_per_image"` // the model mix's average
	Lines           []Line      `json:"lines"`
	GuideTableUSD   float64     `json:"guide_table_usd"` // the deployment guide's total
	GuideLinesUSD   float64     `json:"guide_lines_usd"` // the model, lines in the deployment guide's table
	GPUUSD          float64     `json:"gpu_usd"`
	FixedUSD        float64     `json:"fixed_usd"` // everything but the GPUs
	TotalUSD        float64     `json:"total_usd"`
	Tiers           []TierUsage `json:"tiers"`
	UnitCosts       []UnitCost  `json:"unit_costs"`
	Margins         []Margin    `json:"margins"`
	Savings         []Saving    `json:"savings"`
}

// Deviation is the model's total of the deployment guide's lines against the deployment guide's
// total, as a fraction (+0.02 is 2% above).
func (r Report) Deviation() float64 { return r.GuideLinesUSD/r.GuideTableUSD - 1 }

// Compute runs the model.
func Compute(in Inputs) (Report, error) {
	if err := in.Validate(); err != nil {
		return Report{}, err
	}
	r := Report{Inputs: in, GuideTableUSD: GuideTotalUSD}
	r.ImagesPerDay = float64(in.DAU) * in.ImagesPerUserDay
	r.ImagesPerMonth = r.ImagesPerDay * in.DaysPerMonth
	r.CreditsPerImage = creditsPerImage(in)
	r.Tiers = tierUsages(in)
	r.Lines = lines(in, r.Tiers)
	for _, l := range r.Lines {
		r.TotalUSD += l.USD
		if l.InGuide {
			r.GuideLinesUSD += l.USD
		}
	}
	for _, t := range r.Tiers {
		r.GPUUSD += t.USD
	}
	for _, f := range in.Fixed {
		r.FixedUSD += f.USD
	}
	r.UnitCosts = unitCosts(in, r.Tiers)
	r.Margins = margins(in, r.CreditsPerImage)
	r.Savings = savings(in, r.FixedUSD)
	return r, nil
}

// hourWeights is the share of a day's images arriving in each local hour:
// the autoscaler's diurnal trace shape (lowest at 04:00, highest at 16:00),
// with the peak PeakToTrough times the trough.
func hourWeights(peakToTrough float64) [24]float64 {
	var w [24]float64
	trough, sum := 1/peakToTrough, 0.0
	for h := range w {
		shape := (1 - math.Cos(2*math.Pi*(float64(h)+0.5-4)/24)) / 2
		w[h] = trough + (1-trough)*shape
		sum += w[h]
	}
	for h := range w {
		w[h] /= sum
	}
	return w
}

// night says whether hour h is in the window of n hours from start.
func night(h, start, n int) bool { return (h-start+24)%24 < n }

// deferredShare is the share of a day's images that arrive in the night
// window.
func deferredShare(in Inputs) float64 {
	w, s := hourWeights(in.PeakToTrough), 0.0
	for h := range w {
		if night(h, in.NightStart, in.NightHours) {
			s += w[h]
		}
	}
	return s
}

// mixSeconds is the GPU seconds of an average image on a tier.
func mixSeconds(in Inputs, tier string) float64 {
	s := 0.0
	for _, m := range orderedKeys(in.ModelMix, Models) {
		s += in.ModelMix[m] * in.SecondsPerImage[tier][m]
	}
	return s
}

// tierUsages spreads each tier's daily GPU time over the hours of the day,
// moves the night window's to the hour it ends, and pays in each hour for
// the busy time over the utilisation target, at least the floor, nothing
// in the window.
func tierUsages(in Inputs) []TierUsage {
	w := hourWeights(in.PeakToTrough)
	end := (in.NightStart + in.NightHours) % 24
	var out []TierUsage
	for _, tier := range Tiers {
		spec, ok := in.Specs[tier]
		if !ok {
			continue
		}
		images := float64(in.DAU) * in.ImagesPerUserDay * in.TierMix[tier]
		sec := mixSeconds(in, tier)
		busyDay := images * sec / 3600 // GPU-hours
		var busy [24]float64
		for h := range busy {
			if night(h, in.NightStart, in.NightHours) {
				busy[end] += busyDay * w[h]
			} else {
				busy[h] += busyDay * w[h]
			}
		}
		instDay := 0.0
		for h, b := range busy {
			if night(h, in.NightStart, in.NightHours) {
				continue
			}
			instDay += max(b/in.Utilisation/float64(spec.GPUs), float64(in.MinInstances[tier]))
		}
		u := TierUsage{Tier: tier, Instance: spec.Instance, GPUs: spec.GPUs,
			OnDemandHourly: spec.OnDemandHourly, SpotHourly: spec.OnDemandHourly * (1 - in.SpotDiscount),
			Images: images * in.DaysPerMonth, SecondsPerImage: sec,
			BusyGPUHours: busyDay * in.DaysPerMonth, InstanceHours: instDay * in.DaysPerMonth}
		if paid := u.InstanceHours * float64(spec.GPUs); paid > 0 {
			u.Utilisation = u.BusyGPUHours / paid
		}
		u.OnDemandUSD = u.InstanceHours * u.OnDemandHourly
		u.SpotUSD = u.InstanceHours * u.SpotHourly
		u.USD = u.OnDemandUSD * (1 - in.SpotShare*in.SpotDiscount)
		out = append(out, u)
	}
	return out
}

// lines is the bill in the deployment guide's order: its API line, the GPU tiers, its
// other lines, then the lines it does not have.
func lines(in Inputs, tiers []TierUsage) []Line {
	var out, rest []Line
	for _, f := range in.Fixed {
		l := Line(f)
		if f.Key == "fargate" {
			out = append(out, l)
		} else {
			rest = append(rest, l)
		}
	}
	var extra []Line
	for _, t := range tiers {
		l := Line{Key: "gpu-" + t.Tier, Item: "EC2 GPU (" + strings.ToUpper(t.Tier) + ")", USD: t.USD,
			Spec:   fmtf("%s, %.1f instance-h/day", t.Instance, t.InstanceHours/in.DaysPerMonth),
			Source: "model; price deployment guide 4.1"}
		if s, ok := guideGPU[t.Tier]; ok {
			l.Item, l.InGuide, l.GuideUSD = s.item, true, s.usd
			out = append(out, l)
		} else if t.USD > 0 {
			extra = append(extra, l)
		}
	}
	var guideRest, notGuide []Line
	for _, l := range rest {
		if l.InGuide {
			guideRest = append(guideRest, l)
		} else {
			notGuide = append(notGuide, l)
		}
	}
	out = append(out, guideRest...)
	out = append(out, extra...)
	return append(out, notGuide...)
}

// perThousand is the cost of 1,000 images of s GPU seconds on a tier at the
// utilisation target, at an hourly price.
func perThousand(in Inputs, tier string, s, hourly float64) float64 {
	return 1000 * s / 3600 / in.Utilisation / float64(in.Specs[tier].GPUs) * hourly
}

func unitCosts(in Inputs, tiers []TierUsage) []UnitCost {
	var out []UnitCost
	for _, t := range tiers {
		u := UnitCost{Tier: t.Tier, OnDemand: map[string]float64{}, Spot: map[string]float64{}}
		for _, m := range Models {
			if _, ok := in.ModelMix[m]; !ok {
				continue
			}
			s := in.SecondsPerImage[t.Tier][m]
			u.OnDemand[m] = perThousand(in, t.Tier, s, t.OnDemandHourly)
			u.Spot[m] = perThousand(in, t.Tier, s, t.SpotHourly)
		}
		u.OnDemand[Mix] = perThousand(in, t.Tier, t.SecondsPerImage, t.OnDemandHourly)
		u.Spot[Mix] = perThousand(in, t.Tier, t.SecondsPerImage, t.SpotHourly)
		if t.Images > 0 {
			u.Scenario = t.USD / t.Images * 1000
		}
		out = append(out, u)
	}
	return out
}

// creditsPerImage is what pricing charges for an average image of the mix.
func creditsPerImage(in Inputs) float64 {
	c := 0.0
	for _, m := range orderedKeys(in.ModelMix, Models) {
		q, _ := pricing.Price(in.Typical[m]) // validated
		c += in.ModelMix[m] * float64(q.PerImage)
	}
	return c
}

func margins(in Inputs, credits float64) []Margin {
	var out []Margin
	for _, p := range in.Plans {
		mg := Margin{Plan: p.Name, PriceUSD: p.PriceUSD, Credits: p.Credits, Tier: p.Tier}
		if credits > 0 {
			mg.Images = float64(p.Credits) / credits
		}
		spec, s := in.Specs[p.Tier], mixSeconds(in, p.Tier)
		mg.GPUOnDemandUSD = mg.Images / 1000 * perThousand(in, p.Tier, s, spec.OnDemandHourly)
		mg.GPUSpotUSD = mg.GPUOnDemandUSD * (1 - in.SpotDiscount)
		mg.MarginOnDemandUSD = p.PriceUSD - mg.GPUOnDemandUSD
		mg.MarginSpotUSD = p.PriceUSD - mg.GPUSpotUSD
		out = append(out, mg)
	}
	return out
}

// savings prices the GPUs on-demand and always on, with the what-if spot
// share, with the what-if night window, with both, and as given.
func savings(in Inputs, fixedUSD float64) []Saving {
	run := func(label string, spot float64, nightHours int) Saving {
		v := in
		v.SpotShare, v.NightHours = spot, nightHours
		s := Saving{Label: label, SpotShare: spot, NightHours: nightHours, Deferred: deferredShare(v)}
		for _, t := range tierUsages(v) {
			s.GPUUSD += t.USD
		}
		s.TotalUSD = fixedUSD + s.GPUUSD
		return s
	}
	rows := []Saving{
		run("on-demand, always on (reference)", 0, 0),
		run(fmtf("spot %.0f%% of GPU hours", in.WhatIfSpotShare*100), in.WhatIfSpotShare, 0),
		run(fmtf("night scale-down %02d:00-%02d:00", in.NightStart, (in.NightStart+in.WhatIfNightHours)%24), 0, in.WhatIfNightHours),
		run("both", in.WhatIfSpotShare, in.WhatIfNightHours),
	}
	if !slices.ContainsFunc(rows, func(s Saving) bool { return s.SpotShare == in.SpotShare && s.NightHours == in.NightHours }) {
		rows = append(rows, run("this scenario", in.SpotShare, in.NightHours))
	}
	ref := rows[0].GPUUSD
	for i := range rows {
		rows[i].SavedUSD = ref - rows[i].GPUUSD
		if ref > 0 {
			rows[i].SavedFraction = rows[i].SavedUSD / ref
		}
	}
	return rows
}
