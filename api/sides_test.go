package api

import (
	"image"
	"testing"

	"github.com/easel/easel/internal/catalog"
)

// TestOneSideSent: a side left out is the model's native side, or, with
// an init image, keeps the picture's aspect (to a multiple of 8).
func TestOneSideSent(t *testing.T) {
	for _, tc := range []struct {
		name          string
		r             GenerationRequest
		width, height int
	}{
		{"width only", GenerationRequest{Prompt: "x", Width: 768}, 768, 512},
		{"height only, sdxl", GenerationRequest{Prompt: "x", Model: catalog.ModelSDXL, Height: 640}, 1024, 640},
		{"width only, 3:2 init image", GenerationRequest{Prompt: "x", Width: 600, initSize: image.Pt(1200, 800)}, 600, 400},
		{"height only, 3:2 init image", GenerationRequest{Prompt: "x", Height: 400, initSize: image.Pt(1200, 800)}, 600, 400},
		{"neither, init image", GenerationRequest{Prompt: "x", initSize: image.Pt(1201, 803)}, 1200, 800},
	} {
		tc.r.normalize()
		if tc.r.Width != tc.width || tc.r.Height != tc.height {
			t.Errorf("%s: %dx%d, want %dx%d", tc.name, tc.r.Width, tc.r.Height, tc.width, tc.height)
		}
	}
}
