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
	"golang.org/x/sync/semaphore"

	"github.com/easel/easel/engine"
	"github.com/easel/easel/progress"
	"github.com/easel/easel/storage"
	"github.com/easel/easel/store"
	"github.com/easel/easel/thumbnail"
)

// Render holds the GPU worker's render activity and its dependencies.
type Render struct {
	Tier     string // GPU tier this worker serves, for metrics
	Engine   engine.Engine
	Objects  *storage.Store
	Progress *progress.Hub
	Log      *slog.Logger
	// ProgressEvery throttles Redis progress events per job (default 200 ms).
	ProgressEvery time.Duration
	// GPU, when set, bounds renders running at once to the host's GPUs. The
	// worker then takes more tasks than GPUs, so one job's thumbnail and
	// uploads overlap the next job's render instead of idling the GPU.
	GPU *semaphore.Weighted
}

// Render renders the job's batch one image at a time, storing each PNG and
// its webp thumbnail in S3 as soon as it exists. Finished images are recorded
// in the activity heartbeat, so a retry (on this or another worker) resumes
// after them instead of rendering them again. Errors carry the images made so
// far, so the workflow can settle a partial batch.
func (r *Render) Render(ctx context.Context, in RenderInput) (RenderResult, error) {
	var res RenderResult
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &res); err != nil {
			res = RenderResult{}
		}
	}
	done := make(map[string]bool, len(res.Images))
	for _, img := range res.Images {
		done[img.Name] = true
	}
	rep := r.reporter(in)
	for i := range in.Params.BatchSize {
		name := ImageName(in.JobID, i)
		if done[name] {
			continue
		}
		rec, secs, err := r.renderOne(ctx, in, i, rep)
		res.ComputeSeconds += secs
		if err != nil {
			return res, r.failure(ctx, err, res)
		}
		res.Images = append(res.Images, rec)
		activity.RecordHeartbeat(ctx, res)
	}
	return res, nil
}

// renderOne renders and stores image i, returning its record and device time.
func (r *Render) renderOne(ctx context.Context, in RenderInput, i int, rep *reporter) (store.ImageRecord, float64, error) {
	p := in.Params
	req := engine.Request{Prompt: p.Prompt, NegativePrompt: p.NegativePrompt, Model: p.Model, Width: p.Width,
		Height: p.Height, Steps: p.Steps, CFGScale: p.CFGScale, Seed: p.Seed + uint32(i), Graph: p.Graph}
	if err := r.acquireGPU(ctx); err != nil {
		return store.ImageRecord{}, 0, err
	}
	start := time.Now()
	img, err := r.Engine.Render(ctx, req, func(pr engine.Progress) { rep.step(ctx, i, pr) })
	secs := time.Since(start).Seconds()
	r.releaseGPU()
	renderSeconds.WithLabelValues(r.Tier, p.Model).Observe(secs)
	if err != nil {
		return store.ImageRecord{}, secs, fmt.Errorf("render image %d: %w", i, err)
	}
	name := ImageName(in.JobID, i)
	rec := store.ImageRecord{Name: name, Key: storage.ImageKey(in.UserID, name),
		ThumbnailKey: storage.ThumbnailKey(in.UserID, name), Width: img.Width, Height: img.Height,
		Bytes: int64(len(img.PNG)), Seed: req.Seed}
	if err := r.store(ctx, rec, img.PNG); err != nil {
		return store.ImageRecord{}, secs, err
	}
	imagesGenerated.WithLabelValues(r.Tier).Inc()
	return rec, secs, nil
}

// acquireGPU waits for a free GPU, heartbeating so that a job queued behind
// another on this host neither times out nor misses its cancellation.
func (r *Render) acquireGPU(ctx context.Context) error {
	if r.GPU == nil {
		return nil
	}
	for {
		wait, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.GPU.Acquire(wait, 1)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		activity.RecordHeartbeat(ctx)
	}
}

func (r *Render) releaseGPU() {
	if r.GPU != nil {
		r.GPU.Release(1)
	}
}

func (r *Render) store(ctx context.Context, rec store.ImageRecord, png []byte) error {
	thumb, err := thumbnail.WebP(png, thumbnail.DefaultMaxSide)
	if err != nil {
		return fmt.Errorf("thumbnail %s: %w", rec.Name, err)
	}
	if err := r.Objects.Put(ctx, rec.Key, png, "image/png"); err != nil {
		return err
	}
	return r.Objects.Put(ctx, rec.ThumbnailKey, thumb, "image/webp")
}

// failure classifies a render error for Temporal.
func (r *Render) failure(ctx context.Context, err error, partial RenderResult) error {
	if ctx.Err() != nil {
		renderFailures.WithLabelValues(r.Tier, "canceled").Inc()
		return ctx.Err()
	}
	if errors.Is(err, engine.ErrInvalidRequest) {
		renderFailures.WithLabelValues(r.Tier, "invalid").Inc()
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidRequest, err, partial)
	}
	renderFailures.WithLabelValues(r.Tier, "retryable").Inc()
	return temporal.NewApplicationErrorWithCause(err.Error(), ErrRenderFailed, err, partial)
}

// reporter turns engine steps into heartbeats and throttled progress events.
type reporter struct {
	r    *Render
	in   RenderInput
	mu   sync.Mutex
	last time.Time
}

func (r *Render) reporter(in RenderInput) *reporter { return &reporter{r: r, in: in} }

func (rep *reporter) step(ctx context.Context, image int, pr engine.Progress) {
	// The SDK throttles heartbeats itself; recording each step keeps the
	// heartbeat timeout honest and lets cancellation reach the activity.
	activity.RecordHeartbeat(ctx)
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
	rep.mu.Unlock()
	if rep.r.Progress == nil {
		return
	}
	batch := rep.in.Params.BatchSize
	frac := (float64(image) + float64(pr.Step)/float64(max(pr.TotalSteps, 1))) / float64(max(batch, 1))
	s := progress.Status{JobID: rep.in.JobID, State: progress.StateRunning, Progress: frac, Image: image,
		Images: batch, Step: pr.Step, TotalSteps: pr.TotalSteps}
	if err := rep.r.Progress.Publish(ctx, s); err != nil && rep.r.Log != nil {
		rep.r.Log.WarnContext(ctx, "publish progress", "job_id", rep.in.JobID, "err", err)
	}
}
