package thumbnail

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"testing"

	"golang.org/x/image/webp"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/engine/sim"
)

// gradient returns a w x h PNG with a diagonal colour ramp, so scaling
// mistakes (swapped axes, flat output) show up in the decoded pixels.
func gradient(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: uint8(255 * x / w), G: uint8(255 * y / h), B: 128, A: 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatalf("encode test png: %v", err)
	}
	return buf.Bytes()
}

func TestWebPDimensions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		w, h, max    int
		wantW, wantH int
	}{
		{"square", 512, 512, 256, 256, 256},
		{"landscape", 1024, 576, 256, 256, 144},
		{"portrait", 600, 900, 256, 171, 256},
		{"already small", 100, 60, 256, 100, 60},
		{"exact fit", 256, 128, 256, 256, 128},
		{"thin strip", 2000, 3, 256, 256, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := WebP(gradient(t, c.w, c.h), c.max)
			if err != nil {
				t.Fatalf("WebP: %v", err)
			}
			cfg, err := webp.DecodeConfig(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("decode webp config: %v", err)
			}
			if cfg.Width != c.wantW || cfg.Height != c.wantH {
				t.Fatalf("got %dx%d, want %dx%d", cfg.Width, cfg.Height, c.wantW, c.wantH)
			}
		})
	}
}

// TestWebPKeepsContent checks the decoded thumbnail still looks like the
// source: the red ramp runs left to right and green top to bottom.
func TestWebPKeepsContent(t *testing.T) {
	t.Parallel()
	out, err := WebP(gradient(t, 800, 400), DefaultMaxSide)
	if err != nil {
		t.Fatalf("WebP: %v", err)
	}
	img, err := webp.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("decode webp: %v", err)
	}
	b := img.Bounds()
	left, right := rgb(img.At(b.Min.X+2, b.Min.Y+2)), rgb(img.At(b.Max.X-3, b.Max.Y-3))
	if right[0] < left[0]+200 || right[1] < left[1]+200 {
		t.Fatalf("ramp lost: top-left %v, bottom-right %v", left, right)
	}
	if left[2] < 120 || left[2] > 136 {
		t.Fatalf("blue channel %d, want about 128", left[2])
	}
}

func rgb(c color.Color) [3]int {
	r, g, b, _ := c.RGBA()
	return [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
}

func TestWebPRejectsBadInput(t *testing.T) {
	t.Parallel()
	if _, err := WebP([]byte("not a png"), DefaultMaxSide); err == nil {
		t.Fatal("accepted garbage input")
	}
	if _, err := WebP(gradient(t, 4, 4), 0); !errors.Is(err, ErrInvalidSize) {
		t.Fatalf("maxSide 0: err = %v, want ErrInvalidSize", err)
	}
}

func BenchmarkWebP(b *testing.B) {
	src := gradient(b, 1024, 1024)
	for b.Loop() {
		if _, err := WebP(src, DefaultMaxSide); err != nil {
			b.Fatal(err)
		}
	}
}

// paletted returns a w x h paletted PNG, the form the sim engine renders.
func paletted(t testing.TB, w, h int) []byte {
	t.Helper()
	pal := make(color.Palette, 256)
	for i := range pal {
		pal[i] = color.NRGBA{R: uint8(i), G: uint8(255 - i), B: 90, A: 255}
	}
	img := image.NewPaletted(image.Rect(0, 0, w, h), pal)
	for i := range img.Pix {
		img.Pix[i] = uint8(i % w * 256 / w)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatalf("encode test png: %v", err)
	}
	return buf.Bytes()
}

func TestWebPFromPalettedPNG(t *testing.T) {
	t.Parallel()
	out, err := WebP(paletted(t, 1024, 768), DefaultMaxSide)
	if err != nil {
		t.Fatalf("WebP: %v", err)
	}
	img, err := webp.Decode(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("decode webp: %v", err)
	}
	if got := img.Bounds().Size(); got != image.Pt(256, 192) {
		t.Fatalf("got %v, want 256x192", got)
	}
	if r := rgb(img.At(250, 100))[0]; r < 230 {
		t.Fatalf("right edge red = %d, want the end of the ramp", r)
	}
}

func BenchmarkWebPPaletted(b *testing.B) {
	src := paletted(b, 1024, 1024)
	for b.Loop() {
		if _, err := WebP(src, DefaultMaxSide); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWebPIsLossyAndSmall encodes the thumbnail of a real sim render: it must
// be lossy WebP ("VP8 " chunk, not "VP8L") and much smaller than the same
// thumbnail as PNG (lossless WebP measured 31 % of it).
func TestWebPIsLossyAndSmall(t *testing.T) {
	t.Parallel()
	img, err := sim.New(sim.Config{}).Render(t.Context(), engine.Request{Prompt: "a lighthouse at dusk",
		Model: catalog.ModelSDXL, Width: 1024, Height: 1024, Steps: 1, Seed: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := WebP(img.PNG, DefaultMaxSide)
	if err != nil {
		t.Fatalf("WebP: %v", err)
	}
	if len(out) < 16 || string(out[12:16]) != "VP8 " {
		t.Fatalf("thumbnail chunk %q, want lossy \"VP8 \"", out[12:16])
	}
	src, err := png.Decode(bytes.NewReader(img.PNG))
	if err != nil {
		t.Fatal(err)
	}
	var thumbPNG bytes.Buffer
	if err := png.Encode(&thumbPNG, scale(src, fit(src.Bounds().Size(), DefaultMaxSide))); err != nil {
		t.Fatal(err)
	}
	ratio := float64(len(out)) / float64(thumbPNG.Len())
	t.Logf("webp %d B = %.1f %% of the same thumbnail as PNG (%d B), %.2f %% of the full render (%d B)",
		len(out), 100*ratio, thumbPNG.Len(), 100*float64(len(out))/float64(len(img.PNG)), len(img.PNG))
	if ratio > 0.2 {
		t.Fatalf("thumbnail is %.0f %% of the PNG, want under 20 %%", 100*ratio)
	}
}
