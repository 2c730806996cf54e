// Package costmodel turns the deployment guide's monthly cost table (section 10.1, 100
// daily active users, about $1,580 a month) into a model: demand (users,
// images, the mix of models and GPU tiers, GPU seconds per image) drives
// the GPU lines, the deployment guide's numbers stand for the rest, and the outputs are
// the monthly bill by line item beside the deployment guide's, the cost of 1,000 images
// per tier, each plan's margin when its credits are all spent, and what spot
// workers and a night scale-down save.
//
// Everything here is a pure function of Inputs. Instances, GPUs per
// instance, hourly prices and the spot discount come from autoscale (which
// holds the deployment guide's section 4.1 and 10.2 numbers); credits per image from
// pricing. Numbers the deployment guide does not give are estimates and say so.
package costmodel

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/easel/easel/internal/autoscale"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/pricing"
)

// Tiers are the GPU tiers in the order reports list them.
var Tiers = []string{catalog.TierT4, catalog.TierA10G, catalog.TierA100}

// Models are the model families in the order reports list them.
var Models = catalog.ModelFamilies()

// GuideTotalUSD is the total of the deployment guide's monthly cost table (section 10.1,
// "합계 ~$1,580/월"); its lines add up to exactly this.
const GuideTotalUSD = 1580.0

// GuideDAU is the daily active users the deployment guide's table is for.
const GuideDAU = 100

// Plan is a subscription plan: its monthly price, the credits it grants
// each month and the GPU tier its renders run on.
type Plan struct {
	Name     string  `json:"name"`
	PriceUSD float64 `json:"price_usd"`
	Credits  int     `json:"monthly_credits"`
	Tier     string  `json:"gpu_tier"`
}

// Fixed is a monthly cost that does not depend on the image volume: the
// deployment guide's non-GPU lines and the lines Easel's deployment adds to them.
type Fixed struct {
	Key      string  `json:"key"`
	Item     string  `json:"item"`
	Spec     string  `json:"spec"`
	InGuide  bool    `json:"in_guide"`  // a line of the deployment guide's table
	GuideUSD float64 `json:"guide_usd"` // the deployment guide's number, 0 when not InGuide
	USD      float64 `json:"usd"`       // what the model charges
	Source   string  `json:"source"`
}

// Inputs are everything the model depends on. Start from Defaults.
type Inputs struct {
	DAU              int     `json:"dau"`
	ImagesPerUserDay float64 `json:"images_per_user_day"`
	DaysPerMonth     float64 `json:"days_per_month"`
	// TierMix and ModelMix are shares of all images (each sums to 1); an
	// image's tier and model are independent.
	TierMix  map[string]float64 `json:"tier_mix"`
	ModelMix map[string]float64 `json:"model_mix"`
	// SecondsPerImage is the GPU time of one typical image (Typical) by
	// tier, then model: render, VAE decode and hand-off, on one GPU.
	SecondsPerImage map[string]map[string]float64 `json:"seconds_per_image"`
	// Typical is the request each model's SecondsPerImage is for, and what
	// pricing charges for it.
	Typical map[string]pricing.Request `json:"typical_requests"`
	// Specs are the tiers' instances and on-demand prices.
	Specs map[string]autoscale.TierSpec `json:"tiers"`
	// Utilisation is the share of the GPU time paid for, above the floor,
	// that renders: the autoscaler's headroom, boot and scale-in lag.
	Utilisation float64 `json:"utilisation"`
	// MinInstances is each tier's floor outside the night window.
	MinInstances map[string]int `json:"min_instances"`
	// PeakToTrough shapes the day: the busiest hour (16:00) has this many
	// times the images of the quietest (04:00).
	PeakToTrough float64 `json:"peak_to_trough"`
	// NightHours from NightStart (local hour) every tier is off; images
	// that arrive then wait and render in the hour the window ends.
	NightStart int `json:"night_start_hour"`
	NightHours int `json:"night_hours"`
	// SpotShare of GPU instance-hours run on spot at SpotDiscount off.
	SpotShare    float64 `json:"spot_share"`
	SpotDiscount float64 `json:"spot_discount"`
	Fixed        []Fixed `json:"fixed"`
	Plans        []Plan  `json:"plans"`
	// WhatIfSpotShare and WhatIfNightHours are the savings report's
	// alternatives to on-demand, always-on GPUs.
	WhatIfSpotShare  float64 `json:"whatif_spot_share"`
	WhatIfNightHours int     `json:"whatif_night_hours"`
}

