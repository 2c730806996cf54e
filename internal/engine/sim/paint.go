package sim

import (
	"encoding/binary"
	"hash/fnv"
	"image"
	"image/color"
	"math"
	"sync"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
)

// The picture is a plasma: a sum of sine waves, some of them warped by
// others, whose value indexes a 256-colour cyclic palette. Painting straight
// into an image.Paletted keeps the hot loop to table look-ups and additions,
// and lets the PNG encoder write one byte per pixel without row filtering.

// Phases are uint32 fractions of a full cycle, so wrapping on overflow is
// exactly wrapping around the circle; the top tableBits bits index sinTab.
const (
	tableBits  = 12 // 16 KiB table: fine enough to hide steps, small enough for L1
	phaseShift = 32 - tableBits
	amplitude  = 1024 // sinTab range is [-amplitude, amplitude]
	waves      = 4    // number of waves summed per pixel
)

var sinTab = func() (t [1 << tableBits]int32) {
	for i := range t {
		t[i] = int32(math.Round(amplitude * math.Sin(2*math.Pi*float64(i)/float64(len(t)))))
	}
	return t
}()

// detail is how many wave cycles span the longest side per model family;
// the families get visibly different styles so a model switch is noticed.
var detail = map[string]float64{
	catalog.ModelSD15: 2.5,
	catalog.ModelSDXL: 1.8,
	catalog.ModelFlux: 1.2,
}

// wave is one sine wave: phase = x*fx + y*fy + offset.
type wave struct{ fx, fy, offset uint32 }

func (w wave) at(x, y int) uint32 {
	return uint32(x)*w.fx + uint32(y)*w.fy + w.offset
}

// params is everything about a picture that comes from the request hash.
type params struct {
	diag1, diag2, warpedX, warpedY wave
	warpX, warpY                   wave  // waves that bend warpedX/warpedY
	warpAmp                        int64 // warp depth in phase units per amplitude
	scale                          int32 // maps the wave sum onto palette cycles (16.16 fixed point)
	shift                          uint8 // palette rotation
	palette                        color.Palette
}

// rng is splitmix64: tiny, fast and fully determined by its seed, which is
// all a picture generator needs.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float returns a value in [lo, hi).
func (r *rng) float(lo, hi float64) float64 {
	return lo + (hi-lo)*float64(r.next()>>11)/(1<<53)
}

// seedOf hashes the fields that define the picture's content. Size, steps
// and CFG scale are left out so a prompt looks alike at every resolution and
// quality setting, as it roughly would on a real model.
func seedOf(req engine.Request) rng {
	h := fnv.New64a()
	for _, s := range []string{req.Prompt, req.NegativePrompt, req.Model} {
		h.Write([]byte(s))
		h.Write([]byte{0}) // separator: ("ab","c") must differ from ("a","bc")
	}
	h.Write(binary.LittleEndian.AppendUint32(nil, req.Seed))
	return rng(h.Sum64())
}

func newParams(req engine.Request) params {
	r := seedOf(req)
	// Frequencies are relative to the longest side so the pattern keeps its
	// shape, unstretched, whatever the aspect ratio.
	side := float64(max(req.Width, req.Height))
	cycles := detail[req.Model]
	freq := func(lo, hi float64) uint32 {
		f := r.float(lo, hi) * cycles * (1 << 32) / side
		if r.next()&1 == 0 {
			f = -f
		}
		return uint32(int64(f))
	}
	randWave := func(fx, fy bool) wave {
		w := wave{offset: uint32(r.next())}
		if fx {
			w.fx = freq(0.4, 1.6)
		}
		if fy {
			w.fy = freq(0.4, 1.6)
		}
		return w
	}
	p := params{
		diag1:   randWave(true, true),
		diag2:   randWave(true, true),
		warpedX: randWave(true, false),
		warpedY: randWave(false, true),
		warpX:   randWave(true, false),
		warpY:   randWave(false, true),
		warpAmp: int64(r.float(0.3, 1.2) * (1 << 32) / amplitude),
		// The wave sum spans 2*waves*amplitude; show 1 to 2.5 palette cycles.
		scale: int32(r.float(1, 2.5) * 256 * (1 << 16) / (2 * waves * amplitude)),
		shift: uint8(r.next()),
	}
	p.palette = newPalette(&r)
	return p
}

