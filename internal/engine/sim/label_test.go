package sim

import (
	"bytes"
	"image"
	"image/png"
	"strings"
	"testing"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
)

// TestRenderIsLabelled: a sim picture says it is a stand-in and names the
// prompt, seed, model and size, drawn legibly (two contrasting colours,
// whole-pixel font scaling) in its bottom-left corner.
func TestRenderIsLabelled(t *testing.T) {
	req := engine.Request{Prompt: "a lighthouse at dusk, oil on canvas", Model: catalog.ModelSDXL,
		Width: 1024, Height: 768, Steps: 1, Seed: 42}
	got, err := New(Config{}).Render(t.Context(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(got.PNG))
	if err != nil {
		t.Fatal(err)
	}
	pal := img.(*image.Paletted)
	const k = 1 // 768 / 512
	cols := (req.Width/k - 2*padding) / glyphW
	lines := caption(req, cols)
	text := strings.Join(lines, "\n")
	for _, want := range []string{"SIMULATED", req.Prompt, "seed 42", "model sdxl", "1024x768"} {
		if !strings.Contains(text, want) {
			t.Errorf("caption %q lacks %q", text, want)
		}
	}
	mask := renderText(lines)
	dark, light := extremes(pal.Palette)
	if lum(pal.Palette[light])-lum(pal.Palette[dark]) < 0.3 {
		t.Errorf("label contrast %.2f too low", lum(pal.Palette[light])-lum(pal.Palette[dark]))
	}
	top := req.Height - mask.Rect.Dy()*k
	ink := 0
	for y := range mask.Rect.Dy() {
		for x := range mask.Rect.Dx() {
			want := dark
			if mask.AlphaAt(x, y).A > 127 {
				want, ink = light, ink+1
			}
			if idx := pal.ColorIndexAt(x*k, top+y*k); idx != want {
				t.Fatalf("label pixel (%d,%d) is palette %d, want %d", x*k, top+y*k, idx, want)
			}
		}
	}
	if ink < 500 {
		t.Fatalf("only %d text pixels", ink)
	}
}

// TestLabelFitsEverySize: tiny and huge pictures still render, long prompts
// are cut, and the text never leaves the picture.
func TestLabelFitsEverySize(t *testing.T) {
	for _, size := range [][2]int{{8, 8}, {64, 64}, {100, 30}, {512, 512}, {3000, 200}, {4096, 4096}} {
		req := engine.Request{Prompt: strings.Repeat("très long prompt ", 40), Model: catalog.ModelFlux,
			Width: size[0], Height: size[1], Steps: 1}
		if _, err := New(Config{}).Render(t.Context(), req, nil); err != nil {
			t.Fatalf("%v: %v", size, err)
		}
		for _, l := range caption(req, 20) {
			if len(l) > 20 {
				t.Fatalf("line %q longer than 20", l)
			}
		}
	}
}

func lum(c interface{ RGBA() (r, g, b, a uint32) }) float64 {
	r, g, b, _ := c.RGBA()
	return (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b)) / 0xffff
}