// Deployment guide GPU lines (section 10.1): what the deployment guide provisions and charges.
var guideGPU = map[string]struct {
	item, spec string
	usd        float64
}{
	catalog.TierT4:   {"EC2 GPU (T4)", "2x g4dn.xlarge (avg 12h/day)", 380},
	catalog.TierA10G: {"EC2 GPU (A10G)", "1x g5.xlarge (avg 8h/day)", 240},
}

// Source labels.
const (
	srcGuideTable = "deployment guide 10.1"
	srcEstimate   = "estimate"
)

// Defaults are the deployment guide's scenario: 100 daily active users on the deployment guide's
// instances and prices, its fixed costs, its plans, on-demand and always on
// (the table comes before the savings of section 10.2). Demand, mixes and
// GPU seconds are estimates; docs/cost.md lists the source of each.
func Defaults() Inputs {
	night := autoscale.DefaultConfig().Windows[0]
	start, end := clockHour(night.Start), clockHour(night.End)
	return Inputs{
		DAU:              GuideDAU,
		ImagesPerUserDay: 36,
		DaysPerMonth:     30,
		TierMix:          map[string]float64{catalog.TierT4: 0.6, catalog.TierA10G: 0.4, catalog.TierA100: 0},
		ModelMix:         map[string]float64{catalog.ModelSD15: 0.3, catalog.ModelSDXL: 0.6, catalog.ModelFlux: 0.1},
		SecondsPerImage:  defaultSeconds(),
		Typical: map[string]pricing.Request{
			catalog.ModelSD15: {Model: catalog.ModelSD15, Width: 512, Height: 512, Steps: 30, BatchSize: 1},
			catalog.ModelSDXL: {Model: catalog.ModelSDXL, Width: 1024, Height: 1024, Steps: 30, BatchSize: 1},
			catalog.ModelFlux: {Model: catalog.ModelFlux, Width: 1024, Height: 1024, Steps: 30, BatchSize: 1},
		},
		Specs:        maps.Clone(autoscale.TierSpecs),
		Utilisation:  0.8,
		MinInstances: map[string]int{catalog.TierT4: 1, catalog.TierA10G: 0, catalog.TierA100: 0},
		PeakToTrough: 20,
		NightStart:   start,
		NightHours:   0,
		SpotShare:    0,
		SpotDiscount: autoscale.DefaultSpotDiscount,
		Fixed:        defaultFixed(),
		Plans: []Plan{
			{Name: "Free", PriceUSD: 0, Credits: 50, Tier: catalog.TierT4},
			{Name: "Basic", PriceUSD: 9.99, Credits: 500, Tier: catalog.TierT4},
			{Name: "Pro", PriceUSD: 29.99, Credits: 2000, Tier: catalog.TierA10G},
			{Name: "Enterprise", PriceUSD: 99.99, Credits: 10000, Tier: catalog.TierA100},
		},
		WhatIfSpotShare:  1,
		WhatIfNightHours: (end - start + 24) % 24,
	}
}

