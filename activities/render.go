package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/objects"
	"github.com/easel/easel/internal/picture"
	"github.com/easel/easel/internal/progress"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/thumbnail"
)

// Render holds the GPU worker's render activity and its dependencies.
type Render struct {
	Tier     string // GPU tier this worker serves, for metrics
	Engine   engine.Engine
	Objects  *objects.Bucket
	Progress *progress.Hub
	Log      *slog.Logger
	// ProgressEvery throttles Redis progress events per job (default 200 ms).
	ProgressEvery time.Duration
	// PreviewEvery throttles the preview pictures progress events carry
	// (default 1 s): each is a few kilobytes on every watcher's stream.
	PreviewEvery time.Duration
	// GPUs, when set, pins each image's render to one free device of the
	// host (gpu.Host). The worker takes more tasks than GPUs, so one job's
	// thumbnail and uploads overlap the next job's render instead of idling
	// the GPU.
	GPUs GPUs
	// Drain, when set, tells renders that the worker is stopping (gpu.Drain).
	Drain Drain
}

// GPUs are the host's devices as renders see them.
type GPUs interface {
	// Acquire pins a free healthy device to the caller, waiting for one
	// until ctx ends; a device already free is handed out even then.
	Acquire(ctx context.Context) (engine.Device, error)
	Release(dev engine.Device)
	// Admit checks the device's memory can hold req; its error wraps
	// engine.ErrTooLarge or engine.ErrDeviceBusy.
	Admit(dev engine.Device, req engine.Request) error
	// Meter starts measuring dev; stop returns the GPU seconds used since.
	Meter(dev engine.Device) (stop func() float64)
}

// Drain is a stopping worker, seen from its renders.
type Drain interface {
	// Begun is closed when the worker stops taking work: a render that has
	// not started yet fails over instead of starting here.
	Begun() <-chan struct{}
	// Expired is closed at the drain deadline: running renders stop and
	// fail over; the retry resumes after their heartbeated images.
	Expired() <-chan struct{}
}

// RenderHeartbeatEvery is how often a running render's heartbeat reaches
// the Temporal server (the GPU worker's MaxHeartbeatThrottleInterval,
// workers.NewGPU) and how long a render waiting for a GPU waits between
// heartbeats. A cancel reaches a render only in a heartbeat's answer, so
// this bounds how long a canceled job keeps its GPU: left to the SDK, a
// heartbeat goes out every 80 % of the heartbeat timeout (24 s of the
// default 30 s), and a job of a few seconds ran to its end after a cancel.
// The heartbeat timeout, which decides how soon a dead worker's job is
// retried, stays independent of it.
const RenderHeartbeatEvery = time.Second

// errFailedOver is the cause of a render's cancellation by the drain.
var errFailedOver = errors.New("the GPU worker is draining: render handed to another worker")

// Render renders the job's batch one image at a time, storing each PNG and
// its webp thumbnail in S3 as soon as it exists. Finished images are recorded
// in the activity heartbeat, so a retry (on this or another worker) resumes
// after them instead of rendering them again. Errors carry the images made so
// far, so the workflow can settle a partial batch.
func (r *Render) Render(ctx context.Context, in RenderInput) (RenderResult, error) {
	ctx = engine.WithJobID(ctx, in.JobID)
	ctx = engine.WithAttempt(ctx, int(activity.GetInfo(ctx).Attempt))
	ctx, stop := r.watchDrain(ctx)
	defer stop()
	att := resume(ctx)
	r.announceStart(ctx, in, att.res.StartedAt)
	done := make(map[string]bool, len(att.res.Images))
	for _, img := range att.res.Images {
		done[img.Name] = true
	}
	rep := r.reporter(in, att)
	var src sources
	if len(done) < in.Params.BatchSize {
		var err error
		if src, err = r.sources(ctx, in); err != nil {
			res := att.result()
			return res, r.failure(ctx, err, res)
		}
	}
	started := false // this attempt has rendered an image
	for i := range in.Params.BatchSize {
		name := ImageName(in.JobID, i)
		if done[name] {
			continue
		}
		att.begin()
		rec, secs, err := r.renderOne(ctx, in, src, i, rep, started)
		res := att.end(rec, secs, err == nil)
		if err != nil {
			return res, r.failure(ctx, err, res)
		}
		started = true
		att.beat(ctx)
	}
	return att.result(), nil
}

