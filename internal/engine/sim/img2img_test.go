package sim

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"testing"

	"github.com/easel/easel/internal/engine"
)

// gradient is an init image with structure of its own: a diagonal ramp,
// unrelated to the simulated picture's waves.
func gradient(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := uint8((x + y) * 255 / (w + h))
			img.SetNRGBA(x, y, color.NRGBA{R: v, G: 255 - v, B: uint8(x * 255 / w), A: 255})
		}
	}
	return img
}

func pngOf(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// halfMask repaints the left half and keeps the right half.
func halfMask(w, h int) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w / 2 {
			m.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	return m
}

func img2img(t *testing.T, strength float64, mask image.Image) engine.Request {
	t.Helper()
	req := request()
	req.InitImage, req.Strength = pngOf(t, gradient(req.Width, req.Height)), strength
	if mask != nil {
		req.Mask = pngOf(t, mask)
	}
	return req
}

func luma(c color.Color) float64 {
	r, g, b, _ := c.RGBA()
	return 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b)
}

// correlation is the Pearson correlation of two pictures' luminance.
func correlation(a, b image.Image) float64 {
	var n, sa, sb, saa, sbb, sab float64
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			va, vb := luma(a.At(x, y)), luma(b.At(x, y))
			n++
			sa, sb, saa, sbb, sab = sa+va, sb+vb, saa+va*va, sbb+vb*vb, sab+va*vb
		}
	}
	return (n*sab - sa*sb) / math.Sqrt((n*saa-sa*sa)*(n*sbb-sb*sb))
}

func sameColors(a, b image.Image, r image.Rectangle) bool {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if color.NRGBAModel.Convert(a.At(x, y)) != color.NRGBAModel.Convert(b.At(x, y)) {
				return false
			}
		}
	}
	return true
}

// The picture comes from the init image: the lower the strength, the more
// it looks like it; at 1 it is the text-to-image picture, at 0 the init
// image itself.
func TestImageToImageDerivesFromTheInitImage(t *testing.T) {
	e := New(Config{})
	req := request()
	init, txt := gradient(req.Width, req.Height), decode(t, render(t, e, req).PNG)
	if c := correlation(txt, init); math.Abs(c) > 0.3 {
		t.Fatalf("test premise: the text-to-image picture correlates %.2f with the init image", c)
	}
	prev := 1.0
	for _, s := range []float64{0.25, 0.5, 0.75} {
		out := decode(t, render(t, e, img2img(t, s, nil)).PNG)
		c := correlation(out, init)
		if c < 0.3 || c > prev {
			t.Errorf("strength %.2f: correlation with the init image %.2f (previous %.2f), want it high and falling", s, c, prev)
		}
		prev = c
	}
	if out := decode(t, render(t, e, img2img(t, 0, nil)).PNG); !sameColors(out, init, out.Bounds()) {
		t.Error("strength 0 changed the init image")
	}
	if out := decode(t, render(t, e, img2img(t, 1, nil)).PNG); !sameColors(out, txt, out.Bounds()) {
		t.Error("strength 1 is not the text-to-image picture")
	}
	a, b := render(t, e, img2img(t, 0.5, nil)), render(t, e, img2img(t, 0.5, nil))
	if !bytes.Equal(a.PNG, b.PNG) {
		t.Error("the same image-to-image request gave different bytes")
	}
}

// With a mask, the black (kept) pixels are exactly the init image's and
// the white ones are repainted.
func TestInpaintChangesOnlyMaskedPixels(t *testing.T) {
	e := New(Config{})
	req := img2img(t, 1, halfMask(request().Width, request().Height))
	out := decode(t, render(t, e, req).PNG)
	init := gradient(req.Width, req.Height)
	w, h := req.Width, req.Height
	if !sameColors(out, init, image.Rect(w/2, 0, w, h)) {
		t.Fatal("an unmasked pixel differs from the init image")
	}
	txt := decode(t, render(t, e, request()).PNG)
	if !sameColors(out, txt, image.Rect(0, 0, w/2, h)) {
		t.Fatal("masked pixels at strength 1 are not the repainted picture")
	}
}

// An image-to-image render runs the last Strength of its steps.
func TestImageToImageRunsTheStrengthOfItsSteps(t *testing.T) {
	req := img2img(t, 0.5, nil)
	req.Steps = 9
	var got []engine.Progress
	if _, err := New(Config{}).Render(t.Context(), req, func(p engine.Progress) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[4].Step != 5 || got[4].TotalSteps != 5 {
		t.Fatalf("progress %+v, want 5 steps (ceil(9*0.5))", got)
	}
}

func TestImageToImageRefusesBadSources(t *testing.T) {
	e := New(Config{})
	for name, change := range map[string]func(*engine.Request){
		"init image of another size": func(r *engine.Request) { r.InitImage = pngOf(t, gradient(8, 8)) },
		"init image not a png":       func(r *engine.Request) { r.InitImage = []byte("nope") },
		"mask of another size":       func(r *engine.Request) { r.Mask = pngOf(t, halfMask(8, 8)) },
		"mask without init image":    func(r *engine.Request) { r.InitImage = nil; r.Mask = pngOf(t, halfMask(r.Width, r.Height)) },
		"strength above 1":           func(r *engine.Request) { r.Strength = 1.5 },
		"strength NaN":               func(r *engine.Request) { r.Strength = math.NaN() },
	} {
		req := img2img(t, 0.5, nil)
		change(&req)
		if _, err := e.Render(t.Context(), req, nil); !errors.Is(err, engine.ErrInvalidRequest) {
			t.Errorf("%s: %v, want ErrInvalidRequest", name, err)
		}
	}
}
