package costmodel

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/easel/easel/internal/autoscale"
)

func compute(t *testing.T, in Inputs) Report {
	t.Helper()
	r, err := Compute(in)
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	return r
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func tier(r Report, name string) TierUsage {
	for _, u := range r.Tiers {
		if u.Tier == name {
			return u
		}
	}
	return TierUsage{}
}

// seedTolerance is how close the default scenario's seed lines must come to
// the seed's total.
const seedTolerance = 0.05

func TestSeedScenarioReproducesSeedTotal(t *testing.T) {
	r := compute(t, Defaults())
	if d := r.Deviation(); math.Abs(d) > seedTolerance {
		t.Errorf("seed lines $%.2f vs the seed's $%.0f: %+.1f%%, want within %.0f%%", r.SeedLinesUSD, SeedTotalUSD, d*100, seedTolerance*100)
	}
	seed, n := 0.0, 0
	for _, l := range r.Lines {
		if l.InSeed {
			seed += l.SeedUSD
			n++
		}
	}
	if n != 14 || seed != SeedTotalUSD {
		t.Errorf("the seed's table has 14 lines adding up to $1,580; got %d lines, $%.2f", n, seed)
	}
	if r.TotalUSD <= r.SeedLinesUSD {
		t.Errorf("total $%.2f should add the lines the seed leaves out to $%.2f", r.TotalUSD, r.SeedLinesUSD)
	}
}

// The seed's GPU lines are its hourly prices times its hours over 30 days:
// the prices autoscale holds and DaysPerMonth agree with the table.
func TestSeedGPULinesAreSeedPricesTimesHours(t *testing.T) {
	in := Defaults()
	cases := []struct {
		tier           string
		instances, hpd float64
	}{{"t4", 2, 12}, {"a10g", 1, 8}}
	for _, c := range cases {
		got := c.instances * c.hpd * in.DaysPerMonth * autoscale.TierSpecs[c.tier].OnDemandHourly
		if want := seedGPU[c.tier].usd; !near(got, want, 5) {
			t.Errorf("%s: %g x %gh x %g days x $%g = $%.2f, the seed says ~$%.0f", c.tier, c.instances, c.hpd,
				in.DaysPerMonth, autoscale.TierSpecs[c.tier].OnDemandHourly, got, want)
		}
	}
}

func TestFloorWithoutDemand(t *testing.T) {
	in := Defaults()
	in.DAU = 0
	r := compute(t, in)
	t4 := tier(r, "t4")
	if want := 24 * in.DaysPerMonth; !near(t4.InstanceHours, want, 1e-9) {
		t.Errorf("t4 with no images: %g instance-hours, want the floor's %g", t4.InstanceHours, want)
	}
	if a := tier(r, "a10g"); a.InstanceHours != 0 || a.USD != 0 {
		t.Errorf("a10g with no floor and no images: %+v, want nothing", a)
	}
	in.NightHours = 5
	r = compute(t, in)
	if got, want := tier(r, "t4").InstanceHours, 19*in.DaysPerMonth; !near(got, want, 1e-9) {
		t.Errorf("t4 off 5 hours a night: %g instance-hours, want %g", got, want)
	}
}

func TestSpotReducesCost(t *testing.T) {
	in := Defaults()
	base := compute(t, in)
	prev := base.GPUUSD
	for _, share := range []float64{0.25, 0.5, 1} {
		in.SpotShare = share
		r := compute(t, in)
		if r.GPUUSD >= prev {
			t.Errorf("spot share %g: GPU $%.2f, want below $%.2f", share, r.GPUUSD, prev)
		}
		prev = r.GPUUSD
	}
	if want := base.GPUUSD * (1 - in.SpotDiscount); !near(prev, want, 1e-6) {
		t.Errorf("all spot: $%.2f, want on-demand x (1 - %g) = $%.2f", prev, in.SpotDiscount, want)
	}
	spot := base.Savings[1]
	if spot.SavedUSD <= 0 || !near(spot.SavedFraction, in.WhatIfSpotShare*in.SpotDiscount, 1e-9) {
		t.Errorf("spot saving %+v, want %.0f%% of the GPU bill", spot, in.WhatIfSpotShare*in.SpotDiscount*100)
	}
}

func TestNightScaleDownReducesCost(t *testing.T) {
	in := Defaults()
	base := compute(t, in)
	prev := base.GPUUSD
	for _, h := range []int{1, 3, 5, 8} {
		in.NightHours = h
		r := compute(t, in)
		if r.GPUUSD >= prev {
			t.Errorf("night %dh: GPU $%.2f, want below $%.2f", h, r.GPUUSD, prev)
		}
		prev = r.GPUUSD
		for i, u := range r.Tiers {
			if !near(u.BusyGPUHours, base.Tiers[i].BusyGPUHours, 1e-6) {
				t.Errorf("night %dh, %s: %g busy GPU-hours, want the same work as always on (%g)", h, u.Tier, u.BusyGPUHours, base.Tiers[i].BusyGPUHours)
			}
		}
	}
	s := base.Savings
	if s[2].SavedUSD <= 0 || s[2].Deferred <= 0 || s[3].SavedUSD <= s[1].SavedUSD || s[3].SavedUSD <= s[2].SavedUSD {
		t.Errorf("savings %+v: want night > 0 with images deferred, both > either", s)
	}
}

func TestPerThousandScalesWithSeconds(t *testing.T) {
	in := Defaults()
	base := compute(t, in)
	if err := in.SetSeconds(map[string]float64{"a10g": 16, "t4/flux": 300}); err != nil {
		t.Fatal(err)
	}
	r := compute(t, in)
	for i, u := range r.UnitCosts {
		b := base.UnitCosts[i]
		for _, m := range Models {
			factor := 1.0
			switch {
			case u.Tier == "a10g":
				factor = 2 // SDXL 8s -> 16s scales every model
			case u.Tier == "t4" && m == "flux":
				factor = 2
			}
			if !near(u.OnDemand[m], b.OnDemand[m]*factor, 1e-9) || !near(u.Spot[m], b.Spot[m]*factor, 1e-9) {
				t.Errorf("%s %s: $%.4f/$%.4f per 1,000, want %gx $%.4f/$%.4f", u.Tier, m, u.OnDemand[m], u.Spot[m], factor, b.OnDemand[m], b.Spot[m])
			}
		}
	}
	// 20 s of T4 at $0.526/h and 80% utilisation: 1000*20/3600/0.8*0.526.
	if got := base.UnitCosts[0].OnDemand["sdxl"]; !near(got, 1000*20.0/3600/0.8*0.526, 1e-9) {
		t.Errorf("t4 sdxl per 1,000: $%.4f", got)
	}
	// A p4d.24xlarge renders eight at once.
	a100 := base.UnitCosts[2]
	if got, want := a100.OnDemand["sdxl"], 1000*4.0/3600/0.8/8*32.77; !near(got, want, 1e-9) {
		t.Errorf("a100 sdxl per 1,000: $%.4f, want $%.4f", got, want)
	}
}

func TestMarginSigns(t *testing.T) {
	in := Defaults()
	r := compute(t, in)
	for _, m := range r.Margins {
		switch {
		case m.PriceUSD == 0 && (m.MarginOnDemandUSD >= 0 || m.MarginSpotUSD >= 0):
			t.Errorf("%s is free and renders %g images: margin should be negative, got %+v", m.Plan, m.Images, m)
		case m.PriceUSD > 0 && m.MarginOnDemandUSD <= 0:
			t.Errorf("%s: margin $%.2f at the seed's prices, want positive", m.Plan, m.MarginOnDemandUSD)
		}
		if m.MarginSpotUSD < m.MarginOnDemandUSD {
			t.Errorf("%s: spot margin $%.2f below on-demand $%.2f", m.Plan, m.MarginSpotUSD, m.MarginOnDemandUSD)
		}
		if want := float64(m.Credits) / r.CreditsPerImage; !near(m.Images, want, 1e-9) {
			t.Errorf("%s: %g images, want %d credits / %.2f", m.Plan, m.Images, m.Credits, r.CreditsPerImage)
		}
	}
	// sd-1.5 30% x 1 + sdxl 60% x 2 + flux 10% x 6 credits.
	if !near(r.CreditsPerImage, 2.1, 1e-9) {
		t.Errorf("credits per image %g, want 2.1", r.CreditsPerImage)
	}
	// A100 ten times slower: Enterprise's credits cost more GPU than it pays.
	in.SecondsPerImage["a100"] = map[string]float64{"sd-1.5": 12, "sdxl": 40, "flux": 150}
	r = compute(t, in)
	if e := r.Margins[3]; e.Plan != "Enterprise" || e.MarginOnDemandUSD >= 0 {
		t.Errorf("slow A100: %+v, want a negative on-demand margin", e)
	}
}

// The plans are the seed's, as the initial migration seeds them.
func TestPlansMatchMigration(t *testing.T) {
	sql, err := os.ReadFile("../../schema/migrations/00001_initial_schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`\('(\w+)', '\w+', ([\d.]+), (\d+), '(\w+)'`)
	rows := row.FindAllStringSubmatch(string(sql), -1)
	plans := Defaults().Plans
	if len(rows) != len(plans) {
		t.Fatalf("migration has %d plans, model %d", len(rows), len(plans))
	}
	for i, m := range rows {
		price, _ := strconv.ParseFloat(m[2], 64)
		credits, _ := strconv.Atoi(m[3])
		p := plans[i]
		if p.Name != m[1] || p.PriceUSD != price || p.Credits != credits || p.Tier != m[4] {
			t.Errorf("plan %d: model %+v, migration %v", i, p, m[1:])
		}
	}
}

func TestHourWeights(t *testing.T) {
	w := hourWeights(20)
	sum, lo, hi := 0.0, 0, 0
	for h, v := range w {
		sum += v
		if v < w[lo] {
			lo = h
		}
		if v > w[hi] {
			hi = h
		}
	}
	if !near(sum, 1, 1e-12) || lo != 3 && lo != 4 || hi != 15 && hi != 16 {
		t.Errorf("weights sum %g, lowest at %02d:00, highest at %02d:00; want 1, 04:00, 16:00", sum, lo, hi)
	}
	if r := w[hi] / w[lo]; r < 15 || r > 20 {
		t.Errorf("peak/trough %g, want about 20 (hour averages flatten it a little)", r)
	}
	flat := hourWeights(1)
	for _, v := range flat {
		if !near(v, 1.0/24, 1e-12) {
			t.Fatalf("peak to trough 1 should be flat, got %v", flat)
		}
	}
}

func TestScalesWithDemand(t *testing.T) {
	in := Defaults()
	in.MinInstances = map[string]int{}
	a := compute(t, in)
	in.DAU *= 3
	b := compute(t, in)
	for i := range a.Tiers {
		if !near(b.Tiers[i].InstanceHours, 3*a.Tiers[i].InstanceHours, 1e-6) {
			t.Errorf("%s without a floor: %g instance-hours at 3x users, want 3 x %g", a.Tiers[i].Tier, b.Tiers[i].InstanceHours, a.Tiers[i].InstanceHours)
		}
	}
	if b.FixedUSD != a.FixedUSD || !near(b.TotalUSD, b.FixedUSD+b.GPUUSD, 1e-9) {
		t.Errorf("fixed costs moved with users: $%.2f -> $%.2f", a.FixedUSD, b.FixedUSD)
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]func(*Inputs){
		"tier mix sum":    func(in *Inputs) { in.TierMix = map[string]float64{"t4": 0.5} },
		"unknown tier":    func(in *Inputs) { in.TierMix = map[string]float64{"h100": 1} },
		"unknown model":   func(in *Inputs) { in.ModelMix = map[string]float64{"sd3": 1} },
		"utilisation":     func(in *Inputs) { in.Utilisation = 0 },
		"spot share":      func(in *Inputs) { in.SpotShare = 1.5 },
		"spot discount":   func(in *Inputs) { in.SpotDiscount = 1 },
		"night hours":     func(in *Inputs) { in.NightHours = 24 },
		"negative floor":  func(in *Inputs) { in.MinInstances["t4"] = -1 },
		"zero seconds":    func(in *Inputs) { in.SecondsPerImage["t4"]["flux"] = 0 },
		"days":            func(in *Inputs) { in.DaysPerMonth = 0 },
		"negative fixed":  func(in *Inputs) { in.Fixed[0].USD = -1 },
		"peak to trough":  func(in *Inputs) { in.PeakToTrough = 0.5 },
		"plan tier":       func(in *Inputs) { in.Plans[0].Tier = "h100" },
		"negative images": func(in *Inputs) { in.ImagesPerUserDay = -1 },
	}
	for name, mutate := range cases {
		in := Defaults()
		mutate(&in)
		if _, err := Compute(in); err == nil {
			t.Errorf("%s: Compute accepted %+v", name, in)
		}
	}
	if err := Defaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestParse(t *testing.T) {
	f, err := ParseFloats(" t4=0.7, a10g = 0.3 ")
	if err != nil || len(f) != 2 || f["t4"] != 0.7 || f["a10g"] != 0.3 {
		t.Errorf("ParseFloats: %v, %v", f, err)
	}
	for _, bad := range []string{"t4", "t4=x", "t4=1,t4=2", "=1"} {
		if _, err := ParseFloats(bad); err == nil {
			t.Errorf("ParseFloats(%q) accepted", bad)
		}
	}
	if m, err := ParseFloats(""); err != nil || len(m) != 0 {
		t.Errorf("ParseFloats(\"\"): %v, %v", m, err)
	}
	n, err := ParseInts("t4=2,a100=0")
	if err != nil || n["t4"] != 2 || n["a100"] != 0 {
		t.Errorf("ParseInts: %v, %v", n, err)
	}
	if _, err := ParseInts("t4=1.5"); err == nil {
		t.Error("ParseInts accepted 1.5")
	}
	in := Defaults()
	for _, bad := range []map[string]float64{{"h100": 1}, {"t4/sd3": 1}, {"t4": 0}} {
		if err := in.SetSeconds(bad); err == nil {
			t.Errorf("SetSeconds(%v) accepted", bad)
		}
	}
	if err := in.SetFixed(map[string]float64{"rds": 280, "nat": 0}); err != nil {
		t.Fatal(err)
	}
	if err := in.SetFixed(map[string]float64{"nope": 1}); err == nil {
		t.Error("SetFixed accepted an unknown key")
	}
	r := compute(t, in)
	if base := compute(t, Defaults()); !near(base.TotalUSD-r.TotalUSD, 120+Defaults().Fixed[12].USD, 1e-9) {
		t.Errorf("rds 400->280 and nat -> 0: total $%.2f -> $%.2f", base.TotalUSD, r.TotalUSD)
	}
	// SetSeconds copies: Defaults' maps are not shared with the caller's.
	d := Defaults()
	if err := d.SetSeconds(map[string]float64{"t4/sdxl": 99}); err != nil || Defaults().SecondsPerImage["t4"]["sdxl"] != 20 {
		t.Errorf("SetSeconds leaked into Defaults: %v", err)
	}
}

func TestWrite(t *testing.T) {
	r := compute(t, Defaults())
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"Monthly cost by line item", "EC2 GPU (T4)", "$1,580.00", "not in the seed's table",
		"Cost per 1,000 images", "Plan margin", "Enterprise", "Savings on the GPU bill", "night scale-down 02:00-07:00"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	for i, line := range strings.Split(out, "\n") {
		if strings.TrimRight(line, " ") != line {
			t.Errorf("line %d has trailing spaces: %q", i+1, line)
		}
	}
	if _, err := json.Marshal(r); err != nil {
		t.Errorf("json: %v", err)
	}
}
