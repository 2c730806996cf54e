package engine_test

import (
	"context"
	"testing"

	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/engine/sim"
)

// A GPU host's engines serve a family only where every device's engine
// renders it.
func TestPerDeviceServesWhatAllServe(t *testing.T) {
	ctx := context.Background()
	p := engine.PerDevice{sim.New(sim.Config{Families: []string{"sd-1.5", "sdxl"}}), sim.New(sim.Config{Families: []string{"sdxl"}})}
	if got := p.Served(ctx).Families(); len(got) != 1 || got[0] != "sdxl" {
		t.Fatalf("families served on every device = %v, want [sdxl]", got)
	}
}
