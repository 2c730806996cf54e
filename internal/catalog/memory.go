package catalog

// ContextOverheadGiB is what a CUDA context and the allocator's slack take
// before any weights load.
const ContextOverheadGiB = 0.5

const gib = 1 << 30

// Estimate is the GPU memory in bytes a render of batch images of width x
// height needs, and false for an unknown model family.
func Estimate(family string, width, height, batch int) (uint64, bool) {
	m, ok := ModelByFamily(family)
	if !ok {
		return 0, false
	}
	mp := float64(width) * float64(height) / (1 << 20)
	need := ContextOverheadGiB + m.WeightsGiB + m.PerMegapixelGiB*mp*float64(max(batch, 1))
	return uint64(need * gib), true
}

// FitsTier says whether one image of the request fits the tier's GPUs, and
// the estimate in GiB. An unknown tier or family fits (it is refused
// elsewhere).
func FitsTier(tier, family string, width, height int) (fits bool, needGiB, haveGiB float64) {
	need, ok := Estimate(family, width, height, 1)
	t, known := TierByName(tier)
	if !ok || !known {
		return true, 0, 0
	}
	return float64(need)/gib <= t.MemoryGiB, float64(need) / gib, t.MemoryGiB
}
