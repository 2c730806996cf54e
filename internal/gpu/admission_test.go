package gpu

import (
	"errors"
	"testing"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
)

// Memory of one GPU of each tier, as NVML reports it.
const (
	t4Total   = 15 * gib
	a10gTotal = 22 * gib
	a100Total = 39 * gib
)

func TestAdmissionByTier(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		model       string
		side, batch int
		total, free uint64
		want        error
	}{
		{catalog.ModelSD15, 512, 1, t4Total, t4Total, nil},
		{catalog.ModelSDXL, 1024, 1, t4Total, t4Total, nil},
		{catalog.ModelSDXL, 1024, 4, t4Total, t4Total, nil},
		{catalog.ModelFlux, 1024, 1, t4Total, t4Total, nil},
		{catalog.ModelFlux, 1536, 1, t4Total, t4Total, engine.ErrTooLarge},
		{catalog.ModelFlux, 2048, 1, a10gTotal, a10gTotal, nil},
		{catalog.ModelFlux, 4096, 1, a100Total, a100Total, engine.ErrTooLarge},
		{catalog.ModelSDXL, 4096, 1, a100Total, a100Total, nil},
		{catalog.ModelSDXL, 1024, 1, a10gTotal, 6 * gib, engine.ErrDeviceBusy},
		{"unknown-family", 8192, 16, t4Total, 0, nil},
	} {
		err := admit(0, c.model, c.side, c.side, c.batch, c.free, c.total)
		if (c.want == nil && err != nil) || (c.want != nil && !errors.Is(err, c.want)) {
			need, _ := catalog.Estimate(c.model, c.side, c.side, c.batch)
			t.Errorf("%s %d x%d on %s (free %s, needs %s): got %v, want %v", c.model, c.side, c.batch,
				gibString(c.total), gibString(c.free), gibString(need), err, c.want)
		}
	}
}

func TestEstimateGrowsWithPixelsAndBatch(t *testing.T) {
	t.Parallel()
	one, _ := catalog.Estimate(catalog.ModelSDXL, 1024, 1024, 1)
	four, _ := catalog.Estimate(catalog.ModelSDXL, 1024, 1024, 4)
	big, _ := catalog.Estimate(catalog.ModelSDXL, 2048, 2048, 1)
	if !(one < four && one < big) {
		t.Fatalf("estimates 1x1024=%d 4x1024=%d 1x2048=%d do not grow", one, four, big)
	}
	if _, ok := catalog.Estimate("dall-e", 512, 512, 1); ok {
		t.Fatal("a family without a footprint got an estimate")
	}
}
