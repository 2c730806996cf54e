package engine_test

import (
	"context"
	"testing"

	"github.com/easel/easel/internal/engine"
)

type named string

func (n named) Name() string { return "fake" }
func (n named) Render(context.Context, engine.Request, func(engine.Progress)) (engine.Image, error) {
	return engine.Image{PNG: []byte(n)}, nil
}

// Each device's renders go to its own engine.
func TestPerDeviceRoutesByDevice(t *testing.T) {
	p := engine.PerDevice{named("gpu0"), named("gpu1")}
	for dev, want := range map[int]string{0: "gpu0", 1: "gpu1", 2: "gpu0"} {
		img, err := p.Render(engine.WithDevice(context.Background(), engine.Device{Index: dev}), engine.Request{}, nil)
		if err != nil || string(img.PNG) != want {
			t.Errorf("device %d rendered on %q (%v), want %s", dev, img.PNG, err, want)
		}
	}
	if img, _ := p.Render(context.Background(), engine.Request{}, nil); string(img.PNG) != "gpu0" {
		t.Errorf("no device rendered on %q", img.PNG)
	}
}