// attempt is what one render attempt has done so far. Every heartbeat
// carries it, so that whichever attempt comes next (here or on another
// worker, after a crash) resumes after the stored images and counts the
// device time already spent, including the image a dead attempt was on.
type attempt struct {
	mu         sync.Mutex
	res        RenderResult
	imageStart time.Time // start of the image in progress; zero between images
}

// resume starts an attempt from the last heartbeat of the previous one.
func resume(ctx context.Context) *attempt {
	a := &attempt{}
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &a.res); err != nil {
			a.res = RenderResult{}
		}
	}
	if a.res.StartedAt.IsZero() {
		a.res.StartedAt = activity.GetInfo(ctx).StartedTime
	}
	return a
}

func (a *attempt) begin() {
	a.mu.Lock()
	a.imageStart = time.Now()
	a.mu.Unlock()
}

// end closes the image in progress: its device seconds count whether or not
// it was stored; a stored image joins the result.
func (a *attempt) end(rec store.ImageRecord, secs float64, stored bool) RenderResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.imageStart = time.Time{}
	a.res.ComputeSeconds += secs
	if stored {
		a.res.Images = append(a.res.Images, rec)
	}
	return a.snapshot()
}

// startedAt is when the job's first render attempt began.
func (a *attempt) startedAt() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.res.StartedAt
}

func (a *attempt) result() RenderResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.snapshot()
}

// snapshot copies the result, counting the image in progress so far.
func (a *attempt) snapshot() RenderResult {
	out := a.res
	out.Images = append([]store.ImageRecord(nil), a.res.Images...)
	if !a.imageStart.IsZero() {
		out.ComputeSeconds += time.Since(a.imageStart).Seconds()
	}
	return out
}

// beat records a heartbeat with the attempt's progress. The SDK throttles
// heartbeats itself (to one every RenderHeartbeatEvery on a GPU worker);
// recording on every engine step keeps the heartbeat timeout honest and
// lets cancellation reach the activity.
func (a *attempt) beat(ctx context.Context) {
	activity.RecordHeartbeat(ctx, a.result())
}

// announceStart reports that a render attempt began: the job's live status
// becomes running, with the first attempt's start time, which the API shows
// (and records in the database) when the job is read. It is one Redis
// round trip, where a signal to the workflow cost it a workflow task and a
// local activity; it is best effort, as all progress is: the job's money
// does not depend on it, and Finalize records the start anyway.
func (r *Render) announceStart(ctx context.Context, in RenderInput, startedAt time.Time) {
	if r.Progress == nil {
		return
	}
	s := progress.Status{JobID: in.JobID, State: catalog.JobRunning, Images: in.Params.BatchSize,
		TotalSteps: in.Params.Steps, StartedAt: &startedAt}
	if err := r.Progress.Publish(ctx, s); err != nil && r.Log != nil {
		r.Log.WarnContext(ctx, "report render start", "job_id", in.JobID, "err", err)
	}
}

