package sim

import (
	"encoding/base64"

	"github.com/easel/easel/internal/engine"
)

// previewSide is the longer side of a preview, in pixels.
const previewSide = 64

// preview draws the picture at preview size as it looks after step of
// steps: the finished picture with the pixels not yet "denoised"
// replaced by noise, so it sharpens as the render goes on, like a real
// engine's latents.
func (e *Engine) preview(req engine.Request, step, steps int) *engine.Preview {
	if e.cfg.NoPreviews {
		return nil
	}
	small := req
	small.Width, small.Height = previewSize(req.Width, req.Height)
	img := paint(small)
	keep := uint32(uint64(step) * 1 << 32 / uint64(max(steps, 1)))
	if step >= steps {
		keep = ^uint32(0)
	}
	n := uint32(len(img.Palette))
	for i := range img.Pix {
		h := noise(uint32(i), req.Seed)
		if h > keep {
			img.Pix[i] = uint8(h % n)
		}
	}
	data, err := encode(img)
	if err != nil {
		return nil
	}
	return &engine.Preview{DataURL: "data:image/png;base64," + base64.StdEncoding.EncodeToString(data),
		Width: small.Width, Height: small.Height}
}

// previewSize scales w x h so the longer side is previewSide.
func previewSize(w, h int) (int, int) {
	if w >= h {
		return previewSide, max(1, h*previewSide/max(w, 1))
	}
	return max(1, w*previewSide/max(h, 1)), previewSide
}

// noise is a per-pixel hash (a 32-bit integer mix), fixed for a seed, so
// a pixel once denoised stays so.
func noise(i, seed uint32) uint32 {
	x := i*0x9E3779B1 ^ seed
	x ^= x >> 16
	x *= 0x85EBCA6B
	x ^= x >> 13
	x *= 0xC2B2AE35
	return x ^ x>>16
}
