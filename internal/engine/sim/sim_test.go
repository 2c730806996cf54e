package sim

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
)

func request() engine.Request {
	return engine.Request{
		Prompt:         "a lighthouse at dusk",
		NegativePrompt: "blurry",
		Model:          catalog.ModelSDXL,
		Width:          320,
		Height:         200,
		Steps:          4,
		CFGScale:       7,
		Seed:           42,
	}
}

func render(t *testing.T, e *Engine, req engine.Request) engine.Image {
	t.Helper()
	img, err := e.Render(context.Background(), req, nil)
	if err != nil {
		t.Fatalf("render %+v: %v", req, err)
	}
	return img
}

func decode(t *testing.T, data []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode png: %v", err)
	}
	return img
}

func TestName(t *testing.T) {
	if got := New(Config{}).Name(); got != "sim" {
		t.Fatalf("Name() = %q, want sim", got)
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	e := New(Config{})
	a, b := render(t, e, request()), render(t, e, request())
	if !bytes.Equal(a.PNG, b.PNG) {
		t.Fatal("same request gave different PNG bytes")
	}
}

// TestRenderConcurrentIsDeterministic guards the pooled buffers: concurrent
// renders must not see each other's pixels.
func TestRenderConcurrentIsDeterministic(t *testing.T) {
	e := New(Config{})
	want := render(t, e, request()).PNG
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			other := request()
			other.Seed = uint32(i) + 1000
			if _, err := e.Render(context.Background(), other, nil); err != nil {
				t.Errorf("render seed %d: %v", other.Seed, err)
			}
			if img, err := e.Render(context.Background(), request(), nil); err != nil || !bytes.Equal(img.PNG, want) {
				t.Errorf("concurrent render differs (err %v)", err)
			}
		})
	}
	wg.Wait()
}

func TestRenderVariesWithInputs(t *testing.T) {
	e := New(Config{})
	base := render(t, e, request())
	variants := map[string]func(*engine.Request){
		"prompt":   func(r *engine.Request) { r.Prompt += "!" },
		"negative": func(r *engine.Request) { r.NegativePrompt = "" },
		"model":    func(r *engine.Request) { r.Model = catalog.ModelFlux },
		"seed":     func(r *engine.Request) { r.Seed++ },
	}
	for name, change := range variants {
		t.Run(name, func(t *testing.T) {
			req := request()
			change(&req)
			if got := render(t, e, req); samePixels(decode(t, got.PNG), decode(t, base.PNG)) {
				t.Fatalf("changing %s did not change the picture", name)
			}
		})
	}
}

func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				return false
			}
		}
	}
	return true
}

func TestRenderSize(t *testing.T) {
	e := New(Config{})
	for _, size := range [][2]int{{1, 1}, {512, 512}, {768, 512}, {333, 4096}} {
		req := request()
		req.Width, req.Height = size[0], size[1]
		img := render(t, e, req)
		if img.Width != size[0] || img.Height != size[1] {
			t.Errorf("Image reports %dx%d, want %dx%d", img.Width, img.Height, size[0], size[1])
		}
		if got := decode(t, img.PNG).Bounds(); got != image.Rect(0, 0, size[0], size[1]) {
			t.Errorf("decoded bounds %v, want %dx%d", got, size[0], size[1])
		}
	}
}

// TestRenderIsNotFlat catches a broken painter that fills one colour.
func TestRenderIsNotFlat(t *testing.T) {
	img := decode(t, render(t, New(Config{}), request()).PNG)
	colours := map[any]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 7 {
		for x := r.Min.X; x < r.Max.X; x += 7 {
			colours[img.At(x, y)] = true
		}
	}
	if len(colours) < 32 {
		t.Fatalf("picture has only %d distinct colours", len(colours))
	}
}

func TestRenderReportsEveryStep(t *testing.T) {
	req := request()
	req.Steps = 7
	var got []engine.Progress
	_, err := New(Config{StepDelay: time.Millisecond}).Render(context.Background(), req,
		func(p engine.Progress) { got = append(got, p) })
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	if len(got) != req.Steps {
		t.Fatalf("got %d progress reports, want %d", len(got), req.Steps)
	}
	for i, p := range got {
		if p.Step != i+1 || p.TotalSteps != req.Steps {
			t.Errorf("report %d = %+v, want step %d of %d", i, p, i+1, req.Steps)
		}
	}
}

