package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/pricing"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/webhook"
)

// GenerationRequest is the body of POST /v1/generations.
type GenerationRequest struct {
	Prompt         string   `json:"prompt"`
	NegativePrompt string   `json:"negative_prompt,omitempty"`
	Model          string   `json:"model"`
	Width          int      `json:"width"`
	Height         int      `json:"height"`
	Steps          int      `json:"steps"`
	CFGScale       *float64 `json:"cfg_scale,omitempty"`
	Seed           *int64   `json:"seed,omitempty"`
	BatchSize      int      `json:"batch_size"`
	// Graph is a raw InvokeAI graph (the node editor's output), for plans
	// with node_editor_access; the engine runs it instead of building one.
	// Model, size and steps then come from the graph (see applyGraph).
	Graph json.RawMessage `json:"graph,omitempty"`
	// InitImage starts the picture from an upload (its id) or one of the
	// caller's generated images (its name) instead of pure noise; Strength
	// (0..1, default 0.75) is how much of it is redrawn. Width and height
	// default to the init image's size.
	InitImage string   `json:"init_image,omitempty"`
	Strength  *float64 `json:"strength,omitempty"`
	// Mask, an upload's id, repaints only its white pixels (inpainting); it
	// needs an init image of the same size.
	Mask string `json:"mask,omitempty"`
	// WebhookURL, when set, receives this job's end (generation.completed,
	// .failed, .canceled), signed with the account's webhook secret (GET
	// /v1/webhook-secret); WebhookEvents narrows the types (empty: all
	// three). Both are part of the request's hash (omitted when empty, so
	// requests without them hash as before).
	WebhookURL    string   `json:"webhook_url,omitempty"`
	WebhookEvents []string `json:"webhook_events,omitempty"`

	// passes are the graph's denoise passes, which price it.
	passes []pricing.Pass
	// initSize and maskSize are the sizes of the pictures InitImage and
	// Mask name, once resolveSources has found them; sizeFromInit marks a
	// width and height taken from the init image.
	initSize, maskSize image.Point
	sizeFromInit       bool
}

// defaultStrength is the strength of an image-to-image request that sends
// none: most of the picture is redrawn, its composition and colours stay.
const defaultStrength = 0.75

// Request limits that hold for every plan.
const (
	maxPromptChars = 2000
	minSide        = 64
	maxSteps       = 150
	defaultSteps   = 30
	defaultCFG     = 7.0
	maxSeed        = 1<<32 - 1
	maxIdemKeyLen  = 255
	maxGraphBytes  = 32 << 10
)

// defaultBodyBytes bounds a request body; a generation request is tiny.
const defaultBodyBytes = 64 << 10

// decodeJSON reads a JSON body strictly: a JSON Content-Type, bounded size,
// text Postgres can store, no unknown or case-variant fields, no trailing
// data (readJSONBody). It writes the problem itself (400, 413 or 415) and
// reports false.
func (s *Server) decodeJSON(c *gin.Context, dst any) bool {
	limit := s.MaxBodyBytes
	if limit <= 0 {
		limit = defaultBodyBytes
	}
	if c.Request.ContentLength > limit {
		// Answered before reading: a client that sent Expect: 100-continue
		// gets the answer instead of sending the body.
		bodyTooLarge(c, limit)
		return false
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit)
	body, ok := readJSONBody(c, dst, limit)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err != nil {
		describeJSONError(c, err, limit)
		return false
	}
	return true
}

