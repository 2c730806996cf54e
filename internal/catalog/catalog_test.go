package catalog_test

import (
	"testing"

	"github.com/easel/easel/internal/catalog"
)

func TestTiersAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, tier := range catalog.Tiers {
		if seen[tier.Name] {
			t.Fatalf("tier %s declared twice", tier.Name)
		}
		seen[tier.Name] = true
		if tier.MemoryGiB <= 0 || tier.GPUs <= 0 || tier.OnDemandHourly <= 0 || tier.ServiceTime <= 0 || tier.Instance == "" {
			t.Errorf("tier %+v lacks a value", tier)
		}
		if got, ok := catalog.TierByName(tier.Name); !ok || got != tier {
			t.Errorf("TierByName(%s) = %+v, %v", tier.Name, got, ok)
		}
	}
	if _, ok := catalog.TierByName("h100"); ok {
		t.Fatal("an unknown tier was found")
	}
	if got := catalog.GPUQueue(catalog.TierA10G); got != "gpu-a10g" {
		t.Fatalf("GPUQueue = %q", got)
	}
}

func TestModelsAreComplete(t *testing.T) {
	for _, m := range catalog.Models {
		if m.PriceHalves <= 0 || m.WeightsGiB <= 0 || m.PerMegapixelGiB <= 0 {
			t.Errorf("model %+v lacks a value", m)
		}
		if got, ok := catalog.ModelByFamily(m.Family); !ok || got != m {
			t.Errorf("ModelByFamily(%s) = %+v, %v", m.Family, got, ok)
		}
	}
	if got := catalog.ModelFamilies(); len(got) != 3 || got[0] != catalog.ModelSD15 {
		t.Fatalf("ModelFamilies = %v", got)
	}
}

func TestFitsTier(t *testing.T) {
	for _, c := range []struct {
		tier, model string
		side        int
		fits        bool
	}{
		{catalog.TierT4, catalog.ModelSDXL, 1024, true},
		{catalog.TierT4, catalog.ModelFlux, 2048, false},
		{catalog.TierA100, catalog.ModelFlux, 2048, true},
		{catalog.TierA10G, catalog.ModelSD15, 4096, false},
		{"h100", catalog.ModelFlux, 8192, true}, // unknown: refused elsewhere
		{catalog.TierT4, "dall-e", 8192, true},
	} {
		fits, need, have := catalog.FitsTier(c.tier, c.model, c.side, c.side)
		if fits != c.fits {
			t.Errorf("%s %s %dpx: fits = %v (need %.1f GiB, have %.1f GiB), want %v", c.tier, c.model, c.side, fits, need, have, c.fits)
		}
	}
}

func TestJobTerminal(t *testing.T) {
	for status, want := range map[string]bool{catalog.JobQueued: false, catalog.JobRunning: false,
		catalog.JobCanceling: false, catalog.JobCompleted: true, catalog.JobFailed: true, catalog.JobCanceled: true} {
		if catalog.JobTerminal(status) != want {
			t.Errorf("JobTerminal(%s) = %v", status, !want)
		}
	}
}
