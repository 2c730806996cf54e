package sim

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/png"

	"github.com/easel/easel/internal/engine"
)

// The simulated image-to-image render mixes the init image with the
// engine's own picture for the request, pixel by pixel: weight Strength for
// the picture (0 keeps the init image exactly, 1 ignores it), times the
// mask's gray level when there is a mask (white repaints, black keeps the
// init image exactly). The result visibly comes from the init image, as a
// real engine's would, and is as deterministic as a text-to-image render.

// sources are a request's decoded init image and mask.
type sources struct {
	init *image.NRGBA
	mask *image.Gray // nil: repaint everywhere
}

// decodeSources decodes and checks the request's init image and mask;
// nil without an init image.
func decodeSources(req engine.Request) (*sources, error) {
	if len(req.InitImage) == 0 {
		if len(req.Mask) > 0 {
			return nil, fmt.Errorf("%w: a mask needs an init image", engine.ErrInvalidRequest)
		}
		return nil, nil
	}
	if req.Strength < 0 || req.Strength > 1 || req.Strength != req.Strength {
		return nil, fmt.Errorf("%w: strength %g outside 0..1", engine.ErrInvalidRequest, req.Strength)
	}
	img, err := decodeSized(req.InitImage, "init image", req.Width, req.Height)
	if err != nil {
		return nil, err
	}
	src := &sources{init: image.NewNRGBA(img.Bounds())}
	draw.Draw(src.init, src.init.Bounds(), img, img.Bounds().Min, draw.Src)
	if len(req.Mask) > 0 {
		m, err := decodeSized(req.Mask, "mask", req.Width, req.Height)
		if err != nil {
			return nil, err
		}
		src.mask = image.NewGray(m.Bounds())
		draw.Draw(src.mask, src.mask.Bounds(), m, m.Bounds().Min, draw.Src)
	}
	return src, nil
}

func decodeSized(data []byte, what string, w, h int) (image.Image, error) {
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: the %s is not a PNG: %v", engine.ErrInvalidRequest, what, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		return nil, fmt.Errorf("%w: the %s is %dx%d, the render %dx%d", engine.ErrInvalidRequest, what, b.Dx(), b.Dy(), w, h)
	}
	return img, nil
}

// full is the weight of a pixel that is all picture and no init image.
const full = 1 << 16

// blend mixes the painted picture into the init image (see above).
func (s *sources) blend(pic *canvas, strength float64) *image.NRGBA {
	out := image.NewNRGBA(s.init.Bounds())
	w, h := out.Bounds().Dx(), out.Bounds().Dy()
	base := uint32(strength*full + 0.5)
	for y := range h {
		in := s.init.Pix[y*s.init.Stride:][:4*w]
		dst := out.Pix[y*out.Stride:][:4*w]
		idx := pic.Pix[y*pic.Stride:][:w]
		for x := range w {
			wt := base
			if s.mask != nil {
				wt = wt * uint32(s.mask.Pix[y*s.mask.Stride+x]) / 255
			}
			c := pic.Palette[idx[x]]
			r, g, b, a := c.RGBA() // the palette is opaque NRGBA: 16-bit values of 8-bit ones
			p := [4]uint32{r >> 8, g >> 8, b >> 8, a >> 8}
			for k := range 4 {
				dst[4*x+k] = uint8((uint32(in[4*x+k])*(full-wt) + p[k]*wt + full/2) >> 16)
			}
		}
	}
	return out
}