func describeJSONError(c *gin.Context, err error, limit int64) {
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var when *time.ParseError
	switch {
	case errors.As(err, &tooBig):
		bodyTooLarge(c, limit)
	case errors.As(err, &typ):
		invalid(c, "a field has the wrong type", FieldError{Field: typ.Field,
			Message: "must be " + jsonKind(typ.Type.Kind().String())})
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		invalid(c, "the body is not valid JSON: "+err.Error())
	case errors.Is(err, io.EOF):
		invalid(c, "the body is empty; send a JSON object")
	case errors.As(err, &when):
		invalid(c, fmt.Sprintf("%q is not a time: times are RFC 3339, like 2026-12-03T10:00:00Z", when.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		invalid(c, "the body has an unknown field", FieldError{Field: field, Message: "unknown field"})
	default:
		invalid(c, "the body could not be read: "+err.Error())
	}
}

// bodyTooLarge answers 413 for a JSON body over limit bytes.
func bodyTooLarge(c *gin.Context, limit int64) {
	problem(c, http.StatusRequestEntityTooLarge, "body-too-large", "Request body too large",
		fmt.Sprintf("the body must be at most %d bytes", limit), map[string]any{"max_bytes": limit})
}

// jsonKind names, with its article, the JSON value a Go field of this kind
// takes: a fraction or an integer too large for an integer field is "not an
// integer", whatever the number.
func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "uint32":
		return "an integer"
	case "float64", "ptr":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	}
	return "a value of the right type"
}

// normalize fills defaults that do not depend on the plan.
func (r *GenerationRequest) normalize() {
	r.Prompt = strings.TrimSpace(r.Prompt)
	if r.Model == "" {
		r.Model = catalog.ModelSD15
	}
	if r.Steps == 0 {
		r.Steps = defaultSteps
	}
	if r.BatchSize == 0 {
		r.BatchSize = 1
	}
	if r.InitImage != "" && r.Strength == nil {
		r.Strength = new(defaultStrength)
	}
	if r.Width == 0 && r.Height == 0 && r.initSize != (image.Point{}) {
		// The init image's size, down to the multiple of 8 renders need.
		r.Width, r.Height, r.sizeFromInit = r.initSize.X/8*8, r.initSize.Y/8*8, true
	}
	if r.Width == 0 && r.Height == 0 {
		r.Width, r.Height = nativeSide(r.Model), nativeSide(r.Model)
	}
	// One side sent: the other keeps the init image's aspect, or else is
	// the model's native side.
	if r.Width == 0 {
		r.Width = r.otherSide(r.Height, r.initSize.X, r.initSize.Y)
	}
	if r.Height == 0 {
		r.Height = r.otherSide(r.Width, r.initSize.Y, r.initSize.X)
	}
}

// otherSide is the side left out when the other was sent: sent scaled by
// the init image's aspect (this side over the sent one, to a multiple of
// 8), or the model's native side without an init image.
func (r *GenerationRequest) otherSide(sent, this, that int) int {
	if this == 0 || that == 0 {
		return nativeSide(r.Model)
	}
	return max(8, (sent*this/that+4)/8*8)
}

// nativeSide is the family's default width and height.
func nativeSide(model string) int {
	if m, ok := catalog.ModelByFamily(model); ok {
		return m.DefaultSide
	}
	return 1024
}

// validate checks the request against fixed limits and the user's plan,
// returning every problem at once.
func (r *GenerationRequest) validate(plan store.Plan) []FieldError {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch n := utf8.RuneCountInString(r.Prompt); {
	case n == 0:
		add("prompt", "is required")
	case n > maxPromptChars:
		add("prompt", "must be at most %d characters", maxPromptChars)
	}
	if utf8.RuneCountInString(r.NegativePrompt) > maxPromptChars {
		add("negative_prompt", "must be at most %d characters", maxPromptChars)
	}
	if !slices.Contains(catalog.ModelFamilies(), r.Model) {
		add("model", "must be one of %s", strings.Join(catalog.ModelFamilies(), ", "))
	}
	side := add
	if r.sizeFromInit {
		// Say where a size nobody sent came from.
		side = func(field, format string, args ...any) {
			add(field, format+" (it is the init image's, %dx%d: send width and height to scale it)",
				append(args, r.initSize.X, r.initSize.Y)...)
		}
	}
	validateSide(side, "width", r.Width, plan)
	validateSide(side, "height", r.Height, plan)
	errs = append(errs, r.validateSources()...)
	if r.Steps < 1 || r.Steps > maxSteps {
		add("steps", "must be between 1 and %d", maxSteps)
	}
	if r.CFGScale != nil && (*r.CFGScale < 1 || *r.CFGScale > 30) {
		add("cfg_scale", "must be between 1 and 30")
	}
	if r.Seed != nil && (*r.Seed < 0 || *r.Seed > maxSeed) {
		add("seed", "must be between 0 and %d", maxSeed)
	}
	if r.BatchSize < 1 || r.BatchSize > plan.MaxBatchSize {
		add("batch_size", "must be between 1 and %d on the %s plan", plan.MaxBatchSize, plan.Name)
	}
	if len(errs) == 0 {
		// Images render one at a time, so one image must fit the tier's GPU.
		if fits, need, have := catalog.FitsTier(plan.GPUTier, r.Model, r.Width, r.Height); !fits {
			add("width", "%s at %dx%d needs about %.1f GiB of GPU memory; the %s plan's %s GPUs have %.1f GiB: choose a smaller size or model",
				r.Model, r.Width, r.Height, need, plan.Name, strings.ToUpper(plan.GPUTier), have)
		}
	}
	return errs
}

