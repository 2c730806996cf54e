// Package sim provides a CPU image engine that stands in for a GPU in
// development and tests. It renders a deterministic procedural picture from
// the request and spends a configurable time per step, so workflows, progress
// reporting and cancellation behave as they would against a real engine.
package sim

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"slices"
	"sync"
	"time"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
)

// MaxSide is the largest width or height the engine accepts; real engines
// run out of GPU memory well before this, so larger requests are mistakes.
const MaxSide = 4096

// Config tunes the simulated engine.
type Config struct {
	// StepDelay is the time spent per denoising step, standing in for GPU
	// work. Zero renders as fast as the CPU allows.
	StepDelay time.Duration
	// Families are the model families it serves; nil serves every family.
	Families []string
	// NoPreviews leaves progress without preview pictures.
	NoPreviews bool
}

// Engine is the simulated engine. It is safe for concurrent use.
type Engine struct {
	cfg Config
}

var _ engine.Engine = (*Engine)(nil)

// New returns a simulated engine.
func New(cfg Config) *Engine {
	return &Engine{cfg: cfg}
}

// Name identifies the engine in logs and metrics.
func (e *Engine) Name() string { return "sim" }

// Served is engine.ModelLister: the configured families (every catalog
// family by default), each with one model named after the engine.
func (e *Engine) Served(context.Context) engine.Served {
	families := e.cfg.Families
	if families == nil {
		families = catalog.ModelFamilies()
	}
	out := make(engine.Served, len(catalog.ModelFamilies()))
	for _, f := range catalog.ModelFamilies() {
		if slices.Contains(families, f) {
			out[f] = engine.Family{Models: []string{"sim-" + f}}
		} else {
			out[f] = engine.Family{Problem: "not installed"}
		}
	}
	return out
}

// Render waits StepDelay for each step that runs (req.DenoiseSteps: all of
// them from noise, the last Strength of them from an init image), reporting
// progress after each one (Step runs from 1 to TotalSteps), then paints and
// encodes the picture, mixed into the init image when there is one (see
// img2img.go). The same request always yields byte-identical PNG output.
func (e *Engine) Render(ctx context.Context, req engine.Request, onProgress func(engine.Progress)) (engine.Image, error) {
	if e.cfg.Families != nil && !slices.Contains(e.cfg.Families, req.Model) {
		return engine.Image{}, fmt.Errorf("%w: model %s is not installed", engine.ErrInvalidRequest, req.Model)
	}
	if err := Validate(req); err != nil {
		return engine.Image{}, err
	}
	src, err := decodeSources(req)
	if err != nil {
		return engine.Image{}, err
	}
	if err := e.runSteps(ctx, req, onProgress); err != nil {
		return engine.Image{}, fmt.Errorf("sim render: %w", err)
	}
	data, err := renderPNG(req, src)
	if err != nil {
		return engine.Image{}, fmt.Errorf("sim render: encode png: %w", err)
	}
	return engine.Image{PNG: data, Width: req.Width, Height: req.Height}, nil
}

// Validate reports, wrapping engine.ErrInvalidRequest, why req can never be
// rendered.
func Validate(req engine.Request) error {
	switch {
	case !slices.Contains(catalog.ModelFamilies(), req.Model):
		return fmt.Errorf("%w: unknown model %q", engine.ErrInvalidRequest, req.Model)
	case req.Width <= 0 || req.Width > MaxSide:
		return fmt.Errorf("%w: width %d outside 1..%d", engine.ErrInvalidRequest, req.Width, MaxSide)
	case req.Height <= 0 || req.Height > MaxSide:
		return fmt.Errorf("%w: height %d outside 1..%d", engine.ErrInvalidRequest, req.Height, MaxSide)
	case req.Steps <= 0:
		return fmt.Errorf("%w: steps %d must be positive", engine.ErrInvalidRequest, req.Steps)
	}
	return nil
}

// runSteps simulates the denoising loop. It reuses one timer rather than
// calling time.After per step so long renders do not churn timers.
func (e *Engine) runSteps(ctx context.Context, req engine.Request, onProgress func(engine.Progress)) error {
	steps := req.DenoiseSteps()
	var timer *time.Timer
	if e.cfg.StepDelay > 0 {
		timer = time.NewTimer(e.cfg.StepDelay)
		defer timer.Stop()
	}
	for i := 1; i <= steps; i++ {
		if err := wait(ctx, timer, e.cfg.StepDelay, i > 1); err != nil {
			return fmt.Errorf("step %d of %d: %w", i, steps, err)
		}
		if onProgress != nil {
			onProgress(engine.Progress{Step: i, TotalSteps: steps, Preview: e.preview(req, i, steps)})
		}
	}
	return nil
}

// wait blocks for one step. A nil timer means no delay, but cancellation is
// still checked so a zero-delay engine honours ctx like a real one.
func wait(ctx context.Context, timer *time.Timer, d time.Duration, reset bool) error {
	if timer == nil {
		return ctx.Err()
	}
	if reset {
		timer.Reset(d)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// pngEncoder is shared by all renders: BestSpeed because the pictures are
// synthetic and encode time dominates a zero-delay render, and a buffer pool
// so concurrent renders do not each allocate the encoder's scratch space.
var pngEncoder = png.Encoder{
	CompressionLevel: png.BestSpeed,
	BufferPool:       &encoderPool{},
}

type encoderPool struct{ p sync.Pool }

func (p *encoderPool) Get() *png.EncoderBuffer {
	b, _ := p.p.Get().(*png.EncoderBuffer)
	return b
}

func (p *encoderPool) Put(b *png.EncoderBuffer) { p.p.Put(b) }

// outPool holds output buffers; the encoded bytes are copied out so callers
// own their slice while the grown buffer is reused.
var outPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// renderPNG paints req's picture, mixed into its init image when it has one.
func renderPNG(req engine.Request, src *sources) ([]byte, error) {
	pic := paint(req)
	if src == nil {
		return encode(pic)
	}
	defer pic.release()
	return encodeImage(src.blend(pic, req.Strength))
}

func encode(img *canvas) ([]byte, error) {
	defer img.release()
	return encodeImage(img.Paletted)
}

func encodeImage(img image.Image) ([]byte, error) {
	buf := outPool.Get().(*bytes.Buffer)
	defer outPool.Put(buf)
	buf.Reset()
	if err := pngEncoder.Encode(buf, img); err != nil {
		return nil, err
	}
	return bytes.Clone(buf.Bytes()), nil
}
