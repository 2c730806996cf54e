package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/webhook"
	"github.com/easel/easel/workflows"
)

// Webhooks to customers: the endpoints a user registers, and the
// deliveries of events to them (docs/webhooks.md). Not to be confused with
// POST /v1/webhooks/stripe (webhooks.go), which Stripe calls.

// CreateWebhookEndpointRequest is the body of POST /v1/webhook-endpoints.
type CreateWebhookEndpointRequest struct {
	URL string `json:"url"`
	// Events filters the event types sent; absent sends every type.
	Events      *[]string `json:"events"`
	Description string    `json:"description"`
}

// WebhookEndpointView is an endpoint as listed: never its secret. Events
// lists the types it receives (every type when it was created without a
// filter; AllEvents says which).
type WebhookEndpointView struct {
	ID          string               `json:"id"`
	URL         string               `json:"url"`
	Description string               `json:"description"`
	Events      []string             `json:"events"`
	AllEvents   bool                 `json:"all_events"`
	CreatedAt   time.Time            `json:"created_at"`
	Links       WebhookEndpointLinks `json:"links"`
	// PreviousSecretExpiresAt is set while the secret a rotation replaced
	// still signs beside the current one.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

// WebhookEndpointLinks point at an endpoint's deliveries.
type WebhookEndpointLinks struct {
	Self       string `json:"self"`
	Deliveries string `json:"deliveries"`
}

// CreatedWebhookEndpointView answers POST /v1/webhook-endpoints. Secret
// signs every webhook sent to the endpoint: it is shown this once.
type CreatedWebhookEndpointView struct {
	WebhookEndpointView
	Secret string `json:"secret"`
}

// WebhookDeliveryView is one event's delivery to one target, with every
// attempt. EndpointID is null for a generation request's own webhook_url.
type WebhookDeliveryView struct {
	ID            string               `json:"id"`
	EventID       string               `json:"event_id"`
	EventType     string               `json:"event_type"`
	EndpointID    *string              `json:"endpoint_id"`
	URL           string               `json:"url"`
	Status        string               `json:"status"`
	Attempts      []WebhookAttemptView `json:"attempts"`
	ReplayOf      *string              `json:"replay_of"`
	CreatedAt     time.Time            `json:"created_at"`
	LastAttemptAt *time.Time           `json:"last_attempt_at"`
	FinishedAt    *time.Time           `json:"finished_at"`
	Payload       json.RawMessage      `json:"payload"`
}

// WebhookAttemptView is one POST of a delivery. StatusCode is null when no
// answer came (refused address, timeout, connection error).
type WebhookAttemptView struct {
	Attempt         int       `json:"attempt"`
	StartedAt       time.Time `json:"started_at"`
	DurationMS      int64     `json:"duration_ms"`
	StatusCode      *int      `json:"status_code"`
	ResponseExcerpt string    `json:"response_excerpt"`
	Error           string    `json:"error,omitempty"`
}

// RegisterWebhookRoutes adds the webhook endpoint and delivery routes to
// the authenticated /v1 group.
func (s *Server) RegisterWebhookRoutes(v1 *gin.RouterGroup) {
	v1.POST("/webhook-endpoints", s.createWebhookEndpoint)
	v1.GET("/webhook-endpoints", s.listWebhookEndpoints)
	v1.GET("/webhook-endpoints/:id", s.getWebhookEndpoint)
	v1.DELETE("/webhook-endpoints/:id", s.deleteWebhookEndpoint)
	v1.GET("/webhook-endpoints/:id/deliveries", s.listEndpointDeliveries)
	v1.GET("/webhook-deliveries", s.listWebhookDeliveries)
	v1.GET("/webhook-deliveries/:id", s.getWebhookDelivery)
	v1.POST("/webhook-endpoints/:id/rotate-secret", s.rotateWebhookEndpointSecret)
	v1.GET("/webhook-secret", s.webhookSecret)
	v1.POST("/webhook-secret/rotate", s.rotateWebhookSecret)
	// A replay makes Easel send requests: it also counts against the
	// plan's tighter rate, that of starting generations.
	v1.POST("/webhook-deliveries/:id/replay", s.rateLimit(limitGenerate), s.replayWebhookDelivery)
}

func (s *Server) createWebhookEndpoint(c *gin.Context) {
	var req CreateWebhookEndpointRequest
	if !s.decodeJSON(c, &req) {
		return
	}
	e, errs := req.validate(s.WebhookGuard)
	if len(errs) > 0 {
		invalid(c, fmt.Sprintf("%d field(s) are invalid", len(errs)), errs...)
		return
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		internalError(c, err)
		return
	}
	e.UserID = user(c).ID
	e, err = s.Store.CreateWebhookEndpoint(c.Request.Context(), e, secret)
	if errors.Is(err, store.ErrTooManyWebhookEndpoints) {
		problem(c, http.StatusConflict, "webhook-endpoint-limit", "Too many webhook endpoints",
			fmt.Sprintf("at most %d webhook endpoints may exist at once; delete one first", store.MaxWebhookEndpoints),
			map[string]any{"limit": store.MaxWebhookEndpoints})
		return
	}
	if err != nil {
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusCreated, CreatedWebhookEndpointView{WebhookEndpointView: webhookEndpointView(e), Secret: secret})
}

// validate checks the request, returning the endpoint to create or every
// problem.
func (r CreateWebhookEndpointRequest) validate(g webhook.Guard) (store.WebhookEndpoint, []FieldError) {
	var errs []FieldError
	url := strings.TrimSpace(r.URL)
	if url == "" {
		errs = append(errs, FieldError{Field: "url", Message: "is required"})
	} else if err := g.CheckURL(url); err != nil {
		errs = append(errs, FieldError{Field: "url", Message: err.Error()})
	}
	events, ferr := webhookEventFilter("events", r.Events, webhook.EventTypes)
	if ferr != nil {
		errs = append(errs, *ferr)
	}
	desc := strings.TrimSpace(r.Description)
	switch {
	case utf8.RuneCountInString(desc) > webhook.MaxDescriptionRunes:
		errs = append(errs, FieldError{Field: "description",
			Message: fmt.Sprintf("must be at most %d characters", webhook.MaxDescriptionRunes)})
	case strings.ContainsFunc(desc, unicode.IsControl):
		errs = append(errs, FieldError{Field: "description", Message: "must not contain control characters"})
	}
	return store.WebhookEndpoint{URL: url, Description: desc, Events: events}, errs
}

// webhookEventFilter checks an event filter against the types allowed:
// absent (nil) means every type; present, it must name at least one, each
// known. Duplicates are dropped.
func webhookEventFilter(field string, events *[]string, allowed []string) ([]string, *FieldError) {
	if events == nil {
		return nil, nil
	}
	if len(*events) == 0 {
		return nil, &FieldError{Field: field, Message: "must name at least one event type, or be left out for every type"}
	}
	var out []string
	for _, t := range *events {
		if !slices.Contains(allowed, t) {
			return nil, &FieldError{Field: field, Message: fmt.Sprintf("unknown event type %q; types are %s",
				t, strings.Join(allowed, ", "))}
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

func webhookEndpointView(e store.WebhookEndpoint) WebhookEndpointView {
	v := WebhookEndpointView{ID: e.ID, URL: e.URL, Description: e.Description, Events: e.Events,
		AllEvents: len(e.Events) == 0, CreatedAt: e.CreatedAt, PreviousSecretExpiresAt: e.PreviousSecretUntil,
		Links: WebhookEndpointLinks{Self: "/v1/webhook-endpoints/" + e.ID,
			Deliveries: "/v1/webhook-endpoints/" + e.ID + "/deliveries"}}
	if v.AllEvents {
		v.Events = webhook.EventTypes
	}
	return v
}

func (s *Server) listWebhookEndpoints(c *gin.Context) {
	es, err := s.Store.ListWebhookEndpoints(c.Request.Context(), user(c).ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	views := make([]WebhookEndpointView, 0, len(es))
	for _, e := range es {
		views = append(views, webhookEndpointView(e))
	}
	c.JSON(http.StatusOK, gin.H{"webhook_endpoints": views, "limit": store.MaxWebhookEndpoints})
}

func (s *Server) getWebhookEndpoint(c *gin.Context) {
	if e, ok := s.loadWebhookEndpoint(c); ok {
		c.JSON(http.StatusOK, webhookEndpointView(e))
	}
}

func (s *Server) deleteWebhookEndpoint(c *gin.Context) {
	err := s.Store.DeleteWebhookEndpoint(c.Request.Context(), user(c).ID, c.Param("id"))
	if s.webhookFound(c, "webhook endpoint", err) {
		c.Status(http.StatusNoContent)
	}
}

// loadWebhookEndpoint reads the caller's endpoint named in the path,
// answering 404 (missing or another user's) or 503 itself.
func (s *Server) loadWebhookEndpoint(c *gin.Context) (store.WebhookEndpoint, bool) {
	e, err := s.Store.GetWebhookEndpoint(c.Request.Context(), user(c).ID, c.Param("id"))
	return e, s.webhookFound(c, "webhook endpoint", err)
}

// webhookFound answers 404 for what the caller does not have (another
// user's included) and 503 for a failed read.
func (s *Server) webhookFound(c *gin.Context, what string, err error) bool {
	switch {
	case errors.Is(err, store.ErrNotFound):
		notFound(c, what)
		return false
	case err != nil:
		unavailable(c, err)
		return false
	}
	return true
}

// listEndpointDeliveries answers GET /v1/webhook-endpoints/{id}/deliveries.
func (s *Server) listEndpointDeliveries(c *gin.Context) {
	e, ok := s.loadWebhookEndpoint(c)
	if !ok {
		return
	}
	s.writeDeliveries(c, store.WebhookDeliveryFilter{EndpointID: e.ID})
}

// listWebhookDeliveries answers GET /v1/webhook-deliveries, optionally
// for one endpoint (?endpoint=) or one event (?event=).
func (s *Server) listWebhookDeliveries(c *gin.Context) {
	f := store.WebhookDeliveryFilter{EndpointID: c.Query("endpoint"), EventID: c.Query("event")}
	for field, v := range map[string]string{"endpoint": f.EndpointID, "event": f.EventID} {
		if _, err := uuid.Parse(v); v != "" && err != nil {
			invalid(c, field+" must be an id", FieldError{Field: field, Message: "must be an id (a UUID)"})
			return
		}
	}
	s.writeDeliveries(c, f)
}

func (s *Server) writeDeliveries(c *gin.Context, f store.WebhookDeliveryFilter) {
	page, ok := parseCursorPage(c, isUUID)
	if !ok {
		return
	}
	ds, err := s.Store.ListWebhookDeliveries(c.Request.Context(), user(c).ID, f, page)
	if err != nil {
		unavailable(c, err)
		return
	}
	views := make([]WebhookDeliveryView, 0, len(ds))
	for _, d := range ds {
		views = append(views, webhookDeliveryView(d))
	}
	c.JSON(http.StatusOK, gin.H{"deliveries": views, "next_before": nextCursor(len(views), page.Limit, func() (time.Time, string) {
		return ds[len(ds)-1].CreatedAt, ds[len(ds)-1].ID
	})})
}

func (s *Server) getWebhookDelivery(c *gin.Context) {
	d, err := s.Store.GetWebhookDelivery(c.Request.Context(), user(c).ID, c.Param("id"))
	if s.webhookFound(c, "webhook delivery", err) {
		c.JSON(http.StatusOK, webhookDeliveryView(d))
	}
}

func webhookDeliveryView(d store.WebhookDelivery) WebhookDeliveryView {
	v := WebhookDeliveryView{ID: d.ID, EventID: d.EventID, EventType: d.EventType, URL: d.URL, Status: d.Status,
		Attempts: make([]WebhookAttemptView, 0, len(d.Attempts)), CreatedAt: d.CreatedAt,
		LastAttemptAt: d.LastAttemptAt, FinishedAt: d.FinishedAt, Payload: d.Payload}
	if d.EndpointID != "" {
		v.EndpointID = &d.EndpointID
	}
	if d.ReplayOf != "" {
		v.ReplayOf = &d.ReplayOf
	}
	for _, a := range d.Attempts {
		av := WebhookAttemptView{Attempt: a.Attempt, StartedAt: a.StartedAt, DurationMS: a.Duration.Milliseconds(),
			ResponseExcerpt: a.Excerpt, Error: a.Error}
		if a.StatusCode != 0 {
			code := a.StatusCode
			av.StatusCode = &code
		}
		v.Attempts = append(v.Attempts, av)
	}
	return v
}

// replayWebhookDelivery answers POST /v1/webhook-deliveries/{id}/replay: a
// new delivery of the same event (same body, same webhook-id) to the same
// target, with its own attempts and retries. 202 with the new delivery.
func (s *Server) replayWebhookDelivery(c *gin.Context) {
	ctx, u := c.Request.Context(), user(c)
	d, err := s.Store.ReplayWebhookDelivery(ctx, u.ID, c.Param("id"), uuid.NewString())
	if !s.webhookFound(c, "webhook delivery", err) {
		return
	}
	sctx, cancel := detached(c, 30*time.Second)
	defer cancel()
	err = workflows.StartWebhookDelivery(sctx, s.Temporal, u.ID, workflows.WebhookDeliveryInput{DeliveryID: d.ID,
		FirstRetry: s.WebhookFirstRetry})
	if err != nil {
		// No workflow will send it: the new delivery must not sit pending.
		if ferr := s.Store.FailWebhookDelivery(sctx, d.ID); ferr != nil {
			s.Log.WarnContext(ctx, "give up an unstarted webhook replay", "delivery_id", d.ID, "err", ferr)
		}
		unavailable(c, err)
		return
	}
	logIDs(c, "", workflows.WebhookDeliveryID(d.ID))
	c.JSON(http.StatusAccepted, webhookDeliveryView(d))
}

// WebhookSecretView answers GET /v1/webhook-secret.
type WebhookSecretView struct {
	Secret string `json:"secret"`
}

// webhookSecret answers GET /v1/webhook-secret: the account's signing
// secret, which signs the webhooks of generation requests that name their
// own webhook_url (endpoints have their own). It is created on first use
// (here, or by the first such webhook) and the same ever after; an API key
// needs the billing scope to read it.
func (s *Server) webhookSecret(c *gin.Context) {
	candidate, err := webhook.NewSecret()
	if err != nil {
		internalError(c, err)
		return
	}
	secret, err := s.Store.WebhookSecret(c.Request.Context(), user(c).ID, candidate)
	if err != nil {
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusOK, WebhookSecretView{Secret: secret})
}

// RotateSecretRequest asks for a new signing secret. The secret it replaces
// keeps signing beside the new one for PreviousSecretExpiresIn seconds
// (default a day; 0: not at all; at most a week), so receivers can switch
// without rejecting a webhook.
type RotateSecretRequest struct {
	PreviousSecretExpiresIn *int `json:"previous_secret_expires_in"`
}

// defaultSecretOverlap is how long a replaced secret keeps signing unless
// the request says otherwise.
const defaultSecretOverlap = 24 * time.Hour

// secretOverlap reads the request, answering 400 itself when it is invalid. An
// empty body asks for the defaults.
func (s *Server) secretOverlap(c *gin.Context) (time.Duration, bool) {
	var req RotateSecretRequest
	if c.Request.ContentLength != 0 && !s.decodeJSON(c, &req) {
		return 0, false
	}
	if req.PreviousSecretExpiresIn == nil {
		return defaultSecretOverlap, true
	}
	secs, most := *req.PreviousSecretExpiresIn, int(store.MaxSecretOverlap/time.Second)
	if secs < 0 || secs > most {
		invalid(c, "previous_secret_expires_in is out of range", FieldError{Field: "previous_secret_expires_in",
			Message: fmt.Sprintf("must be 0 to %d seconds (a week)", most)})
		return 0, false
	}
	return time.Duration(secs) * time.Second, true
}

// rotation reads a rotation request and draws the new secret, answering
// 400 or 500 itself.
func (s *Server) rotation(c *gin.Context) (secret string, overlap time.Duration, ok bool) {
	if overlap, ok = s.secretOverlap(c); !ok {
		return "", 0, false
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		internalError(c, err)
		return "", 0, false
	}
	return secret, overlap, true
}

// rotateWebhookEndpointSecret answers POST
// /v1/webhook-endpoints/{id}/rotate-secret: a new secret, shown this once,
// signs from now on; the old one signs beside it until
// previous_secret_expires_at.
func (s *Server) rotateWebhookEndpointSecret(c *gin.Context) {
	secret, overlap, ok := s.rotation(c)
	if !ok {
		return
	}
	e, err := s.Store.RotateWebhookEndpointSecret(c.Request.Context(), user(c).ID, c.Param("id"), secret, overlap)
	if !s.webhookFound(c, "webhook endpoint", err) {
		return
	}
	c.JSON(http.StatusOK, CreatedWebhookEndpointView{WebhookEndpointView: webhookEndpointView(e), Secret: secret})
}

// RotatedWebhookSecretView answers POST /v1/webhook-secret/rotate.
type RotatedWebhookSecretView struct {
	Secret                  string     `json:"secret"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
}

// rotateWebhookSecret answers POST /v1/webhook-secret/rotate: the account
// secret's counterpart of rotateWebhookEndpointSecret.
func (s *Server) rotateWebhookSecret(c *gin.Context) {
	secret, overlap, ok := s.rotation(c)
	if !ok {
		return
	}
	until, err := s.Store.RotateWebhookSecret(c.Request.Context(), user(c).ID, secret, overlap)
	if err != nil {
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusOK, RotatedWebhookSecretView{Secret: secret, PreviousSecretExpiresAt: until})
}