// renderOne renders and stores image i, returning its record and GPU
// seconds. started tells whether this attempt already rendered an image: a
// draining worker lets such a job go on, and fails over the others.
func (r *Render) renderOne(ctx context.Context, in RenderInput, src sources, i int, rep *reporter, started bool) (store.ImageRecord, float64, error) {
	p := in.Params
	req := engine.Request{Prompt: p.Prompt, NegativePrompt: p.NegativePrompt, Model: p.Model, Width: p.Width,
		Height: p.Height, Steps: p.Steps, CFGScale: p.CFGScale, Seed: p.Seed + uint32(i), Graph: p.Graph,
		InitImage: src.init, Strength: src.strength, Mask: src.mask}
	img, secs, err := r.renderOnDevice(ctx, req, i, rep, started)
	if err != nil {
		return store.ImageRecord{}, secs, fmt.Errorf("render image %d: %w", i, err)
	}
	name := ImageName(in.JobID, i)
	rec := store.ImageRecord{Name: name, Key: objects.ImageKey(in.UserID, name),
		ThumbnailKey: objects.ThumbnailKey(in.UserID, name), Width: img.Width, Height: img.Height,
		Bytes: int64(len(img.PNG)), Seed: req.Seed}
	if err := r.store(ctx, rec, img.PNG); err != nil {
		return store.ImageRecord{}, secs, err
	}
	imagesGenerated.WithLabelValues(r.Tier).Inc()
	return rec, secs, nil
}

// sources are the pictures an image-to-image or inpainting job starts
// from, fitted to its size.
type sources struct {
	init, mask []byte
	strength   float64
}

// defaultStrength is used when a job names an init image but no strength
// (the API always sends one).
const defaultStrength = 0.75

// sources reads the job's init image and mask from the bucket (the claim
// check: the workflow carries only their names) and fits them to the job's
// size: the init image scaled when its size differs, the mask as grayscale.
// A picture deleted since the job was admitted can never be rendered: that
// fails the job without retries (and without charge).
func (r *Render) sources(ctx context.Context, in RenderInput) (sources, error) {
	p := in.Params
	if p.InitImage == "" {
		return sources{}, nil
	}
	src := sources{strength: defaultStrength}
	if p.Strength != nil {
		src.strength = *p.Strength
	}
	data, err := r.source(ctx, "init image "+p.InitImage, objects.SourceKey(in.UserID, p.InitImage))
	if err != nil {
		return sources{}, err
	}
	if src.init, err = picture.Fit(data, p.Width, p.Height); err != nil {
		return sources{}, fmt.Errorf("%w: init image %s: %w", engine.ErrInvalidRequest, p.InitImage, err)
	}
	if p.Mask == "" {
		return src, nil
	}
	if data, err = r.source(ctx, "mask "+p.Mask, objects.UploadKey(in.UserID, p.Mask)); err != nil {
		return sources{}, err
	}
	if src.mask, err = picture.MaskPNG(data, p.Width, p.Height); err != nil {
		return sources{}, fmt.Errorf("%w: mask %s: %w", engine.ErrInvalidRequest, p.Mask, err)
	}
	return src, nil
}

func (r *Render) source(ctx context.Context, what, key string) ([]byte, error) {
	data, err := r.Objects.Get(ctx, key)
	if errors.Is(err, objects.ErrNotFound) {
		return nil, fmt.Errorf("%w: the %s was deleted after the job was admitted", engine.ErrInvalidRequest, what)
	}
	if err != nil {
		return nil, fmt.Errorf("read the %s: %w", what, err)
	}
	return data, nil
}

// renderOnDevice runs the engine on a device pinned to this render, after
// checking the device's memory can hold it, and measures its GPU seconds.
// Without GPUs (tests) the render is timed by the wall clock.
func (r *Render) renderOnDevice(ctx context.Context, req engine.Request, i int, rep *reporter, started bool) (engine.Image, float64, error) {
	if r.GPUs == nil {
		if !started && r.draining() {
			return engine.Image{}, 0, errFailedOver
		}
		start := time.Now()
		return r.runEngine(ctx, req, i, rep, func() float64 { return time.Since(start).Seconds() })
	}
	dev, err := r.acquireGPU(ctx, started, rep.att)
	if err != nil {
		return engine.Image{}, 0, err
	}
	defer r.GPUs.Release(dev)
	if err := r.GPUs.Admit(dev, req); err != nil {
		return engine.Image{}, 0, err
	}
	return r.runEngine(engine.WithDevice(ctx, dev), req, i, rep, r.GPUs.Meter(dev))
}

