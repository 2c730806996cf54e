package picture_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/gen2brain/webp"

	"github.com/easel/easel/internal/picture"
)

// gradient is a picture whose every pixel differs from its neighbours, so
// that a scaled or altered copy is told apart from an exact one.
func gradient(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(x * 255 / w), G: uint8(y * 255 / h), B: uint8((x + y) % 256), A: 255})
		}
	}
	return img
}

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withChunk inserts an ancillary PNG chunk (e.g. tEXt) after IHDR.
func withChunk(t *testing.T, pngData []byte, typ string, data []byte) []byte {
	t.Helper()
	const ihdrEnd = 8 + 4 + 4 + 13 + 4
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	chunk = append(chunk, typ...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	out := append([]byte{}, pngData[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, pngData[ihdrEnd:]...)
}

func TestNormalizeAcceptsPNGJPEGAndWebP(t *testing.T) {
	t.Parallel()
	src := gradient(40, 24)
	var jpg, wp bytes.Buffer
	if err := jpeg.Encode(&jpg, src, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	if err := webp.Encode(&wp, src, webp.Options{Lossless: true}); err != nil {
		t.Fatal(err)
	}
	for format, data := range map[string][]byte{picture.FormatPNG: encodePNG(t, src), picture.FormatJPEG: jpg.Bytes(),
		picture.FormatWebP: wp.Bytes()} {
		t.Run(format, func(t *testing.T) {
			p, err := picture.Normalize(data, 40*24)
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if p.Width != 40 || p.Height != 24 || p.Source != format {
				t.Fatalf("got %dx%d from %s, want 40x24 from %s", p.Width, p.Height, p.Source, format)
			}
			out, err := png.Decode(bytes.NewReader(p.Data))
			if err != nil {
				t.Fatalf("stored bytes are not a PNG: %v", err)
			}
			if format != picture.FormatJPEG { // lossless formats keep every pixel
				if got, want := color.NRGBAModel.Convert(out.At(13, 7)), src.At(13, 7); got != want {
					t.Fatalf("pixel (13,7) = %v, want %v", got, want)
				}
			}
		})
	}
}

// The stored PNG is re-encoded from pixels: text chunks (and with them any
// metadata) of the upload are gone.
func TestNormalizeDropsMetadata(t *testing.T) {
	t.Parallel()
	data := withChunk(t, encodePNG(t, gradient(8, 8)), "tEXt", []byte("GPS\x0052.52N 13.40E"))
	if _, err := png.Decode(bytes.NewReader(data)); err != nil {
		t.Fatalf("test PNG with a text chunk does not decode: %v", err)
	}
	p, err := picture.Normalize(data, 64)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p.Data, []byte("tEXt")) || bytes.Contains(p.Data, []byte("52.52N")) {
		t.Fatal("the stored PNG still carries the upload's text chunk")
	}
}

func TestNormalizeRefuses(t *testing.T) {
	t.Parallel()
	small := encodePNG(t, gradient(8, 8))
	// A PNG header that claims 100000x100000 pixels: refused from the
	// header alone, before any pixel is decoded.
	huge := append([]byte{}, small...)
	binary.BigEndian.PutUint32(huge[16:], 100000)
	binary.BigEndian.PutUint32(huge[20:], 100000)
	binary.BigEndian.PutUint32(huge[29:], crc32.ChecksumIEEE(huge[12:29]))
	gif := []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")
	for name, c := range map[string]struct {
		data []byte
		want error
	}{
		"text":                        {[]byte("hello, this is not a picture\n"), picture.ErrNotImage},
		"empty":                       {nil, picture.ErrNotImage},
		"gif":                         {gif, picture.ErrNotImage},
		"png named by its bytes only": {append([]byte("x"), small...), picture.ErrNotImage},
		"truncated png":               {small[:40], picture.ErrCorrupt},
	} {
		if _, err := picture.Normalize(c.data, 1<<20); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	var tooMany *picture.TooManyPixelsError
	if _, err := picture.Normalize(huge, 1<<20); !errors.As(err, &tooMany) || tooMany.Width != 100000 {
		t.Errorf("huge header: %v, want TooManyPixelsError", err)
	}
	if _, err := picture.Normalize(small, 63); !errors.As(err, &tooMany) || tooMany.MaxPixels != 63 {
		t.Errorf("8x8 with 63 allowed: %v, want TooManyPixelsError", err)
	}
}

func TestFitKeepsExactPixelsAtTheSameSize(t *testing.T) {
	t.Parallel()
	data := encodePNG(t, gradient(32, 16))
	same, err := picture.Fit(data, 32, 16)
	if err != nil || !bytes.Equal(same, data) {
		t.Fatalf("Fit to its own size changed the PNG (%v)", err)
	}
	scaled, err := picture.Fit(data, 64, 48)
	if err != nil {
		t.Fatal(err)
	}
	if w, h, err := picture.Size(scaled); err != nil || w != 64 || h != 48 {
		t.Fatalf("scaled to %dx%d (%v), want 64x48", w, h, err)
	}
}

func TestMaskIsGrayAndInverts(t *testing.T) {
	t.Parallel()
	m := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			if x >= 8 {
				m.SetNRGBA(x, y, color.NRGBA{255, 255, 255, 255})
			} else {
				m.SetNRGBA(x, y, color.NRGBA{0, 0, 0, 255})
			}
		}
	}
	mask, err := picture.MaskPNG(encodePNG(t, m), 32, 32)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(mask))
	if err != nil {
		t.Fatal(err)
	}
	g, ok := img.(*image.Gray)
	if !ok || g.Bounds().Dx() != 32 || g.GrayAt(2, 5).Y != 0 || g.GrayAt(30, 5).Y != 255 {
		t.Fatalf("mask is %T %v, want 32x32 gray, black left and white right", img, img.Bounds())
	}
	inv, err := picture.Invert(mask)
	if err != nil {
		t.Fatal(err)
	}
	img, _ = png.Decode(bytes.NewReader(inv))
	if g := img.(*image.Gray); g.GrayAt(2, 5).Y != 255 || g.GrayAt(30, 5).Y != 0 {
		t.Fatal("Invert did not swap black and white")
	}
}
