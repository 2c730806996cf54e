package gpu

import (
	"fmt"

	"github.com/easel/easel/internal/engine"
)

// Footprint is a model family's VRAM need while rendering: the weights that
// stay resident, plus activations (latents, attention, VAE decode) that grow
// with the pixels rendered at once.
type Footprint struct {
	WeightsGiB      float64
	PerMegapixelGiB float64 // per image of one megapixel (1024x1024 is 1.05)
}

// Footprints are rough fp16 figures for InvokeAI's default setup: SD 1.5
// with its text encoder and VAE; SDXL with both text encoders; FLUX with an
// 8-bit transformer and its text encoders offloaded after prompt encoding.
// They err high, so a render that is admitted does not run out of memory
// half way; tune them from easel_gpu_memory_used_bytes on real hosts.
var Footprints = map[string]Footprint{
	engine.ModelSD15: {WeightsGiB: 2.5, PerMegapixelGiB: 1.25},
	engine.ModelSDXL: {WeightsGiB: 7.0, PerMegapixelGiB: 1.75},
	engine.ModelFlux: {WeightsGiB: 11.5, PerMegapixelGiB: 2.0},
}

// TierMemoryGiB is the GPU memory a render can use on each tier's GPUs
// (what NVML reports in all, less the driver's reserve): T4 16 GB, A10G
// 24 GB, the p4d.24xlarge's A100 40 GB. The API refuses a request that
// cannot fit before holding any credits.
var TierMemoryGiB = map[string]float64{"t4": 15.0, "a10g": 22.0, "a100": 39.4}

// FitsTier says whether one image of the request fits the tier's GPUs, and
// the estimate in GiB.
func FitsTier(tier, model string, width, height int) (fits bool, needGiB, haveGiB float64) {
	need, ok := Estimate(model, width, height, 1)
	have, known := TierMemoryGiB[tier]
	if !ok || !known {
		return true, 0, 0
	}
	return float64(need)/gib <= have, float64(need) / gib, have
}

// ContextOverheadGiB is what a CUDA context and the allocator's slack take
// before any weights load.
const ContextOverheadGiB = 0.5

const gib = 1 << 30

// Estimate is the VRAM in bytes a render of batch images of width x height
// needs, and false for a model family without a footprint.
func Estimate(model string, width, height, batch int) (uint64, bool) {
	f, ok := Footprints[model]
	if !ok {
		return 0, false
	}
	mp := float64(width) * float64(height) / (1 << 20)
	need := ContextOverheadGiB + f.WeightsGiB + f.PerMegapixelGiB*mp*float64(max(batch, 1))
	return uint64(need * gib), true
}

// admit compares a render's estimate with a device's memory: more than the
// device has at all is ErrTooLarge (no GPU of this tier will ever run it);
// more than the renders can use now (usable: what is free plus what
// InvokeAI holds, i.e. all but other processes) is ErrDeviceBusy (it may fit
// later or elsewhere).
func admit(device int, model string, width, height, batch int, usable, total uint64) error {
	need, ok := Estimate(model, width, height, batch)
	if !ok {
		return nil // unknown family: the engine rejects it as invalid
	}
	shape := fmt.Sprintf("%s %dx%d x%d needs about %s of GPU memory", model, width, height, batch, gibString(need))
	if need > total {
		return fmt.Errorf("%w: %s; GPU %d has %s in all", engine.ErrTooLarge, shape, device, gibString(total))
	}
	if need > usable {
		return fmt.Errorf("%w: %s; GPU %d has %s for renders (other processes hold the rest)",
			engine.ErrDeviceBusy, shape, device, gibString(usable))
	}
	return nil
}

func gibString(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/gib) }
