package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/engine/sim"
	"github.com/easel/easel/internal/gpu"
	"github.com/easel/easel/internal/objects"
	"github.com/easel/easel/internal/testenv"
)

// gateEngine renders with the sim engine, but each render first reports its
// device on started and then waits for release (or its context).
type gateEngine struct {
	sim     engine.Engine
	started chan engine.Device
	release chan struct{}
	mu      sync.Mutex
	ctxErrs []error
}

func newGateEngine() *gateEngine {
	return &gateEngine{sim: sim.New(sim.Config{}), started: make(chan engine.Device, 16), release: make(chan struct{})}
}

func (e *gateEngine) Name() string { return "gate" }

func (e *gateEngine) Render(ctx context.Context, req engine.Request, onProgress func(engine.Progress)) (engine.Image, error) {
	dev, _ := engine.DeviceFrom(ctx)
	e.started <- dev
	select {
	case <-e.release:
		return e.sim.Render(ctx, req, onProgress)
	case <-ctx.Done():
		e.mu.Lock()
		e.ctxErrs = append(e.ctxErrs, ctx.Err())
		e.mu.Unlock()
		return engine.Image{}, ctx.Err()
	}
}

// meteredGPUs are plain pinned devices whose admission and GPU seconds a
// test decides.
type meteredGPUs struct {
	*gpu.Host
	admitErr error
	secs     float64
}

func (m *meteredGPUs) Admit(engine.Device, engine.Request) error { return m.admitErr }

func (m *meteredGPUs) Meter(engine.Device) func() float64 { return func() float64 { return m.secs } }

func renderInput(batch int) RenderInput {
	return RenderInput{JobID: "job-1", UserID: "user-1", Params: Params{Prompt: "p", Model: catalog.ModelSDXL,
		Width: 64, Height: 64, Steps: 2, BatchSize: batch}}
}

func newRender(t *testing.T, eng engine.Engine, withS3 bool) *Render {
	r := &Render{Tier: "t4", Engine: eng, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), GPUs: gpu.Pseudo(1)}
	if withS3 {
		objects, err := objects.New(context.Background(), testenv.S3(t))
		if err != nil {
			t.Fatal(err)
		}
		r.Objects = objects
	}
	return r
}

// executeRender runs the activity in the SDK's test environment, in the background.
func executeRender(r *Render, in RenderInput) <-chan renderOutcome {
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(r)
	out := make(chan renderOutcome, 1)
	go func() {
		var o renderOutcome
		v, err := env.ExecuteActivity(r.Render, in)
		if o.err = err; err == nil {
			o.err = v.Get(&o.res)
		}
		out <- o
	}()
	return out
}

type renderOutcome struct {
	res RenderResult
	err error
}

func waitRender(t *testing.T, out <-chan renderOutcome) renderOutcome {
	t.Helper()
	select {
	case o := <-out:
		return o
	case <-time.After(30 * time.Second):
		t.Fatal("the render did not end")
		return renderOutcome{}
	}
}

func wantAppError(t *testing.T, err error, wantType string, wantRetryable bool) {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("error %v is not an application error", err)
	}
	if appErr.Type() != wantType || appErr.NonRetryable() == wantRetryable {
		t.Fatalf("error type %q non-retryable %v, want %q retryable %v (%v)", appErr.Type(), appErr.NonRetryable(),
			wantType, wantRetryable, err)
	}
}

func TestRenderPinsDeviceAndRecordsGPUSeconds(t *testing.T) {
	eng := newGateEngine()
	close(eng.release)
	r := newRender(t, eng, true)
	r.GPUs = &meteredGPUs{Host: gpu.Pseudo(2), secs: 1.25}
	o := waitRender(t, executeRender(r, renderInput(2)))
	if o.err != nil {
		t.Fatal(o.err)
	}
	if len(o.res.Images) != 2 || o.res.ComputeSeconds != 2.5 {
		t.Fatalf("%d images, %v GPU seconds; want 2 and 2 x 1.25", len(o.res.Images), o.res.ComputeSeconds)
	}
	for range 2 {
		if dev := <-eng.started; dev.Index < 0 || dev.Index > 1 {
			t.Fatalf("engine ran on device %+v, want one of the pool's", dev)
		}
	}
}