// newPalette builds a cosine gradient (a + b*cos(2π(t+d)) per channel).
// Whole-cycle cosines make it wrap seamlessly, so palette indices can
// overflow without visible seams.
func newPalette(r *rng) color.Palette {
	var a, b, d [3]float64
	for c := range 3 {
		a[c] = r.float(0.35, 0.65)
		b[c] = r.float(0.25, 0.5)
		d[c] = r.float(0, 1)
	}
	pal := make(color.Palette, 256)
	for i := range pal {
		t := float64(i) / 256
		var rgb [3]uint8
		for c := range 3 {
			v := a[c] + b[c]*math.Cos(2*math.Pi*(t+d[c]))
			rgb[c] = uint8(math.Round(255 * min(max(v, 0), 1)))
		}
		// NRGBA because the PNG encoder converts palette entries to it,
		// which allocates for any other colour type.
		pal[i] = color.NRGBA{R: rgb[0], G: rgb[1], B: rgb[2], A: 255}
	}
	return pal
}

// canvas is a paletted image whose pixel buffer returns to a pool after
// encoding, sparing a large allocation per render.
type canvas struct {
	*image.Paletted
	buf *[]uint8
}

var pixPool sync.Pool

func newCanvas(w, h int, pal color.Palette) *canvas {
	buf, _ := pixPool.Get().(*[]uint8)
	if buf == nil || cap(*buf) < w*h {
		buf = new(make([]uint8, w*h))
	}
	*buf = (*buf)[:w*h]
	img := &image.Paletted{Pix: *buf, Stride: w, Rect: image.Rect(0, 0, w, h), Palette: pal}
	return &canvas{Paletted: img, buf: buf}
}

func (c *canvas) release() { pixPool.Put(c.buf) }

// paint renders req's picture and labels it as a stand-in. Every pixel is
// written, so a reused buffer needs no clearing.
func paint(req engine.Request) *canvas {
	p := newParams(req)
	img := newCanvas(req.Width, req.Height, p.palette)
	bends := p.columnBends(req.Width)
	for y := range req.Height {
		p.paintRow(img.Pix[y*img.Stride:][:req.Width], y, bends)
	}
	label(img, req)
	return img
}

// columnBends holds, per column, the phase offset bending the warpedY wave;
// it depends only on x, so it is computed once per render, not per pixel.
func (p *params) columnBends(w int) []uint32 {
	bends := make([]uint32, w)
	for x := range bends {
		bends[x] = p.bend(p.warpX.at(x, 0))
	}
	return bends
}

// bend turns a warp wave's phase into a phase offset for the wave it bends.
func (p *params) bend(phase uint32) uint32 {
	return uint32(int64(sinTab[phase>>phaseShift]) * p.warpAmp)
}

// paintRow is the hot loop: four table look-ups and a handful of additions
// per pixel. Waves linear in x advance by a constant step, so their phases
// are accumulated rather than multiplied out.
func (p *params) paintRow(row []uint8, y int, bends []uint32) {
	d1, d2 := p.diag1.at(0, y), p.diag2.at(0, y)
	wx := p.warpedX.at(0, y) + p.bend(p.warpY.at(0, y))
	wy := p.warpedY.at(0, y)
	bends = bends[:len(row)]
	for x := range row {
		v := sinTab[d1>>phaseShift] + sinTab[d2>>phaseShift] +
			sinTab[wx>>phaseShift] + sinTab[(wy+bends[x])>>phaseShift]
		row[x] = uint8((v*p.scale)>>16) + p.shift
		d1 += p.diag1.fx
		d2 += p.diag2.fx
		wx += p.warpedX.fx
	}
}
