// Package thumbnail turns rendered PNG images into small WebP previews for
// gallery listings, where full-size PNGs would be slow to load.
package thumbnail

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"

	"github.com/gen2brain/webp"
	"golang.org/x/image/draw"
)

// DefaultMaxSide is the longest side of a gallery thumbnail in pixels.
const DefaultMaxSide = 256

// Quality is the lossy WebP quality (0-100) of thumbnails: at 80 a gallery
// preview is indistinguishable at its size and a fraction of the lossless
// bytes (docs/architecture.md has the measured sizes).
const Quality = 80

// ErrInvalidSize is returned for a maxSide that cannot hold any picture.
var ErrInvalidSize = errors.New("thumbnail: max side must be positive")

// WebP decodes pngBytes, scales the picture so its longest side is at most
// maxSide while keeping its aspect ratio, and encodes it as lossy WebP at
// Quality (libwebp, run in-process as WebAssembly: no cgo).
// Pictures that already fit are re-encoded at their own size, never enlarged.
func WebP(pngBytes []byte, maxSide int) ([]byte, error) {
	if maxSide <= 0 {
		return nil, fmt.Errorf("%w: got %d", ErrInvalidSize, maxSide)
	}
	src, err := png.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		return nil, fmt.Errorf("thumbnail: decode png: %w", err)
	}
	dst := scale(src, fit(src.Bounds().Size(), maxSide))
	var out bytes.Buffer
	if err := webp.Encode(&out, dst, webp.Options{Quality: Quality, Method: webp.DefaultMethod}); err != nil {
		return nil, fmt.Errorf("thumbnail: encode webp %dx%d: %w", dst.Bounds().Dx(), dst.Bounds().Dy(), err)
	}
	return out.Bytes(), nil
}

// fit returns the size of the thumbnail for a picture of size src: the
// longest side becomes maxSide and the other keeps the aspect ratio, rounded
// and never below one pixel so extreme panoramas still produce an image.
func fit(src image.Point, maxSide int) image.Point {
	longest := max(src.X, src.Y)
	if longest <= maxSide {
		return src
	}
	shrink := func(n int) int { return max(1, (n*maxSide+longest/2)/longest) }
	return image.Pt(shrink(src.X), shrink(src.Y))
}

// scale resamples src to size. It works in RGBA because that is the form
// x/image/draw has fast paths for; other forms go through a per-pixel
// interface call that is several times slower.
func scale(src image.Image, size image.Point) *image.NRGBA {
	dst := image.NewRGBA(image.Rectangle{Max: size})
	if size == src.Bounds().Size() {
		draw.Draw(dst, dst.Bounds(), src, src.Bounds().Min, draw.Src)
	} else {
		draw.CatmullRom.Scale(dst, dst.Bounds(), rgba(src), src.Bounds(), draw.Src, nil)
	}
	return toNRGBA(dst)
}

// rgba converts paletted images, which is what the sim engine writes, to
// RGBA through a colour table. Other images are returned as they are.
func rgba(src image.Image) image.Image {
	p, ok := src.(*image.Paletted)
	if !ok {
		return src
	}
	var table [256][4]uint8
	for i, c := range p.Palette {
		r, g, b, a := c.RGBA()
		table[i] = [4]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
	}
	b := p.Bounds()
	out := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		row := p.Pix[p.PixOffset(b.Min.X, y):][:b.Dx()]
		dst := out.Pix[out.PixOffset(b.Min.X, y):][:4*b.Dx()]
		for x, idx := range row {
			copy(dst[4*x:4*x+4], table[idx][:])
		}
	}
	return out
}

// toNRGBA hands the WebP encoder the straight-alpha form it works on. For
// opaque pictures premultiplied and straight alpha are the same bytes, so
// the pixels are shared instead of converted.
func toNRGBA(img *image.RGBA) *image.NRGBA {
	if img.Opaque() {
		return &image.NRGBA{Pix: img.Pix, Stride: img.Stride, Rect: img.Rect}
	}
	out := image.NewNRGBA(img.Rect)
	draw.Draw(out, out.Rect, img, img.Rect.Min, draw.Src)
	return out
}