func TestRenderAdmission(t *testing.T) {
	for _, c := range []struct {
		err       error
		wantType  string
		retryable bool
	}{
		{fmt.Errorf("%w: needs 40 GiB", engine.ErrTooLarge), TypeTooLargeForTier, false},
		{fmt.Errorf("%w: 2 GiB free", engine.ErrDeviceBusy), TypeGPUBusy, true},
	} {
		eng := newGateEngine()
		r := newRender(t, eng, false)
		r.GPUs = &meteredGPUs{Host: gpu.Pseudo(1), admitErr: c.err}
		o := waitRender(t, executeRender(r, renderInput(1)))
		wantAppError(t, o.err, c.wantType, c.retryable)
		if len(eng.started) != 0 {
			t.Fatalf("%s: the engine ran a render admission refused", c.wantType)
		}
	}
}

func TestDrainLetsRunningRenderFinish(t *testing.T) {
	eng := newGateEngine()
	r := newRender(t, eng, true)
	drain := gpu.NewDrain(time.Minute, r.Log)
	r.Drain = drain
	out := executeRender(r, renderInput(2))
	<-eng.started
	drain.Begin("test", time.Time{})
	close(eng.release) // the running render ends well within the drain
	o := waitRender(t, out)
	if o.err != nil || len(o.res.Images) != 2 {
		t.Fatalf("%d images, err %v; want the whole batch of a job already running", len(o.res.Images), o.err)
	}
}

func TestDrainDeadlineFailsRenderOver(t *testing.T) {
	eng := newGateEngine()
	r := newRender(t, eng, false)
	drain := gpu.NewDrain(50*time.Millisecond, r.Log)
	r.Drain = drain
	out := executeRender(r, renderInput(1))
	<-eng.started
	drain.Begin("test", time.Time{}) // the render never ends on its own
	o := waitRender(t, out)
	wantAppError(t, o.err, TypeFailedOver, true)
	eng.mu.Lock()
	defer eng.mu.Unlock()
	if len(eng.ctxErrs) != 1 || !errors.Is(eng.ctxErrs[0], context.Canceled) {
		t.Fatalf("engine saw %v, want its render cancelled", eng.ctxErrs)
	}
}

func TestDrainFailsOverJobsNotStarted(t *testing.T) {
	eng := newGateEngine()
	r := newRender(t, eng, false)
	drain := gpu.NewDrain(time.Minute, r.Log)
	drain.Begin("test", time.Time{})
	r.Drain = drain
	o := waitRender(t, executeRender(r, renderInput(1)))
	wantAppError(t, o.err, TypeFailedOver, true)
	if len(eng.started) != 0 {
		t.Fatal("a draining worker started a new render")
	}
}

// busyAfterFirst hands out its device once; later renders find every
// device taken and wait.
type busyAfterFirst struct {
	*gpu.Host
	calls atomic.Int32
}

func (b *busyAfterFirst) Acquire(ctx context.Context) (engine.Device, error) {
	if b.calls.Add(1) == 1 {
		return b.Host.Acquire(ctx)
	}
	<-ctx.Done()
	return engine.Device{}, ctx.Err()
}

// A started job that has to wait for a device when the drain begins fails
// over at once, with its finished images, rather than hold the drain up.
func TestDrainFailsOverJobsWaitingForADevice(t *testing.T) {
	eng := newGateEngine()
	close(eng.release)
	r := newRender(t, eng, true)
	gpus := &busyAfterFirst{Host: gpu.Pseudo(1)}
	r.GPUs = gpus
	drain := gpu.NewDrain(time.Hour, r.Log)
	r.Drain = drain
	out := executeRender(r, renderInput(2))
	for gpus.calls.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	drain.Begin("test", time.Time{})
	o := waitRender(t, out)
	wantAppError(t, o.err, TypeFailedOver, true)
	var appErr *temporal.ApplicationError
	var partial RenderResult
	if !errors.As(o.err, &appErr) || appErr.Details(&partial) != nil || len(partial.Images) != 1 {
		t.Fatalf("failed over with %d images, want the 1 finished before the drain", len(partial.Images))
	}
}
