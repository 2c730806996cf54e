// Package pricing computes what a generation costs in credits. It is a pure
// function of the request so the API can quote before anything is held and
// the saga can settle per image produced.
//
// One credit buys one SD-1.5 image of 512x512 pixels at 30 steps. Cost grows
// linearly with pixels and steps and is weighted by model family (SDXL's
// native 1024x1024 costs 2, FLUX's costs 6), rounded up per image, with a
// floor of one credit per image.
package pricing

import (
	"fmt"
)

// Reference work that costs weight credits: a 512x512 image at 30 steps.
const (
	referencePixels = 512 * 512
	referenceSteps  = 30
)

// weight is a model family's credits per reference unit of work, as a
// fraction so that all arithmetic stays in integers.
type weight struct{ num, den int64 }

var weights = map[string]weight{
	"sd-1.5": {1, 1},
	"sdxl":   {1, 2},
	"flux":   {3, 2},
}

// Request is what the price depends on.
type Request struct {
	Model     string
	Width     int
	Height    int
	Steps     int
	BatchSize int
}

// Quote is the price of a request.
type Quote struct {
	PerImage int    `json:"per_image"`
	Images   int    `json:"images"`
	Total    int    `json:"total"`
	Formula  string `json:"formula"`
}

// Formula documents the price in words, returned with every quote.
const Formula = "per image: ceil(model_weight * width*height/(512*512) * steps/30), at least 1; " +
	"model_weight sd-1.5=1, sdxl=0.5, flux=1.5; total = per image * batch_size; " +
	"settled per image actually produced"

// Price quotes a request. It fails on an unknown model or non-positive sizes.
func Price(r Request) (Quote, error) {
	w, ok := weights[r.Model]
	if !ok {
		return Quote{}, fmt.Errorf("price: unknown model %q", r.Model)
	}
	if r.Width <= 0 || r.Height <= 0 || r.Steps <= 0 || r.BatchSize <= 0 {
		return Quote{}, fmt.Errorf("price: width, height, steps and batch_size must be positive")
	}
	work := w.num * int64(r.Width) * int64(r.Height) * int64(r.Steps)
	unit := w.den * referencePixels * referenceSteps
	per := max(int((work+unit-1)/unit), 1)
	return Quote{PerImage: per, Images: r.BatchSize, Total: per * r.BatchSize, Formula: Formula}, nil
}

// ForImages is the charge for the images actually produced.
func (q Quote) ForImages(n int) int { return q.PerImage * min(max(n, 0), q.Images) }
