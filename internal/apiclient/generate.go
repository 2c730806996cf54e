package apiclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/easel/easel/internal/catalog"
	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// maxPollFailures is how many polls in a row may fail on network errors or
// 5xx before Generate gives up: a brief outage should not abandon a job the
// user is paying for, but a server that is gone should not hang the CLI.
const maxPollFailures = 5

// pngSignature starts every PNG file.
var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// JobError reports a generation that ended without completing. Message is
// the server's "error" text.
type JobError struct {
	ID      string
	Status  string // catalog.JobFailed or catalog.JobCanceled
	Message string
}

func (e *JobError) Error() string {
	msg := fmt.Sprintf("generation %s %s", e.ID, e.Status)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// Generate submits req under a fresh idempotency key, shows its progress on
// w (a bar when w is a terminal, plain lines otherwise; nil shows nothing),
// waits for the job to end, and writes every image into outDir as
// "<image name>.png". It returns the final Generation and the written paths.
//
// A job that fails or is canceled yields a *JobError carrying the server's
// error text; images it made before stopping (which were charged) are still
// downloaded and their paths returned. If ctx is cancelled while the job
// runs, Generate cancels the job on the server, so its held credits are
// released, and returns ctx's error. (If ctx ends before the server has
// answered the submission, the job's id is unknown and nothing is cancelled;
// once the job has completed, ctx only stops the downloads.)
func (c *Client) Generate(ctx context.Context, req GenerateRequest, outDir string, w io.Writer) (Generation, []string, error) {
	if w == nil {
		w = io.Discard
	}
	if outDir == "" {
		outDir = "."
	}
	// One key per Generate call: CreateGeneration's retries reuse it, so a
	// POST whose answer was lost cannot start a second, charged job.
	gen, err := c.CreateGeneration(ctx, req, uuid.NewString())
	if err != nil {
		return Generation{}, nil, err
	}

	view := newProgressView(w, req.BatchSize)
	gen, err = c.wait(ctx, gen, view.update)
	view.done(gen.Status == catalog.JobCompleted)
	if err != nil {
		if ctx.Err() != nil {
			return c.abandon(gen, err)
		}
		return gen, nil, err
	}

	paths, dlErr := c.saveImages(ctx, gen, outDir)
	if gen.Status != catalog.JobCompleted {
		jobErr := &JobError{ID: gen.ID, Status: gen.Status, Message: gen.Error}
		return gen, paths, errors.Join(jobErr, dlErr)
	}
	return gen, paths, dlErr
}

// wait follows gen until it is terminal: over the event stream while it
// lasts, then by polling. It returns the terminal Generation as GET reports
// it, since only that carries the images.
func (c *Client) wait(ctx context.Context, gen Generation, onProgress func(Progress)) (Generation, error) {
	if gen.Progress != nil {
		onProgress(*gen.Progress)
	}
	if !gen.Terminal() {
		// Any stream failure short of ctx ending is recovered by polling,
		// which also reports a vanished job (404) or lost access (401).
		if err := c.Events(ctx, gen.ID, onProgress); err != nil && ctx.Err() != nil {
			return gen, err
		}
	}
	interval := c.pollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	failures := 0
	for {
		// Each poll gets its own deadline because the client has no global
		// timeout (the event stream needs none).
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		g, err := c.GetGeneration(pctx, gen.ID)
		cancel()
		switch {
		case err == nil:
			failures = 0
			gen = g
			if gen.Progress != nil {
				onProgress(*gen.Progress)
			}
			if gen.Terminal() {
				return gen, nil
			}
		case ctx.Err() != nil:
			return gen, fmt.Errorf("wait for generation %s: %w", gen.ID, ctx.Err())
		case transient(ctx, err) && failures < maxPollFailures:
			failures++
		default:
			return gen, fmt.Errorf("wait for generation %s: %w", gen.ID, err)
		}
		if err := sleep(ctx, interval); err != nil {
			return gen, fmt.Errorf("wait for generation %s: %w", gen.ID, err)
		}
	}
}

// abandon cancels gen on the server after the caller's context ended, using
// a fresh context since the caller's can no longer carry a request.
func (c *Client) abandon(gen Generation, cause error) (Generation, []string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
	defer cancel()
	g, err := c.CancelGeneration(ctx, gen.ID)
	if err != nil {
		return gen, nil, errors.Join(cause, err)
	}
	return g, nil, cause
}

// saveImages downloads gen's images into outDir and returns the paths
// written, in the order of gen.Images, stopping at the first failure.
func (c *Client) saveImages(ctx context.Context, gen Generation, outDir string) ([]string, error) {
	if len(gen.Images) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("save images of generation %s: %w", gen.ID, err)
	}
	var paths []string
	for _, img := range gen.Images {
		p, err := c.saveImage(ctx, img, outDir)
		if err != nil {
			return paths, fmt.Errorf("save images of generation %s: %w", gen.ID, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

func (c *Client) saveImage(ctx context.Context, img Image, outDir string) (string, error) {
	// The name comes from the server; refuse anything that could place the
	// file outside outDir.
	name := strings.TrimSuffix(img.Name, ".png")
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("image name %q is not a plain file name", img.Name)
	}
	b, err := c.Download(ctx, img.URL)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", img.Name, err)
	}
	// A 200 from a captive portal or misconfigured bucket would otherwise
	// be saved as a broken .png.
	if !bytes.HasPrefix(b, pngSignature) {
		return "", fmt.Errorf("image %s: downloaded %d bytes that are not a PNG", img.Name, len(b))
	}
	path := filepath.Join(outDir, name+".png")
	if err := writeFileAtomic(path, b); err != nil {
		return "", fmt.Errorf("image %s: %w", img.Name, err)
	}
	return path, nil
}

// writeFileAtomic writes through a temporary file and a rename, so an
// interrupted run never leaves a truncated PNG under the final name.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// progressView shows a job's progress to the user.
type progressView struct {
	w     io.Writer
	batch int
	bar   *progressbar.ProgressBar // nil when w is not a terminal

	// Plain-line mode prints only meaningful changes, so a log file gets a
	// readable trace instead of one line per event.
	lastDesc    string
	lastPercent int
}

func newProgressView(w io.Writer, batch int) *progressView {
	v := &progressView{w: w, batch: batch, lastPercent: -1}
	if isTerminal(w) {
		// No render throttle: the server already sends at most a few
		// events a second, and a throttled bar can show a stale line.
		v.bar = progressbar.NewOptions(100,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("queued"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)
	}
	return v
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// describe renders p as "image i/n step s/t" while the job runs, otherwise
// as its state.
func (v *progressView) describe(p Progress) string {
	if p.State != catalog.JobRunning {
		return p.State
	}
	n := p.Images
	if n <= 0 {
		n = max(v.batch, 1)
	}
	// Image is 0-based while rendering; people count from 1.
	i := min(p.Image+1, n)
	return fmt.Sprintf("image %d/%d step %d/%d", i, n, p.Step, p.TotalSteps)
}

func (v *progressView) update(p Progress) {
	percent := int(math.Round(min(max(p.Progress, 0), 1) * 100))
	desc := v.describe(p)
	if v.bar != nil {
		if v.bar.IsFinished() {
			// A finished bar re-renders on a new line; nothing after
			// completion is worth that.
			return
		}
		if p.State == catalog.JobCompleted {
			// Reaching the maximum finishes the bar, so the description
			// must already be the final one.
			v.bar.Describe(desc)
			_ = v.bar.Set(100)
			return
		}
		// Only completion may fill the bar: 100 % finishes it for good,
		// and the last step's event arrives before the job has ended.
		_ = v.bar.Set(min(percent, 99))
		v.bar.Describe(desc)
		return
	}
	imageChanged := !strings.HasPrefix(desc, prefixUpToStep(v.lastDesc))
	if v.lastPercent >= 0 && !imageChanged && percent < v.lastPercent+10 && percent != 100 {
		return
	}
	if desc == v.lastDesc && percent == v.lastPercent {
		return
	}
	fmt.Fprintf(v.w, "%3d%% %s\n", percent, desc)
	v.lastDesc, v.lastPercent = desc, percent
}

// prefixUpToStep is desc without its step counter, so that plain output can
// tell a new image (or state) from another step of the same one.
func prefixUpToStep(desc string) string {
	if i := strings.Index(desc, " step "); i >= 0 {
		return desc[:i+1]
	}
	return desc
}

// done closes the display; a completed job's bar is drawn full.
func (v *progressView) done(completed bool) {
	if v.bar == nil {
		return
	}
	if completed {
		if !v.bar.IsFinished() {
			v.bar.Describe(catalog.JobCompleted)
			_ = v.bar.Finish()
		}
		return
	}
	// Exit ends the line via the completion callback, which a bar that
	// already reached 100 % has run.
	if !v.bar.IsFinished() {
		_ = v.bar.Exit()
	}
}