// defaultSeconds are GPU seconds per typical image. SDXL's are the
// autoscaler's service times (autoscale.TierSpecs); SD-1.5 at 512px and
// FLUX at 1024px are estimates in proportion (no GPU timings are measured
// in this repository).
func defaultSeconds() map[string]map[string]float64 {
	est := map[string][2]float64{ // sd-1.5, flux
		catalog.TierT4:   {6, 150},
		catalog.TierA10G: {2.5, 40},
		catalog.TierA100: {1.2, 15},
	}
	out := map[string]map[string]float64{}
	for tier, e := range est {
		out[tier] = map[string]float64{
			catalog.ModelSD15: e[0],
			catalog.ModelSDXL: autoscale.TierSpecs[tier].ServiceTime.Seconds(),
			catalog.ModelFlux: e[1],
		}
	}
	return out
}

// guideFargateTaskMonth is the deployment guide's price of one 2 vCPU / 4 GB Fargate
// task for a month: its API line is two of them for ~$150.
const guideFargateTaskMonth = 150.0 / 2

// defaultFixed is the deployment guide's table without its GPU lines, then the lines
// Easel's Terraform adds (estimates). The deployment guide's GPU prices are us-east-1
// list prices, so the estimates use us-east-1 too.
func defaultFixed() []Fixed {
	guide := func(key, item, spec string, usd float64) Fixed {
		return Fixed{Key: key, Item: item, Spec: spec, InGuide: true, GuideUSD: usd, USD: usd, Source: srcGuideTable}
	}
	extra := func(key, item, spec string, usd float64, source string) Fixed {
		return Fixed{Key: key, Item: item, Spec: spec, USD: usd, Source: source}
	}
	sqs := guide("sqs", "SQS", "~100K messages/month", 1)
	sqs.USD, sqs.Source = 0, "deployment guide 10.1; Easel queues on Temporal, no SQS"
	return []Fixed{
		guide("fargate", "ECS Fargate (API)", "2x (2 vCPU, 4 GB) 24/7", 150),
		guide("rds", "RDS PostgreSQL", "db.r6g.large Multi-AZ", 400),
		guide("redis", "ElastiCache Redis", "cache.r6g.large", 200),
		guide("s3", "S3", "500 GB + transfer", 20),
		guide("cloudfront", "CloudFront", "1 TB transfer", 85),
		guide("efs", "EFS", "200 GB (models)", 60),
		sqs,
		guide("cognito", "Cognito", "100 MAU (free tier)", 0),
		guide("route53", "Route 53", "1 hosted zone", 1),
		guide("cloudwatch", "CloudWatch", "basic metrics + logs", 30),
		guide("waf", "WAF", "basic rules", 10),
		guide("secrets", "Secrets Manager", "5 secrets", 3),
		extra("nat", "NAT gateways", "2, one per AZ (design doc §11.1: 2), $0.045/h + ~100 GB", 2*0.045*720+100*0.045, srcEstimate),
		extra("alb", "Application Load Balancer", "1 (design doc §1: 1), $0.0225/h + ~1 LCU", 0.0225*720+0.008*720, srcEstimate),
		extra("temporal", "Temporal server (Fargate)", "2x (2 vCPU, 4 GB) 24/7, terraform/modules/temporal",
			2*guideFargateTaskMonth, "deployment guide's Fargate rate"),
		extra("temporal-ui", "Temporal Web UI (Fargate)", "1x (0.25 vCPU, 0.5 GB) 24/7",
			guideFargateTaskMonth/8, "deployment guide's Fargate rate"),
		extra("temporal-db", "RDS PostgreSQL (Temporal)", "db.m6g.large Multi-AZ, 50 GB",
			270, "estimate: deployment guide's RDS x m6g/r6g list price (~0.68)"),
		extra("control-worker", "Control worker (Fargate)", "2x (1 vCPU, 2 GB) 24/7", guideFargateTaskMonth,
			"deployment guide's Fargate rate"),
	}
}

// clockHour is the hour of a "15:04" clock time (the autoscaler's windows
// are validated, so a bad one is a programming error).
func clockHour(s string) int {
	h, _, _ := strings.Cut(s, ":")
	n, err := strconv.Atoi(h)
	if err != nil {
		panic(fmt.Sprintf("costmodel: clock time %q", s))
	}
	return n
}

