package sim

import (
	"fmt"
	"image"
	"image/color"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/easel/easel/internal/engine"
)

// The label tells whoever sees a sim picture what it is: a stand-in, and
// the request that made it. It is drawn in a box in the bottom-left corner,
// in the palette's lightest colour on its darkest, with the 7x13 bitmap
// font scaled by whole pixels (2x from 1024 px, 3x from 1536 px...), so it
// stays crisp and legible at every size and costs a few microseconds.

var face = basicfont.Face7x13

const (
	glyphW   = 7
	lineH    = 13
	padding  = 4  // font pixels around the text
	maxLines = 4  // banner, two prompt lines, details
	minChars = 12 // narrower pictures get no label
)

// label draws req's caption onto img.
func label(img *canvas, req engine.Request) {
	k := max(1, min(req.Width, req.Height)/512)
	cols := (req.Width/k - 2*padding) / glyphW
	if cols < minChars || req.Height/k < lineH+2*padding {
		return
	}
	lines := caption(req, cols)
	for len(lines)*lineH+2*padding > req.Height/k {
		lines = lines[:len(lines)-1]
	}
	mask := renderText(lines)
	dark, light := extremes(img.Palette)
	origin := image.Pt(0, req.Height-mask.Rect.Dy()*k)
	for y := range mask.Rect.Dy() {
		for x := range mask.Rect.Dx() {
			idx := dark
			if mask.AlphaAt(x, y).A > 127 {
				idx = light
			}
			for dy := range k {
				row := img.Pix[(origin.Y+y*k+dy)*img.Stride:]
				for dx := range k {
					row[origin.X+x*k+dx] = idx
				}
			}
		}
	}
}

// caption is the label's text, each line at most cols characters.
func caption(req engine.Request, cols int) []string {
	lines := []string{"SIMULATED IMAGE (easel sim engine)"}
	prompt := wrap("prompt: "+printable(req.Prompt), cols, 2)
	lines = append(lines, prompt...)
	lines = append(lines, fmt.Sprintf("seed %d | model %s | %dx%d", req.Seed, req.Model, req.Width, req.Height))
	for i, l := range lines {
		lines[i] = clip(l, cols)
	}
	return lines[:min(len(lines), maxLines)]
}

// printable keeps what the bitmap font can draw (ASCII), marking the rest.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' {
			return '?'
		}
		return r
	}, s)
}

// wrap breaks s into at most n lines of cols characters, at spaces where
// it can; text past the last line is cut with "...".
func wrap(s string, cols, n int) []string {
	var lines []string
	for len(s) > cols && len(lines) < n-1 {
		cut := strings.LastIndexByte(s[:cols+1], ' ')
		if cut <= 0 {
			cut = cols
		}
		lines = append(lines, s[:cut])
		s = strings.TrimLeft(s[cut:], " ")
	}
	return append(lines, clip(s, cols))
}

func clip(s string, cols int) string {
	if len(s) <= cols {
		return s
	}
	return s[:cols-3] + "..."
}

// renderText draws lines in a box with padding, one byte of coverage per
// font pixel.
func renderText(lines []string) *image.Alpha {
	widest := 0
	for _, l := range lines {
		widest = max(widest, len(l))
	}
	mask := image.NewAlpha(image.Rect(0, 0, widest*glyphW+2*padding, len(lines)*lineH+2*padding))
	d := font.Drawer{Dst: mask, Src: image.Opaque, Face: face}
	for i, l := range lines {
		d.Dot = fixed.P(padding, padding+i*lineH+face.Ascent)
		d.DrawString(l)
	}
	return mask
}

// extremes returns the palette indices of the darkest and lightest colours.
func extremes(pal color.Palette) (dark, light uint8) {
	lum := func(c color.Color) uint32 {
		r, g, b, _ := c.RGBA()
		return 299*r + 587*g + 114*b
	}
	for i, c := range pal {
		if lum(c) < lum(pal[dark]) {
			dark = uint8(i)
		}
		if lum(c) > lum(pal[light]) {
			light = uint8(i)
		}
	}
	return dark, light
}
