// Package picture reads the pictures users upload and prepares them for a
// render. An upload is told apart by its content, never by its name or
// declared type, decoded (PNG, JPEG or WebP), and stored re-encoded as PNG:
// the raw bytes are never kept, which also drops any metadata they carried
// (EXIF, GPS, colour profiles, text chunks). Before a render, an init image
// or mask is fitted to the job's exact size.
package picture

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"net/http"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// Source formats an upload may arrive in.
const (
	FormatPNG  = "png"
	FormatJPEG = "jpeg"
	FormatWebP = "webp"
)

// ErrNotImage reports data that is not a PNG, JPEG or WebP picture.
var ErrNotImage = errors.New("picture: not a PNG, JPEG or WebP image")

// ErrCorrupt reports data that looks like a supported picture but does not
// decode.
var ErrCorrupt = errors.New("picture: the image could not be decoded")

// TooManyPixelsError reports a picture larger than allowed.
type TooManyPixelsError struct {
	Width, Height int
	MaxPixels     int
}

func (e *TooManyPixelsError) Error() string {
	return fmt.Sprintf("picture: %dx%d is %d pixels, more than the %d allowed",
		e.Width, e.Height, e.Width*e.Height, e.MaxPixels)
}

// PNG is a picture encoded as PNG, with its size.
type PNG struct {
	Data          []byte
	Width, Height int
	// Source is the format the picture arrived in (FormatPNG, ...).
	Source string
}

// Sniff names the format of data by its first bytes (the WHATWG sniffing
// rules of net/http), or "" when it is none of PNG, JPEG and WebP.
func Sniff(data []byte) string {
	switch http.DetectContentType(data) {
	case "image/png":
		return FormatPNG
	case "image/jpeg":
		return FormatJPEG
	case "image/webp":
		return FormatWebP
	}
	return ""
}

type codec struct {
	decode       func(io.Reader) (image.Image, error)
	decodeConfig func(io.Reader) (image.Config, error)
}

// codecs decode each format with its own decoder, so that nothing depends
// on which packages registered themselves with image.Decode.
var codecs = map[string]codec{
	FormatPNG:  {png.Decode, png.DecodeConfig},
	FormatJPEG: {jpeg.Decode, jpeg.DecodeConfig},
	FormatWebP: {webp.Decode, webp.DecodeConfig},
}

// Normalize decodes an uploaded picture and re-encodes it as PNG. It reads
// the header first and refuses a picture of more than maxPixels before
// decoding any pixel, so a small file that claims a huge size costs nothing.
func Normalize(data []byte, maxPixels int) (PNG, error) {
	format := Sniff(data)
	c, ok := codecs[format]
	if !ok {
		return PNG{}, ErrNotImage
	}
	cfg, err := c.decodeConfig(bytes.NewReader(data))
	if err != nil {
		return PNG{}, fmt.Errorf("%w: read the %s header: %v", ErrCorrupt, format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return PNG{}, fmt.Errorf("%w: %s of %dx%d pixels", ErrCorrupt, format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return PNG{}, &TooManyPixelsError{Width: cfg.Width, Height: cfg.Height, MaxPixels: maxPixels}
	}
	img, err := c.decode(bytes.NewReader(data))
	if err != nil {
		return PNG{}, fmt.Errorf("%w: decode %s: %v", ErrCorrupt, format, err)
	}
	out, err := encode(img)
	if err != nil {
		return PNG{}, err
	}
	b := img.Bounds()
	return PNG{Data: out, Width: b.Dx(), Height: b.Dy(), Source: format}, nil
}

// Size reads a PNG's width and height from its header.
func Size(pngData []byte) (int, int, error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(pngData))
	if err != nil {
		return 0, 0, fmt.Errorf("picture: read png header: %w", err)
	}
	return cfg.Width, cfg.Height, nil
}

// Fit returns pngData as a PNG of exactly width x height: unchanged when it
// has that size already (so its pixels stay exact), else scaled (Catmull-Rom;
// the aspect ratio follows the new size).
func Fit(pngData []byte, width, height int) ([]byte, error) {
	w, h, err := Size(pngData)
	if err != nil {
		return nil, err
	}
	if w == width && h == height {
		return pngData, nil
	}
	src, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		return nil, fmt.Errorf("picture: decode png: %w", err)
	}
	dst := image.NewNRGBA(image.Rect(0, 0, width, height))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
	return encode(dst)
}

// MaskPNG returns pngData as an 8-bit grayscale PNG of exactly width x
// height: each pixel's luminance, scaled bilinearly when the size differs.
// White (255) marks what an inpainting job repaints, black what it keeps.
func MaskPNG(pngData []byte, width, height int) ([]byte, error) {
	src, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		return nil, fmt.Errorf("picture: decode mask png: %w", err)
	}
	gray := image.NewGray(src.Bounds())
	draw.Draw(gray, gray.Bounds(), src, src.Bounds().Min, draw.Src)
	if gray.Bounds().Dx() == width && gray.Bounds().Dy() == height {
		return encode(gray)
	}
	dst := image.NewGray(image.Rect(0, 0, width, height))
	draw.BiLinear.Scale(dst, dst.Bounds(), gray, gray.Bounds(), draw.Src, nil)
	return encode(dst)
}

// Invert returns a grayscale PNG with every pixel's luminance inverted
// (InvokeAI's masks keep white and repaint black, the opposite of Easel's).
func Invert(pngData []byte) ([]byte, error) {
	src, err := png.Decode(bytes.NewReader(pngData))
	if err != nil {
		return nil, fmt.Errorf("picture: decode mask png: %w", err)
	}
	gray := image.NewGray(src.Bounds())
	draw.Draw(gray, gray.Bounds(), src, src.Bounds().Min, draw.Src)
	for i, v := range gray.Pix {
		gray.Pix[i] = 255 - v
	}
	return encode(gray)
}

func encode(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("picture: encode png: %w", err)
	}
	return buf.Bytes(), nil
}