// Validate reports every problem with the inputs at once.
func (in Inputs) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if in.DAU < 0 || in.ImagesPerUserDay < 0 || !finite(in.ImagesPerUserDay) {
		add("dau %d, images per user per day %g: need both >= 0", in.DAU, in.ImagesPerUserDay)
	}
	if !(in.DaysPerMonth > 0 && in.DaysPerMonth <= 31) {
		add("days per month %g: need 0 < days <= 31", in.DaysPerMonth)
	}
	for _, tier := range slices.Sorted(maps.Keys(in.TierMix)) {
		s, ok := in.Specs[tier]
		if !ok {
			add("tier mix: unknown tier %q", tier)
		} else if s.GPUs < 1 || s.OnDemandHourly < 0 {
			add("tier %s: need GPUs >= 1 and a price >= 0", tier)
		}
	}
	errs = append(errs, checkShares("tier mix", in.TierMix)...)
	errs = append(errs, checkShares("model mix", in.ModelMix)...)
	for _, m := range slices.Sorted(maps.Keys(in.ModelMix)) {
		if _, err := pricing.Price(in.Typical[m]); err != nil || in.Typical[m].Model != m {
			add("model %q: no typical request pricing can quote", m)
		}
		for _, tier := range Tiers {
			if _, ok := in.Specs[tier]; ok && !(in.SecondsPerImage[tier][m] > 0) {
				add("seconds per image of %s on %s: need > 0", m, tier)
			}
		}
	}
	if !(in.Utilisation > 0 && in.Utilisation <= 1) {
		add("utilisation %g: need 0 < utilisation <= 1", in.Utilisation)
	}
	for _, tier := range slices.Sorted(maps.Keys(in.MinInstances)) {
		if _, ok := in.Specs[tier]; !ok || in.MinInstances[tier] < 0 {
			add("min instances %s=%d: need a known tier and >= 0", tier, in.MinInstances[tier])
		}
	}
	if !(in.PeakToTrough >= 1) {
		add("peak to trough %g: need >= 1", in.PeakToTrough)
	}
	if in.NightStart < 0 || in.NightStart > 23 {
		add("night start %d: need an hour 0-23", in.NightStart)
	}
	for _, h := range []int{in.NightHours, in.WhatIfNightHours} {
		if h < 0 || h > 23 {
			add("night hours %d: need 0-23", h)
		}
	}
	for _, s := range []float64{in.SpotShare, in.WhatIfSpotShare} {
		if !(s >= 0 && s <= 1) {
			add("spot share %g: need 0-1", s)
		}
	}
	if !(in.SpotDiscount >= 0 && in.SpotDiscount < 1) {
		add("spot discount %g: need 0 <= discount < 1", in.SpotDiscount)
	}
	for _, f := range in.Fixed {
		if !(f.USD >= 0) || f.Key == "" {
			add("fixed cost %q: need a key and USD >= 0", f.Key)
		}
	}
	for _, p := range in.Plans {
		if _, ok := in.Specs[p.Tier]; !ok || p.PriceUSD < 0 || p.Credits < 0 {
			add("plan %s: need a known tier, price >= 0 and credits >= 0", p.Name)
		}
	}
	return errors.Join(errs...)
}

func checkShares(name string, shares map[string]float64) []error {
	var errs []error
	sum := 0.0
	for k, v := range shares {
		if !(v >= 0 && v <= 1) {
			errs = append(errs, fmt.Errorf("%s: %s=%g, need 0-1", name, k, v))
		}
		sum += v
	}
	if math.Abs(sum-1) > 1e-6 {
		errs = append(errs, fmt.Errorf("%s: shares sum to %g, need 1", name, sum))
	}
	return errs
}

func finite(v float64) bool { return !math.IsInf(v, 0) && !math.IsNaN(v) }
