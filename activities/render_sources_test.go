package activities

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/engine/sim"
	"github.com/easel/easel/internal/objects"
)

// recordingEngine renders with the sim engine and keeps the requests.
type recordingEngine struct {
	sim  engine.Engine
	mu   sync.Mutex
	reqs []engine.Request
}

func (e *recordingEngine) Name() string { return "recording" }

func (e *recordingEngine) Render(ctx context.Context, req engine.Request, onProgress func(engine.Progress)) (engine.Image, error) {
	e.mu.Lock()
	e.reqs = append(e.reqs, req)
	e.mu.Unlock()
	return e.sim.Render(ctx, req, onProgress)
}

func putPNG(t *testing.T, b *objects.Bucket, key string, img image.Image) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(context.Background(), key, buf.Bytes(), "image/png"); err != nil {
		t.Fatal(err)
	}
}

// The render reads the init image and mask from the bucket by name, fits
// them to the job's size (the mask as grayscale) and hands them to the
// engine with the strength, for every image of the batch.
func TestRenderReadsAndFitsSources(t *testing.T) {
	t.Parallel()
	eng := &recordingEngine{sim: sim.New(sim.Config{})}
	r := newRender(t, eng, true)
	in := renderInput(2)
	in.UserID = uuid.NewString()
	strength := 0.3
	in.Params.InitImage, in.Params.Mask, in.Params.Strength = uuid.NewString(), uuid.NewString(), &strength
	putPNG(t, r.Objects, objects.UploadKey(in.UserID, in.Params.InitImage), image.NewNRGBA(image.Rect(0, 0, 96, 48)))
	putPNG(t, r.Objects, objects.UploadKey(in.UserID, in.Params.Mask), image.NewRGBA(image.Rect(0, 0, 96, 48)))
	out := waitRender(t, executeRender(r, in))
	if out.err != nil || len(out.res.Images) != 2 {
		t.Fatalf("render: %v, %d images", out.err, len(out.res.Images))
	}
	if len(eng.reqs) != 2 {
		t.Fatalf("engine saw %d requests, want 2", len(eng.reqs))
	}
	for _, req := range eng.reqs {
		init, err := png.Decode(bytes.NewReader(req.InitImage))
		if err != nil || init.Bounds() != image.Rect(0, 0, 64, 64) {
			t.Fatalf("init image %v (%v), want 64x64", init, err)
		}
		mask, err := png.Decode(bytes.NewReader(req.Mask))
		if _, gray := mask.(*image.Gray); err != nil || !gray || mask.Bounds() != init.Bounds() {
			t.Fatalf("mask %T (%v), want 64x64 grayscale", mask, err)
		}
		if req.Strength != 0.3 {
			t.Fatalf("strength %v, want 0.3", req.Strength)
		}
	}
}

// A source deleted after admission fails the render at once, without
// retries: it can never succeed.
func TestRenderWithoutItsSourceIsNotRetried(t *testing.T) {
	t.Parallel()
	r := newRender(t, &recordingEngine{sim: sim.New(sim.Config{})}, true)
	in := renderInput(1)
	in.UserID, in.Params.InitImage = uuid.NewString(), uuid.NewString()
	out := waitRender(t, executeRender(r, in))
	wantAppError(t, out.err, TypeInvalidRequest, false)
}