// validateSources checks the image-to-image fields among themselves: a
// strength or mask needs an init image, a raw graph takes none, and the
// mask must be the init image's size (once both are resolved).
func (r *GenerationRequest) validateSources() []FieldError {
	var errs []FieldError
	add := func(field, msg string) { errs = append(errs, FieldError{Field: field, Message: msg}) }
	if r.Strength != nil {
		switch {
		case r.InitImage == "":
			add("strength", "needs init_image: strength says how much of the init image is redrawn")
		case !(*r.Strength >= 0 && *r.Strength <= 1):
			add("strength", "must be between 0 (keep the init image) and 1 (ignore it)")
		}
	}
	if r.Mask != "" && r.InitImage == "" {
		add("mask", "needs init_image: the picture whose white mask pixels are repainted")
	}
	if r.InitImage != "" && len(r.Graph) > 0 {
		add("init_image", "cannot be combined with graph: a raw graph renders only what it describes")
	}
	if r.maskSize != (image.Point{}) && r.initSize != (image.Point{}) && r.maskSize != r.initSize {
		add("mask", fmt.Sprintf("is %dx%d but init_image is %dx%d: they must be the same size",
			r.maskSize.X, r.maskSize.Y, r.initSize.X, r.initSize.Y))
	}
	return errs
}

func validateSide(add func(string, string, ...any), field string, v int, plan store.Plan) {
	switch {
	case v < minSide:
		add(field, "must be at least %d", minSide)
	case v > plan.MaxResolution:
		add(field, "must be at most %d on the %s plan", plan.MaxResolution, plan.Name)
	case v%8 != 0:
		add(field, "must be a multiple of 8")
	}
}

// validateWebhook checks the request's own webhook like an endpoint's URL,
// and its event filter against the generation events.
func (r *GenerationRequest) validateWebhook(g webhook.Guard) []FieldError {
	var errs []FieldError
	if r.WebhookURL != "" {
		if err := g.CheckURL(r.WebhookURL); err != nil {
			errs = append(errs, FieldError{Field: "webhook_url", Message: err.Error()})
		}
	} else if len(r.WebhookEvents) > 0 {
		errs = append(errs, FieldError{Field: "webhook_events", Message: "needs a webhook_url"})
	}
	if len(r.WebhookEvents) > 0 {
		if _, ferr := webhookEventFilter("webhook_events", &r.WebhookEvents, webhook.GenerationEventTypes); ferr != nil {
			errs = append(errs, *ferr)
		}
	}
	return errs
}

// requestWebhook is the job's own webhook, nil when it has none.
func (r *GenerationRequest) requestWebhook() *activities.RequestWebhook {
	if r.WebhookURL == "" {
		return nil
	}
	return &activities.RequestWebhook{URL: r.WebhookURL, Events: r.WebhookEvents}
}

// hash fingerprints the request as sent, so a reused Idempotency-Key with a
// different body is caught.
func (r GenerationRequest) hash() string {
	b, _ := json.Marshal(r)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > maxIdemKeyLen {
		return false
	}
	for _, r := range k {
		if r < 0x21 || r > 0x7e {
			return false
		}
	}
	return true
}
