// Package engine defines the interface every image engine implements: the
// simulated CPU engine used in development and tests, and InvokeAI on GPU hosts.
package engine

import (
	"context"
	"errors"
	"math"
)

// Request describes one image to render. A batch is rendered as one Request
// per image, with Seed advanced by the image's index.
type Request struct {
	Prompt         string
	NegativePrompt string
	Model          string
	Width          int
	Height         int
	Steps          int
	CFGScale       float64
	Seed           uint32
	// Graph, when set, is a raw InvokeAI graph to run instead of the one the
	// engine would build from the fields above. The sim engine ignores it.
	Graph []byte
	// InitImage, when set, is a PNG of exactly Width x Height that the
	// render starts from instead of pure noise (image-to-image).
	InitImage []byte
	// Strength is how much of InitImage is redrawn, 0..1: 0 keeps it, 1
	// ignores it. InvokeAI starts denoising at 1 - Strength.
	Strength float64
	// Mask, when set (only with InitImage), is a grayscale PNG of the same
	// size: white pixels are repainted, black ones keep InitImage
	// (inpainting); grays repaint partly.
	Mask []byte
}

// DenoiseSteps is the number of steps that actually run: all of Steps from
// noise, the last Strength of them from an init image (rounded up, at
// least one), as InvokeAI skips the first 1 - Strength of the schedule.
func (r Request) DenoiseSteps() int {
	if len(r.InitImage) == 0 {
		return r.Steps
	}
	return max(1, int(math.Ceil(float64(r.Steps)*r.Strength-1e-9)))
}

// Progress reports how far a render has come, with a small picture of
// the image being denoised when the engine has one.
type Progress struct {
	Step       int
	TotalSteps int
	Preview    *Preview
}

// Preview is a small picture of a render in progress (InvokeAI's progress
// image; the sim engine draws one).
type Preview struct {
	DataURL string `json:"data_url"` // data:image/png;base64,... or image/jpeg, image/webp
	Width   int    `json:"width"`
	Height  int    `json:"height"`
}

// Image is one rendered picture, encoded as PNG.
type Image struct {
	PNG    []byte
	Width  int
	Height int
}

// ErrInvalidRequest marks a request the engine can never render (unknown
// model, impossible size); retrying it elsewhere will not help.
var ErrInvalidRequest = errors.New("engine: invalid request")

// Engine renders images. Implementations must stop promptly when ctx is
// cancelled and return ctx.Err() (possibly wrapped).
type Engine interface {
	Name() string
	Render(ctx context.Context, req Request, onProgress func(Progress)) (Image, error)
}
