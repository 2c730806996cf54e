package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/webhook"
)

// GenerationEventData is the data of the generation.completed, .failed and
// .canceled webhooks: the job as it ended.
type GenerationEventData struct {
	Generation GenerationEventJob `json:"generation"`
}

// GenerationEventJob is a finished job as its webhook describes it. Images
// are names (GET /v1/images/{name} gives a fresh URL): URLs in a webhook
// would expire before a retried delivery arrives.
type GenerationEventJob struct {
	ID             string               `json:"id"`
	Status         string               `json:"status"`
	Model          string               `json:"model"`
	Width          int                  `json:"width"`
	Height         int                  `json:"height"`
	Steps          int                  `json:"steps"`
	BatchSize      int                  `json:"batch_size"`
	ImagesProduced int                  `json:"images_produced"`
	Images         []string             `json:"images"`
	CreditsHeld    int                  `json:"credits_held"`
	CreditsSettled int                  `json:"credits_settled"`
	Error          string               `json:"error,omitempty"`
	Links          GenerationEventLinks `json:"links"`
}

// GenerationEventLinks are the API paths that read the job and its images.
type GenerationEventLinks struct {
	Self   string `json:"self"`
	Images string `json:"images"`
}

// generationEventTypes maps a job's end to its event.
var generationEventTypes = map[string]string{
	catalog.JobCompleted: webhook.GenerationCompleted,
	catalog.JobFailed:    webhook.GenerationFailed,
	catalog.JobCanceled:  webhook.GenerationCanceled,
}

// emitGenerationEnd sends the job's end to the user's webhooks.
func emitGenerationEnd(ctx workflow.Context, in GenerationInput, res GenerationResult, images []string) {
	eventType, ok := generationEventTypes[res.Status]
	if !ok {
		return
	}
	if images == nil {
		images = []string{}
	}
	p := in.Params
	data := GenerationEventData{Generation: GenerationEventJob{ID: in.JobID, Status: res.Status, Model: p.Model,
		Width: p.Width, Height: p.Height, Steps: p.Steps, BatchSize: p.BatchSize, ImagesProduced: res.ImagesProduced,
		Images: images, CreditsHeld: res.CreditsHeld, CreditsSettled: res.CreditsSettled, Error: res.Error,
		Links: GenerationEventLinks{Self: "/v1/generations/" + in.JobID, Images: "/v1/images?job=" + in.JobID}}}
	emit(ctx, eventType, in.JobID, in.UserID, data, in.Webhook)
}

// CreditsLowEventData is the data of credits.low: the balance fell under
// the threshold (once per crossing; the next comes after the balance has
// been back at or above it).
type CreditsLowEventData struct {
	Available int             `json:"available"`
	Threshold int             `json:"threshold"`
	Links     CreditsLowLinks `json:"links"`
}

// CreditsLowLinks point at the balance and the plans.
type CreditsLowLinks struct {
	Credits string `json:"credits"`
	Plans   string `json:"plans"`
}

// emitCreditsLow tells the user's webhooks that the settle the low-balance
// notice followed took the balance under the threshold. The notice's id
// keys the event: one event per crossing, like the notice.
func emitCreditsLow(ctx workflow.Context, userID string, low *activities.LowBalance) {
	if low == nil {
		return
	}
	emit(ctx, webhook.CreditsLow, low.NoticeID, userID, CreditsLowEventData{Available: low.Available,
		Threshold: low.Threshold, Links: CreditsLowLinks{Credits: "/v1/credits", Plans: "/v1/plans"}}, nil)
}
