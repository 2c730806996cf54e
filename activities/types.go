// Package activities holds the only code with side effects that Easel's
// workflows call: the credits ledger (admit, finalize, abort), the GPU render,
// object cleanup, billing, and customers' webhooks. Every activity is
// idempotent: a retry never charges, uploads or inserts twice (a webhook
// attempt retried after its POST is sent again, with the same webhook-id).
package activities

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/easel/easel/internal/store"
)

// Application error types. They are stable: the API maps them to HTTP
// statuses and the workflows decide retries by them.
const (
	TypeInsufficientCredits = "InsufficientCredits" // 402
	TypeConcurrencyLimit    = "ConcurrencyLimit"    // 429
	TypeInvalidRequest      = "InvalidRequest"      // 400, never retried
	TypeRenderFailed        = "RenderFailed"        // retried; carries the images made so far
	TypeFailedOver          = "FailedOver"          // the GPU worker drained; retried elsewhere
	TypeGPUBusy             = "GPUBusy"             // not enough free GPU memory now; retried
	TypeTooLargeForTier     = "TooLargeForTier"     // more memory than the tier's GPUs have; never retried
	TypeHoldVoided          = "HoldVoided"          // Finalize found the hold released (a cancel won); never retried
	TypeCancelRequested     = "CancelRequested"     // Finalize found the job marked canceling: it ends canceled; never retried
	TypeCanceled            = "RenderCanceled"      // the job was canceled during its render (benign); never retried
)

// Params are the user's generation parameters.
type Params struct {
	Prompt         string  `json:"prompt"`
	NegativePrompt string  `json:"negative_prompt,omitempty"`
	Model          string  `json:"model"`
	Width          int     `json:"width"`
	Height         int     `json:"height"`
	Steps          int     `json:"steps"`
	CFGScale       float64 `json:"cfg_scale"`
	Seed           uint32  `json:"seed"`
	BatchSize      int     `json:"batch_size"`
	// Graph is a raw InvokeAI graph from the node editor, if the user sent one.
	Graph json.RawMessage `json:"graph,omitempty"`
	// InitImage names the picture the job starts from: an upload's id (a
	// UUID) or one of the user's generated images' name; its object key is
	// objects.SourceKey. Strength (0..1) is how much of it is redrawn.
	InitImage string   `json:"init_image,omitempty"`
	Strength  *float64 `json:"strength,omitempty"`
	// Mask is an upload's id: its white pixels are repainted (inpainting).
	Mask string `json:"mask,omitempty"`
}

// ImageName names the i-th image of a job. Names are deterministic so that
// retried uploads overwrite and cleanup knows every key a job could have made.
func ImageName(jobID string, i int) string { return fmt.Sprintf("%s_%d", jobID, i) }

// AdmitInput asks to reserve a job's credits and record the job.
type AdmitInput struct {
	JobID          string
	UserID         string
	IdempotencyKey string
	RequestHash    string
	WorkflowID     string
	Plan           string
	GPUTier        string
	Params         Params
	Credits        int
	MaxConcurrent  int
}

// AdmitResult is the admitted job.
type AdmitResult struct {
	JobID       string
	CreditsHeld int
	RequestHash string
	Status      string
	CreatedAt   time.Time
	// FirstUpdateID is the id of the admit update the run answered first:
	// the request whose start created the run (Update-With-Start delivers
	// it before any request that joined). The generation workflow sets it
	// on each answer; empty from runs that began before it did.
	FirstUpdateID string `json:",omitempty"`
}

// InsufficientCreditsDetails travel with an InsufficientCredits error.
type InsufficientCreditsDetails struct {
	Needed    int `json:"needed"`
	Available int `json:"available"`
}

// ConcurrencyLimitDetails travel with a ConcurrencyLimit error.
type ConcurrencyLimitDetails struct {
	Limit  int `json:"limit"`
	Active int `json:"active"`
}

// RenderStartedSignal is the signal GPU workers of earlier versions sent to
// the generation workflow when a render attempt started, so the job showed
// as running. Renders now report their start in the job's live status
// (progress.Status.StartedAt) instead; the workflow still honours the signal
// so that runs in flight during an upgrade replay and finish unchanged.
const RenderStartedSignal = "render_started"

// RenderStarted is the payload of RenderStartedSignal.
type RenderStarted struct {
	Attempt   int32
	StartedAt time.Time
}

// MarkRunningInput records that a job's render began.
type MarkRunningInput struct {
	JobID     string
	UserID    string
	StartedAt time.Time
}

// RenderInput is one job's render on a GPU worker.
type RenderInput struct {
	JobID  string
	UserID string
	Params Params
}

// RenderResult lists the stored images (object keys only: image bytes never
// travel through Temporal) and the device time spent.
type RenderResult struct {
	Images []store.ImageRecord
	// ComputeSeconds is the device time of every attempt, including the
	// image an attempt was rendering when it died.
	ComputeSeconds float64
	// StartedAt is when the first attempt began.
	StartedAt time.Time
}

// FinalizeInput settles a finished job.
type FinalizeInput struct {
	JobID          string
	UserID         string
	GPUTier        string
	Params         Params
	Images         []store.ImageRecord
	Credits        int
	ComputeSeconds float64
	StartedAt      time.Time
}

// FinalizeResult is what the job cost.
type FinalizeResult struct {
	CreditsSettled int
	ImagesProduced int
	// LowBalance is set when this settle took the user's balance under the
	// low-balance threshold (once per crossing): the workflow tells the
	// user's webhooks (credits.low).
	LowBalance *LowBalance `json:",omitempty"`
	// NoListeners is set when no webhook endpoint of the user takes
	// generation.completed: the workflow then skips the event (and its
	// local activity) unless the request has its own webhook_url. Results
	// recorded before the field existed read false, so their runs replay
	// the emit they made.
	NoListeners bool `json:",omitempty"`
}

// LowBalance is a low-balance notice: the balance it was claimed at and
// the threshold crossed.
type LowBalance struct {
	NoticeID  string
	Available int
	Threshold int
}

// AbortInput ends a job without charge.
type AbortInput struct {
	JobID     string
	UserID    string
	Status    string // catalog.JobFailed or catalog.JobCanceled
	Reason    string
	BatchSize int
}

// AbortResult tells how the hold ended: voided normally; posted if the job
// had already been settled.
type AbortResult struct {
	HoldStatus string
}

// DeleteImagesInput removes a job's objects (PNG and thumbnail) by name.
type DeleteImagesInput struct {
	UserID string
	Names  []string
}