// Each step carries a small PNG preview that starts as noise and sharpens
// into the picture: the share of pixels equal to the last preview grows
// step by step, and the last is the whole picture.
func TestPreviewsSharpen(t *testing.T) {
	req := request()
	req.Width, req.Height, req.Steps = 768, 512, 6
	var previews []image.Image
	_, err := New(Config{}).Render(context.Background(), req, func(p engine.Progress) {
		if p.Preview == nil || p.Preview.Width != 64 || p.Preview.Height != 42 {
			t.Fatalf("step %d preview %+v, want 64x42", p.Step, p.Preview)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(p.Preview.DataURL, "data:image/png;base64,"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("step %d preview is not a PNG: %v", p.Step, err)
		}
		previews = append(previews, img)
	})
	if err != nil {
		t.Fatal(err)
	}
	final := previews[len(previews)-1]
	prev := -1
	for i, img := range previews {
		same := 0
		for y := range 42 {
			for x := range 64 {
				if img.At(x, y) == final.At(x, y) {
					same++
				}
			}
		}
		if same <= prev {
			t.Errorf("step %d: %d pixels as final, not more than step %d's %d", i+1, same, i, prev)
		}
		prev = same
	}
	if _, err := New(Config{NoPreviews: true}).Render(context.Background(), req, func(p engine.Progress) {
		if p.Preview != nil {
			t.Fatal("NoPreviews still draws previews")
		}
	}); err != nil {
		t.Fatal(err)
	}
}

func TestRenderTakesStepDelay(t *testing.T) {
	req := request()
	req.Steps = 5
	start := time.Now()
	render(t, New(Config{StepDelay: 10 * time.Millisecond}), req)
	if elapsed := time.Since(start); elapsed < 50*time.Millisecond {
		t.Fatalf("render took %v, want at least 50ms", elapsed)
	}
}

func TestRenderCancelledMidway(t *testing.T) {
	req := request()
	req.Steps = 1000 // 100s if cancellation were ignored
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	steps := 0
	onProgress := func(engine.Progress) {
		if steps++; steps == 2 {
			cancel()
		}
	}
	start := time.Now()
	_, err := New(Config{StepDelay: 100 * time.Millisecond}).Render(ctx, req, onProgress)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// Two full steps plus a prompt return; a whole third step would be 300ms.
	if elapsed := time.Since(start); elapsed > 280*time.Millisecond {
		t.Fatalf("cancelled render took %v", elapsed)
	}
	if steps != 2 {
		t.Fatalf("got %d progress reports after cancelling at 2", steps)
	}
}

func TestRenderHonoursCancelledContextWithoutDelay(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New(Config{}).Render(ctx, request(), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestRenderDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := New(Config{StepDelay: time.Hour}).Render(ctx, request(), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestRenderRejectsInvalidRequests(t *testing.T) {
	cases := map[string]func(*engine.Request){
		"unknown model": func(r *engine.Request) { r.Model = "dall-e" },
		"empty model":   func(r *engine.Request) { r.Model = "" },
		"zero width":    func(r *engine.Request) { r.Width = 0 },
		"negative h":    func(r *engine.Request) { r.Height = -1 },
		"too wide":      func(r *engine.Request) { r.Width = MaxSide + 1 },
		"too tall":      func(r *engine.Request) { r.Height = MaxSide + 1 },
		"zero steps":    func(r *engine.Request) { r.Steps = 0 },
		"negative step": func(r *engine.Request) { r.Steps = -3 },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			req := request()
			change(&req)
			called := false
			_, err := New(Config{StepDelay: time.Hour}).Render(context.Background(), req,
				func(engine.Progress) { called = true })
			if !errors.Is(err, engine.ErrInvalidRequest) {
				t.Fatalf("err = %v, want ErrInvalidRequest", err)
			}
			if called {
				t.Fatal("progress reported for an invalid request")
			}
		})
	}
}

func TestFaultyFailsEveryNth(t *testing.T) {
	f := &Faulty{Engine: New(Config{}), FailEvery: 3}
	if f.Name() != "sim" {
		t.Fatalf("Name() = %q, want the wrapped engine's", f.Name())
	}
	for i := 1; i <= 6; i++ {
		_, err := f.Render(context.Background(), request(), nil)
		if wantFail := i%3 == 0; wantFail != errors.Is(err, ErrInjected) {
			t.Fatalf("call %d: err = %v, want failure %v", i, err, wantFail)
		}
		if errors.Is(err, engine.ErrInvalidRequest) {
			t.Fatalf("call %d: injected failure must stay retryable", i)
		}
	}
}

func TestFaultyZeroNeverFails(t *testing.T) {
	f := &Faulty{Engine: New(Config{})}
	for i := range 3 {
		if _, err := f.Render(context.Background(), request(), nil); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

func BenchmarkRender(b *testing.B) {
	for _, side := range []int{512, 1024} {
		b.Run(fmt.Sprintf("%dx%d", side, side), func(b *testing.B) {
			e := New(Config{})
			req := request()
			req.Width, req.Height, req.Steps = side, side, 30
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				req.Seed = uint32(i) // vary the picture so compression work is realistic
				if _, err := e.Render(context.Background(), req, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
