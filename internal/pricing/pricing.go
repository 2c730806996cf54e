// Package pricing computes what a generation costs in credits. It is a pure
// function of the request so the API can quote before anything is held and
// the saga can settle per image produced.
//
// One credit buys one SD-1.5 image of 512x512 pixels at 30 steps. Cost grows
// linearly with pixels and steps and is weighted by model family (SDXL's
// native 1024x1024 costs 2, FLUX's costs 6), rounded up per image, with a
// floor of one credit per image. Image-to-image and inpainting run, and
// are priced for, only the steps their strength leaves (DenoiseSteps). A
// raw InvokeAI graph is priced by the sum of its denoise passes (see Passes).
package pricing

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/easel/easel/internal/catalog"
)

// Reference work that costs weight credits: a 512x512 image at 30 steps.
const (
	referencePixels = 512 * 512
	referenceSteps  = 30
)

// maxWork bounds the work of one image, in half reference units times the
// reference, so that a sum of passes cannot overflow.
const maxWork = 1 << 60

// Request is what the price depends on.
type Request struct {
	Model     string
	Width     int
	Height    int
	Steps     int
	BatchSize int
	// InitImage marks an image-to-image (or inpainting) request: only the
	// last Strength (0..1) of its steps run, and only those are priced.
	InitImage bool
	Strength  float64
}

// Pass is one denoising pass of an image: a raw graph may run several
// (a second pass at a higher resolution, a refiner) and fan a pass out
// Count times.
type Pass struct {
	Model  string
	Width  int
	Height int
	Steps  int
	Count  int
}

// Quote is the price of a request.
type Quote struct {
	PerImage int    `json:"per_image"`
	Images   int    `json:"images"`
	Total    int    `json:"total"`
	Formula  string `json:"formula"`
}

// Formula documents the price in words, returned with every quote.
var Formula = "per image: ceil(model_weight * width*height/(512*512) * steps/30), at least 1; " +
	"model_weight " + modelWeights() + "; from an init_image (image-to-image, inpainting) the steps that run: " +
	"ceil(steps * strength), at least 1; a raw graph: the sum of that over its denoise passes " +
	"(each at the graph's largest width and height, times its fan-out), rounded up once, at least 1; " +
	"total = per image * batch_size; settled per image actually produced"

// Price quotes a request. It fails on an unknown model or non-positive sizes.
func Price(r Request) (Quote, error) {
	steps := r.Steps
	if r.InitImage {
		if r.Strength < 0 || r.Strength > 1 || r.Strength != r.Strength {
			return Quote{}, fmt.Errorf("price: strength %g outside 0..1", r.Strength)
		}
		steps = DenoiseSteps(r.Steps, r.Strength)
	}
	return Passes([]Pass{{Model: r.Model, Width: r.Width, Height: r.Height, Steps: steps, Count: 1}}, r.BatchSize)
}

// DenoiseSteps is how many of steps run from an init image at strength:
// the engine skips the first 1 - strength of the schedule, so
// ceil(steps * strength), at least 1 (strength 0 still encodes and decodes
// the picture). engine.Request.DenoiseSteps counts the same way.
func DenoiseSteps(steps int, strength float64) int {
	if steps <= 0 {
		return steps
	}
	return max(1, int(math.Ceil(float64(steps)*strength-1e-9)))
}

// Passes quotes images that each run every pass given: the per-image price
// is the passes' summed work, rounded up once, with a floor of one credit.
func Passes(passes []Pass, images int) (Quote, error) {
	if images <= 0 {
		return Quote{}, errors.New("price: batch_size must be positive")
	}
	if len(passes) == 0 {
		return Quote{}, errors.New("price: an image needs at least one denoise pass")
	}
	var work int64
	for _, p := range passes {
		w, err := p.work()
		if err != nil {
			return Quote{}, err
		}
		if work += w; work > maxWork {
			return Quote{}, errors.New("price: the work of one image is too large to price")
		}
	}
	unit := int64(2 * referencePixels * referenceSteps)
	per := max(int((work+unit-1)/unit), 1)
	return Quote{PerImage: per, Images: images, Total: per * images, Formula: Formula}, nil
}

// work is the pass's weighted pixel-steps, in half credits times the
// reference unit.
func (p Pass) work() (int64, error) {
	m, ok := catalog.ModelByFamily(p.Model)
	w := m.PriceHalves
	if !ok {
		return 0, fmt.Errorf("price: unknown model %q", p.Model)
	}
	if p.Width <= 0 || p.Height <= 0 || p.Steps <= 0 || p.Count <= 0 {
		return 0, errors.New("price: width, height, steps and batch_size must be positive")
	}
	// The API's limits keep each factor far below 2^14; refuse what could
	// overflow (3 * 2^56 < maxWork) rather than trust that.
	if p.Width > 1<<14 || p.Height > 1<<14 || p.Steps > 1<<14 || p.Count > 1<<14 {
		return 0, errors.New("price: width, height, steps or fan-out out of range")
	}
	return w * int64(p.Width) * int64(p.Height) * int64(p.Steps) * int64(p.Count), nil
}

// modelWeights lists each family's weight for Formula: "sd-1.5=1, sdxl=0.5".
func modelWeights() string {
	parts := make([]string, len(catalog.Models))
	for i, m := range catalog.Models {
		parts[i] = m.Family + "=" + strconv.FormatFloat(float64(m.PriceHalves)/2, 'f', -1, 64)
	}
	return strings.Join(parts, ", ")
}

// Share is amount times part/whole, rounded half up: the prorated share of
// an amount of money or credits. Nothing when any of them is not positive.
func Share(amount, part, whole int64) int64 {
	if amount <= 0 || part <= 0 || whole <= 0 {
		return 0
	}
	return (2*amount*part + whole) / (2 * whole)
}
