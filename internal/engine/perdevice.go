package engine

import (
	"context"
	"fmt"
)

// PerDevice runs each render on the engine of the device it is pinned to:
// a multi-GPU host (a p4d.24xlarge has eight A100s) runs one InvokeAI server
// per GPU, each seeing only its own device. A render without a device, or
// on a device past the list, goes to engine index modulo the list's length.
type PerDevice []Engine

// Name names the engines' kind.
func (p PerDevice) Name() string { return p[0].Name() }

// Render renders on the device's own engine.
func (p PerDevice) Render(ctx context.Context, req Request, onProgress func(Progress)) (Image, error) {
	if len(p) == 0 {
		return Image{}, fmt.Errorf("%w: no engines configured", ErrInvalidRequest)
	}
	i := 0
	if d, ok := DeviceFrom(ctx); ok && d.Index >= 0 {
		i = d.Index % len(p)
	}
	return p[i].Render(ctx, req, onProgress)
}