func (r *Render) runEngine(ctx context.Context, req engine.Request, i int, rep *reporter, stop func() float64) (engine.Image, float64, error) {
	img, err := r.Engine.Render(ctx, req, func(pr engine.Progress) { rep.step(ctx, i, pr) })
	secs := stop()
	renderSeconds.WithLabelValues(r.Tier, req.Model).Observe(secs)
	return img, secs, err
}

// acquireGPU waits for a free GPU, heartbeating so that a job queued behind
// another on this host neither times out nor misses its cancellation.
func (r *Render) acquireGPU(ctx context.Context, started bool, att *attempt) (engine.Device, error) {
	for {
		if r.draining() {
			return r.acquireDraining(ctx, started)
		}
		wait, cancel := r.waitContext(ctx)
		dev, err := r.GPUs.Acquire(wait)
		cancel()
		switch {
		case err == nil:
			return dev, nil
		case ctx.Err() != nil:
			return engine.Device{}, ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled):
			return engine.Device{}, err // no healthy GPU left: fail over
		}
		att.beat(ctx)
	}
}

// acquireDraining is acquireGPU on a draining worker: a job goes on only if
// it has started here and a device is free at once. A job that would wait
// fails over now, resuming elsewhere after its finished images, instead of
// holding the drain up.
func (r *Render) acquireDraining(ctx context.Context, started bool) (engine.Device, error) {
	if started {
		now, cancel := context.WithCancel(ctx)
		cancel() // Acquire still hands out a free device; it only won't wait
		if dev, err := r.GPUs.Acquire(now); err == nil {
			return dev, nil
		}
	}
	return engine.Device{}, errFailedOver
}

// waitContext bounds one wait for a device: RenderHeartbeatEvery, so the
// caller heartbeats (and hears of a cancel), or until the worker begins to
// drain.
func (r *Render) waitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	wait, cancel := context.WithTimeout(ctx, RenderHeartbeatEvery)
	if r.Drain != nil {
		go func() {
			select {
			case <-r.Drain.Begun():
				cancel()
			case <-wait.Done():
			}
		}()
	}
	return wait, cancel
}

func (r *Render) draining() bool {
	if r.Drain == nil {
		return false
	}
	select {
	case <-r.Drain.Begun():
		return true
	default:
		return false
	}
}

