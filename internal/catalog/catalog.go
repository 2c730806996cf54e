// Package catalog is Easel's vocabulary, declared once: the GPU tiers a job
// can run on, the model families it can render, and the statuses of jobs
// and subscriptions. Every other package reads it, so adding a tier or a
// model family is one edit here.
package catalog

import (
	"slices"
	"time"
)

// GPU tier names, as plans (subscription_plans.gpu_tier), task queues and
// metrics name them.
const (
	TierT4   = "t4"
	TierA10G = "a10g"
	TierA100 = "a100"
)

// Tier is a GPU tier: the instance its GPU workers run on and what a render
// can use there. Instances, GPUs and on-demand prices are the deployment
// guide's (AWS us-east-1).
type Tier struct {
	Name string
	// MemoryGiB is the GPU memory a render can use on one of the tier's
	// GPUs: what NVML reports in all, less the driver's reserve.
	MemoryGiB      float64
	Instance       string  // EC2 instance type
	GPUs           int     // GPUs per instance: renders it runs at once
	OnDemandHourly float64 // USD per instance-hour
	// ServiceTime is the GPU time of one 1024px SDXL image, an estimate the
	// autoscaling simulator starts from.
	ServiceTime time.Duration
}

// Tiers are the GPU tiers, cheapest first. The p4d.24xlarge carries eight
// A100s of 40 GB.
var Tiers = []Tier{
	{Name: TierT4, MemoryGiB: 15.0, Instance: "g4dn.xlarge", GPUs: 1, OnDemandHourly: 0.526, ServiceTime: 20 * time.Second},
	{Name: TierA10G, MemoryGiB: 22.0, Instance: "g5.xlarge", GPUs: 1, OnDemandHourly: 1.006, ServiceTime: 8 * time.Second},
	{Name: TierA100, MemoryGiB: 39.4, Instance: "p4d.24xlarge", GPUs: 8, OnDemandHourly: 32.77, ServiceTime: 4 * time.Second},
}

// TierNames lists the tiers' names, cheapest first.
func TierNames() []string {
	names := make([]string, len(Tiers))
	for i, t := range Tiers {
		names[i] = t.Name
	}
	return names
}

// TierByName finds a tier.
func TierByName(name string) (Tier, bool) {
	i := slices.IndexFunc(Tiers, func(t Tier) bool { return t.Name == name })
	if i < 0 {
		return Tier{}, false
	}
	return Tiers[i], true
}

// ControlQueue is the Temporal task queue of the control-plane worker:
// workflows, and the ledger, cleanup and billing activities.
const ControlQueue = "easel-control"

// GPUQueue is the Temporal task queue of a GPU tier's render workers.
func GPUQueue(tier string) string { return "gpu-" + tier }

// Model family names, as requests, prices and engines name them.
const (
	ModelSD15 = "sd-1.5"
	ModelSDXL = "sdxl"
	ModelFlux = "flux"
)

// Model is a model family: what one image costs and how much GPU memory
// rendering it takes.
type Model struct {
	Family string
	// PriceHalves is the family's credits per reference unit of work (a
	// 512x512 image at 30 steps), in halves, so price arithmetic stays in
	// integers: SD 1.5 costs 1, SDXL 0.5, FLUX 1.5.
	PriceHalves int64
	// WeightsGiB stay resident while rendering; PerMegapixelGiB are the
	// activations (latents, attention, VAE decode) that grow with the pixels
	// rendered at once (1024x1024 is 1.05 megapixels). Rough fp16 figures for
	// InvokeAI's default setup (SDXL with both text encoders, FLUX with an
	// 8-bit transformer and its text encoders offloaded after prompt
	// encoding); they err high, so an admitted render does not run out of
	// memory half way. Tune them from easel_gpu_memory_used_bytes.
	WeightsGiB      float64
	PerMegapixelGiB float64
	// DefaultSide is the width and height the family was trained at, which
	// clients start from.
	DefaultSide int
}

// Models are the model families, in a stable order.
var Models = []Model{
	{Family: ModelSD15, PriceHalves: 2, WeightsGiB: 2.5, PerMegapixelGiB: 1.25, DefaultSide: 512},
	{Family: ModelSDXL, PriceHalves: 1, WeightsGiB: 7.0, PerMegapixelGiB: 1.75, DefaultSide: 1024},
	{Family: ModelFlux, PriceHalves: 3, WeightsGiB: 11.5, PerMegapixelGiB: 2.0, DefaultSide: 1024},
}

// ModelFamilies lists the families' names in a stable order.
func ModelFamilies() []string {
	names := make([]string, len(Models))
	for i, m := range Models {
		names[i] = m.Family
	}
	return names
}

// ModelByFamily finds a model family.
func ModelByFamily(family string) (Model, bool) {
	i := slices.IndexFunc(Models, func(m Model) bool { return m.Family == family })
	if i < 0 {
		return Model{}, false
	}
	return Models[i], true
}