// watchDrain derives a context that the drain deadline cancels, with
// errFailedOver as its cause.
func (r *Render) watchDrain(ctx context.Context) (context.Context, func()) {
	if r.Drain == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		select {
		case <-r.Drain.Expired():
			cancel(errFailedOver)
		case <-done:
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

func (r *Render) store(ctx context.Context, rec store.ImageRecord, png []byte) error {
	// The picture uploads while its thumbnail is made and uploaded: an image
	// waits for the slower of the two, not for both one after the other.
	// Neither is visible before Finalize records the image.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.Objects.Put(gctx, rec.Key, png, "image/png") })
	g.Go(func() error {
		thumb, err := thumbnail.WebP(png, thumbnail.DefaultMaxSide)
		if err != nil {
			return fmt.Errorf("thumbnail %s: %w", rec.Name, err)
		}
		return r.Objects.Put(gctx, rec.ThumbnailKey, thumb, "image/webp")
	})
	return g.Wait()
}

// canceled is the error of a render stopped by its context. A job its user
// canceled is business as usual: the error is benign, so the SDK logs it
// at debug rather than as an "Activity error." at ERROR, and it still
// unwraps to context.Canceled, so the SDK reports the task canceled. Any
// other stop (the worker shutting down) stays an ordinary error, retried.
func canceled(ctx context.Context) error {
	if !temporal.IsCanceledError(context.Cause(ctx)) {
		return ctx.Err()
	}
	return temporal.NewApplicationErrorWithOptions("the render was canceled", TypeCanceled,
		temporal.ApplicationErrorOptions{Cause: ctx.Err(), NonRetryable: true, Category: temporal.ApplicationErrorCategoryBenign})
}

// failure classifies a render error for Temporal. A render the drain
// stopped, or one that cannot fit in the GPU's free memory right now, is
// retried (elsewhere, usually); one too large for the tier's GPUs never is.
func (r *Render) failure(ctx context.Context, err error, partial RenderResult) error {
	switch {
	case errors.Is(err, errFailedOver) || errors.Is(context.Cause(ctx), errFailedOver):
		renderFailures.WithLabelValues(r.Tier, "failed_over").Inc()
		return temporal.NewApplicationErrorWithCause(errFailedOver.Error(), TypeFailedOver, err, partial)
	case ctx.Err() != nil:
		renderFailures.WithLabelValues(r.Tier, "canceled").Inc()
		return canceled(ctx)
	case errors.Is(err, engine.ErrInvalidRequest):
		renderFailures.WithLabelValues(r.Tier, "invalid").Inc()
		return temporal.NewNonRetryableApplicationError(err.Error(), TypeInvalidRequest, err, partial)
	case errors.Is(err, engine.ErrTooLarge):
		renderFailures.WithLabelValues(r.Tier, "too_large").Inc()
		return temporal.NewNonRetryableApplicationError(err.Error(), TypeTooLargeForTier, err, partial)
	case errors.Is(err, engine.ErrDeviceBusy):
		renderFailures.WithLabelValues(r.Tier, "gpu_busy").Inc()
		return temporal.NewApplicationErrorWithCause(err.Error(), TypeGPUBusy, err, partial)
	}
	renderFailures.WithLabelValues(r.Tier, "retryable").Inc()
	return temporal.NewApplicationErrorWithCause(err.Error(), TypeRenderFailed, err, partial)
}

// reporter turns engine steps into heartbeats and throttled progress events.
type reporter struct {
	r           *Render
	in          RenderInput
	att         *attempt
	mu          sync.Mutex
	last        time.Time
	lastPreview time.Time
}

func (r *Render) reporter(in RenderInput, att *attempt) *reporter {
	return &reporter{r: r, in: in, att: att}
}

func (rep *reporter) step(ctx context.Context, image int, pr engine.Progress) {
	rep.att.beat(ctx)
	every := rep.r.ProgressEvery
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	rep.mu.Lock()
	final := pr.Step == pr.TotalSteps && image == rep.in.Params.BatchSize-1
	if !final && time.Since(rep.last) < every {
		rep.mu.Unlock()
		return
	}
	rep.last = time.Now()
	preview := pr.Preview
	if preview != nil && rep.last.Sub(rep.lastPreview) >= previewEvery(rep.r.PreviewEvery) {
		rep.lastPreview = rep.last
	} else {
		preview = nil
	}
	rep.mu.Unlock()
	if rep.r.Progress == nil {
		return
	}
	batch := rep.in.Params.BatchSize
	frac := (float64(image) + float64(pr.Step)/float64(max(pr.TotalSteps, 1))) / float64(max(batch, 1))
	startedAt := rep.att.startedAt()
	s := progress.Status{JobID: rep.in.JobID, State: catalog.JobRunning, Progress: frac, Image: image,
		Images: batch, Step: pr.Step, TotalSteps: pr.TotalSteps, Preview: preview, StartedAt: &startedAt}
	if err := rep.r.Progress.Publish(ctx, s); err != nil && rep.r.Log != nil {
		rep.r.Log.WarnContext(ctx, "publish progress", "job_id", rep.in.JobID, "err", err)
	}
}

func previewEvery(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Second
	}
	return d
}
