package api

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/pricing"
	"github.com/easel/easel/internal/progress"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/workflows"
)

// Search attributes that make every run findable in Temporal UI; the
// workflows package owns them because subscriptions upsert them.
var (
	SearchUserID  = workflows.SearchUserID
	SearchGPUTier = workflows.SearchGPUTier
	SearchPlan    = workflows.SearchPlan
)

// SearchAttributes lists them for server registration.
var SearchAttributes = workflows.SearchAttributes

// jobNamespace derives job ids from (user, Idempotency-Key): one key, one job
// id, one workflow id, one hold, one usage record.
var jobNamespace = uuid.MustParse("6f1c3d2e-5b7a-4c8e-9f10-2a3b4c5d6e7f")

func jobID(userID, idemKey string) string {
	if idemKey == "" {
		return uuid.NewString()
	}
	return uuid.NewSHA1(jobNamespace, []byte(userID+"\x00"+idemKey)).String()
}

func (s *Server) createGeneration(c *gin.Context) {
	u := user(c)
	idemKey := c.GetHeader("Idempotency-Key")
	if idemKey != "" && !validIdempotencyKey(idemKey) {
		invalid(c, "Idempotency-Key must be 1-255 printable ASCII characters without spaces",
			FieldError{Field: "Idempotency-Key", Message: "invalid header"})
		return
	}
	req, plan, quote, ok := s.prepareGeneration(c, u, true)
	if !ok || !s.withinStorage(c, u.ID, plan, 0) {
		return
	}
	hash := req.hash()
	id := jobID(u.ID, idemKey)
	logIDs(c, id, workflows.GenerationID(id))
	in := workflows.GenerationInput{JobID: id, UserID: u.ID, IdempotencyKey: idemKey, RequestHash: hash,
		Plan: plan.Slug, GPUTier: plan.GPUTier, PriorityKey: priorityKey(plan), MaxConcurrent: plan.MaxConcurrentJobs,
		Params: params(req), PricePerImage: quote.PerImage, RenderHeartbeat: s.RenderHeartbeat,
		Webhook: req.requestWebhook()}
	if idemKey != "" && s.replayed(c, u, in) {
		admissions.WithLabelValues("replayed", plan.Slug).Inc()
		return
	}
	admitted, err := s.admitWithin(c.Request.Context(), in)
	if err != nil {
		// A parallel request with the same key may have run the whole job
		// meanwhile (its workflow has closed): the job's row answers it
		// (200, or 409 for another body).
		if idemKey != "" && !refused(err) && s.replayed(c, u, in) {
			admissions.WithLabelValues("replayed", plan.Slug).Inc()
			return
		}
		s.admitError(c, err, plan.Slug)
		return
	}
	if admitted.RequestHash != hash {
		admissions.WithLabelValues("replayed", plan.Slug).Inc()
		idempotencyConflict(c)
		return
	}
	if admitted.joined {
		// A parallel request with the same key created the job: this is its
		// repeat.
		admissions.WithLabelValues("replayed", plan.Slug).Inc()
		s.respondGeneration(c, http.StatusOK, u.ID, id)
		return
	}
	admissions.WithLabelValues("admitted", plan.Slug).Inc()
	s.respondGeneration(c, http.StatusAccepted, u.ID, id)
}

// prepareGeneration reads and checks a generation request as POST
// /v1/generations and POST /v1/quote both do: the plan's gates, the
// fields, the model's availability on the plan's tier, and the price. It
// answers the problem itself and reports false.
func (s *Server) prepareGeneration(c *gin.Context, u store.User, submitting bool) (GenerationRequest, store.Plan, pricing.Quote, bool) {
	countInvalid := func(plan string) {
		if submitting {
			admissions.WithLabelValues("invalid", plan).Inc()
		}
	}
	var req GenerationRequest
	if !s.decodeJSON(c, &req) {
		return req, store.Plan{}, pricing.Quote{}, false
	}
	plan, err := s.userPlan(c.Request.Context(), u.ID)
	if err != nil {
		unavailable(c, err)
		return req, plan, pricing.Quote{}, false
	}
	if len(req.Graph) > 0 && !plan.NodeEditorAccess {
		problem(c, http.StatusForbidden, "plan-forbids", "Not available on your plan",
			"raw node-editor graphs need a plan with node editor access (Pro or Enterprise)",
			map[string]any{"field": "graph", "plan": plan.Slug})
		return req, plan, pricing.Quote{}, false
	}
	if len(req.Graph) > 0 {
		if errs := req.applyGraph(plan); len(errs) > 0 {
			countInvalid(plan.Slug)
			invalid(c, fmt.Sprintf("the graph cannot be accepted: %d problem(s)", len(errs)), errs...)
			return req, plan, pricing.Quote{}, false
		}
	}
	if !s.resolveSources(c, u.ID, &req) {
		countInvalid(plan.Slug)
		return req, plan, pricing.Quote{}, false
	}
	req.normalize()
	errs := append(append(explicitZeros(c), req.validate(plan)...), req.validateWebhook(s.WebhookGuard)...)
	if len(errs) == 0 {
		errs = s.servedModel(c.Request.Context(), plan, req.Model)
	}
	if len(errs) > 0 {
		countInvalid(plan.Slug)
		invalid(c, fmt.Sprintf("%d field(s) are invalid", len(errs)), errs...)
		return req, plan, pricing.Quote{}, false
	}
	quote, err := req.quote()
	if err != nil {
		invalid(c, err.Error())
		return req, plan, quote, false
	}
	return req, plan, quote, true
}

// withinStorage refuses (403) new work once the user's stored images and
// uploads fill the plan's quota, or would with adding more bytes, naming
// the numbers.
func (s *Server) withinStorage(c *gin.Context, userID string, plan store.Plan, adding int64) bool {
	full, err := s.storageFull(c.Request.Context(), userID, plan, adding)
	if err != nil {
		unavailable(c, err)
		return false
	}
	if full == nil {
		return true
	}
	problem(c, full.Status, full.Type, "Storage full", full.Detail, full.Extra)
	return false
}

// storageFull says why the user's storage refuses new work (adding bytes
// to it), or nil.
func (s *Server) storageFull(ctx context.Context, userID string, plan store.Plan, adding int64) (*Refusal, error) {
	used, err := s.Store.StorageUsed(ctx, userID)
	if err != nil {
		return nil, err
	}
	quota := int64(plan.MaxStorageGB) << 30
	if used < quota && used+adding <= quota {
		return nil, nil
	}
	detail := fmt.Sprintf("your images and uploads use %d of the %d bytes the %s plan includes; delete some or upgrade",
		used, quota, plan.Name)
	if adding > 0 {
		detail = fmt.Sprintf("this picture needs %d bytes and %d of the %d bytes the %s plan includes are free; delete images or uploads, or upgrade",
			adding, max(quota-used, 0), quota, plan.Name)
	}
	return &Refusal{Type: "storage-full", Status: http.StatusForbidden, Detail: detail,
		Extra: map[string]any{"used_bytes": used, "quota_bytes": quota}}, nil
}

// replayed answers a repeated Idempotency-Key from the database, if the job
// exists: the same job, or 409 when the body differs. A job still queued
// whose workflow no longer runs (lost with its server, or ended without
// settling) drives its admission again first: a new run finds its hold and
// goes on. A running workflow admits by itself and is left alone, so that
// retries add nothing to its history.
func (s *Server) replayed(c *gin.Context, u store.User, in workflows.GenerationInput) bool {
	g, err := s.Store.GetGeneration(c.Request.Context(), u.ID, in.JobID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false
	case err != nil:
		unavailable(c, err)
	case g.RequestHash != in.RequestHash:
		idempotencyConflict(c)
	default:
		if g.Status == catalog.JobQueued && !s.generationRuns(c.Request.Context(), in.JobID) {
			if _, err := s.admitWithin(c.Request.Context(), in); err != nil {
				// A run that has ended answers no admit; the row stands.
				s.Log.InfoContext(c.Request.Context(), "re-admit a queued job", "job_id", in.JobID, "err", err)
			}
			if g, err = s.Store.GetGeneration(c.Request.Context(), u.ID, in.JobID); err != nil {
				unavailable(c, err)
				return true
			}
		}
		s.writeGeneration(c, http.StatusOK, g)
	}
	return true
}

// generationRuns reports whether the job's workflow is running; when
// Temporal cannot say, it answers true, leaving the job to its workflow.
func (s *Server) generationRuns(ctx context.Context, jobID string) bool {
	d, err := s.Temporal.DescribeWorkflowExecution(ctx, workflows.GenerationID(jobID), "")
	switch {
	case isNotFound(err):
		return false
	case err != nil:
		return true
	}
	return d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// refused reports whether an admission was refused for the user's money or
// plan (402, 429), as opposed to failing.
func refused(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) &&
		(appErr.Type() == activities.TypeInsufficientCredits || appErr.Type() == activities.TypeConcurrencyLimit)
}

func idempotencyConflict(c *gin.Context) {
	problem(c, http.StatusConflict, "idempotency-key-reused", "Idempotency-Key reused",
		"this Idempotency-Key was used with a different request body", nil)
}

// priorityKey orders a plan's renders on its tier's queue: priority
// plans first, then paid ones, Free last (it shares t4 with Basic). The
// GPU autoscaler lets Free renders wait longer before it adds hosts for
// them (docs/autoscaling.md, "Free renders").
func priorityKey(p store.Plan) int {
	switch {
	case p.PriorityQueue:
		return workflows.PriorityHigh
	case p.Slug == store.FreePlan:
		return workflows.PriorityFree
	}
	return workflows.PriorityStandard
}

func params(r GenerationRequest) activities.Params {
	p := activities.Params{Prompt: r.Prompt, NegativePrompt: r.NegativePrompt, Model: r.Model, Width: r.Width,
		Height: r.Height, Steps: r.Steps, CFGScale: defaultCFG, BatchSize: r.BatchSize, Graph: r.Graph,
		InitImage: r.InitImage, Strength: r.Strength, Mask: r.Mask}
	if r.CFGScale != nil {
		p.CFGScale = *r.CFGScale
	}
	if r.Seed != nil {
		p.Seed = uint32(*r.Seed)
	} else {
		var b [4]byte
		_, _ = rand.Read(b[:])
		p.Seed = binary.LittleEndian.Uint32(b[:])
	}
	return p
}

// admit starts the generation workflow and waits for its admit update: the
// credits are held (or refused) when this returns. Starting an id that
// already runs joins it and gets that run's admission.
func (s *Server) admit(ctx context.Context, in workflows.GenerationInput) (admission, error) {
	start := s.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflows.GenerationID(in.JobID),
		TaskQueue:                catalog.ControlQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// A refused admission fails its run; the same key may then try again.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			SearchUserID.ValueSet(in.UserID), SearchGPUTier.ValueSet(in.GPUTier), SearchPlan.ValueSet(in.Plan)),
	}, workflows.Generation, in)
	updateID := workflows.AdmitUpdate + "/" + uuid.NewString()
	handle, err := s.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			// Each request sends its own update; the workflow answers every
			// admit of a run with the run's one admission, and a new id lets a
			// retry after a refusal start a fresh run.
			UpdateID:     updateID,
			UpdateName:   workflows.AdmitUpdate,
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return admission{}, fmt.Errorf("start generation %s: %w", in.JobID, err)
	}
	var r activities.AdmitResult
	if err := handle.Get(ctx, &r); err != nil {
		// A refused run has already failed when its answer arrives (the
		// failure is in the same workflow task), so the same key may retry.
		return admission{}, fmt.Errorf("admit generation %s: %w", in.JobID, err)
	}
	return admission{AdmitResult: r, joined: r.FirstUpdateID != "" && r.FirstUpdateID != updateID}, nil
}

// admission is a run's answer to one request's admit update.
type admission struct {
	activities.AdmitResult
	// joined is true when another request with the same Idempotency-Key
	// created the run: this one answers as a repeat (200), not 202.
	joined bool
}

// admitError maps a refused or failed admission to its HTTP answer.
func (s *Server) admitError(c *gin.Context, err error, plan string) {
	if s.admitInputError(c, err, plan) {
		return
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case activities.TypeInsufficientCredits:
			admissions.WithLabelValues("insufficient_credits", plan).Inc()
			var d activities.InsufficientCreditsDetails
			_ = appErr.Details(&d)
			r := insufficientCredits(d.Needed, d.Available)
			problem(c, r.Status, r.Type, "Insufficient credits", r.Detail, r.Extra)
			return
		case activities.TypeConcurrencyLimit:
			admissions.WithLabelValues("concurrency_limit", plan).Inc()
			var d activities.ConcurrencyLimitDetails
			_ = appErr.Details(&d)
			c.Header("Retry-After", "5")
			problem(c, http.StatusTooManyRequests, "concurrency-limit", "Too many jobs running",
				fmt.Sprintf("your plan allows %d concurrent jobs and %d are running", d.Limit, d.Active),
				map[string]any{"limit": d.Limit, "active": d.Active})
			return
		}
	}
	var unavail *serviceerror.Unavailable
	if errors.As(err, &unavail) || errors.Is(err, context.DeadlineExceeded) {
		unavailable(c, err)
		return
	}
	internalError(c, err)
}

func (s *Server) getGeneration(c *gin.Context) {
	id, ok := parseJobID(c)
	if !ok {
		return
	}
	s.respondGeneration(c, http.StatusOK, user(c).ID, id)
}

func parseJobID(c *gin.Context) (string, bool) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		notFound(c, "generation")
		return "", false
	}
	logIDs(c, id.String(), workflows.GenerationID(id.String()))
	return id.String(), true
}

func (s *Server) respondGeneration(c *gin.Context, status int, userID, id string) {
	if g, ok := s.loadGenerationOf(c, userID, id); ok {
		s.writeGeneration(c, status, g)
	}
}

// loadGeneration reads one of the caller's jobs, answering 404 (missing or
// another user's) or 503 itself when it cannot.
func (s *Server) loadGeneration(c *gin.Context, id string) (store.Generation, bool) {
	return s.loadGenerationOf(c, user(c).ID, id)
}

func (s *Server) loadGenerationOf(c *gin.Context, userID, id string) (store.Generation, bool) {
	g, err := s.Store.GetGeneration(c.Request.Context(), userID, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		notFound(c, "generation")
		return g, false
	case err != nil:
		unavailable(c, err)
		return g, false
	}
	return g, true
}

func (s *Server) writeGeneration(c *gin.Context, status int, g store.Generation) {
	view, err := s.generationView(c.Request.Context(), g, true)
	if err != nil {
		unavailable(c, err)
		return
	}
	if status == http.StatusAccepted && c.Request.Method == http.MethodPost {
		// A new job's answer points at where to follow it (RFC 9110, 15.3.3).
		c.Header("Location", view.Links.Self)
	}
	c.JSON(status, view)
}

func (s *Server) listGenerations(c *gin.Context) {
	page, ok := parseCursorPage(c, isUUID)
	if !ok {
		return
	}
	gens, err := s.Store.ListGenerations(c.Request.Context(), user(c).ID, page)
	if err != nil {
		unavailable(c, err)
		return
	}
	kept, err := s.keptImages(c.Request.Context(), user(c).ID, gens)
	if err != nil {
		unavailable(c, err)
		return
	}
	views := make([]GenerationView, 0, len(gens))
	for _, g := range gens {
		v, err := s.generationView(c.Request.Context(), g, false)
		if err != nil {
			unavailable(c, err)
			return
		}
		v.ImagesKept = kept[g.ID]
		views = append(views, v)
	}
	c.JSON(http.StatusOK, gin.H{"generations": views, "next_before": nextCursor(len(views), page.Limit, func() (time.Time, string) {
		return gens[len(gens)-1].CreatedAt, gens[len(gens)-1].ID
	})})
}

// keptImages counts the images each listed job still has, in one query for
// the page: a list shows a job whose images were deleted as such, without
// reading every job's images.
func (s *Server) keptImages(ctx context.Context, userID string, gens []store.Generation) (map[string]int, error) {
	var ids []string
	for _, g := range gens {
		if g.ImagesProduced > 0 {
			ids = append(ids, g.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return s.Store.KeptImages(ctx, userID, ids)
}

func (s *Server) cancelGeneration(c *gin.Context) {
	id, ok := parseJobID(c)
	if !ok {
		return
	}
	g, ok := s.loadGeneration(c, id)
	if !ok {
		return
	}
	if g.Terminal() {
		alreadyFinished(c, g)
		return
	}
	ctx, cancel := detached(c, 10*time.Second)
	defer cancel()
	g, err := s.cancelJob(ctx, g)
	if err != nil {
		unavailable(c, err)
		return
	}
	if g.Status == catalog.JobCompleted || g.Status == catalog.JobFailed {
		// The job was settled (or failed) between the read above and the
		// mark: the cancel came too late to change it.
		alreadyFinished(c, g)
		return
	}
	s.writeGeneration(c, http.StatusAccepted, g)
}

func alreadyFinished(c *gin.Context, g store.Generation) {
	problem(c, http.StatusConflict, "already-finished", "Generation already finished",
		"the generation is "+g.Status+" and can no longer be canceled", map[string]any{"generation_status": g.Status})
}

// cancelJob asks the job's workflow to cancel (it releases the hold once
// the GPU has stopped) and meanwhile shows the job canceling, in its row
// and to every event stream.
func (s *Server) cancelJob(ctx context.Context, g store.Generation) (store.Generation, error) {
	err := s.Temporal.CancelWorkflow(ctx, workflows.GenerationID(g.ID), "")
	if err != nil && !isNotFound(err) {
		return g, fmt.Errorf("cancel workflow of job %s: %w", g.ID, err)
	}
	g, err = s.Store.MarkCanceling(ctx, g.UserID, g.ID)
	if err != nil {
		return g, err
	}
	if g.Status == catalog.JobCanceling {
		st := progress.Status{JobID: g.ID, State: catalog.JobCanceling, Images: g.BatchSize}
		if err := s.Progress.Publish(ctx, st); err != nil {
			s.Log.WarnContext(ctx, "publish canceling", "job_id", g.ID, "err", err)
		}
	}
	return g, nil
}

func (s *Server) generationEvents(c *gin.Context) {
	id, ok := parseJobID(c)
	if !ok {
		return
	}
	g, ok := s.loadGeneration(c, id)
	if !ok {
		return
	}
	if g.Terminal() {
		// The job ended before the stream opened; its stored status may have
		// expired, so the database's answer is the one event.
		startEvents(c)
		s.writeFinalEvent(c, progress.Status{JobID: id, State: g.Status, Progress: 1, Images: g.BatchSize,
			Image: g.ImagesProduced, StartedAt: g.StartedAt, UpdatedAt: endedAt(g)}, g)
		return
	}
	events, err := s.Progress.Watch(c.Request.Context(), id)
	if err != nil {
		unavailable(c, err)
		return
	}
	startEvents(c)
	s.relayEvents(c, g, events)
}

func startEvents(c *gin.Context) {
	c.Header("Content-Type", "text/event-stream")
	c.Header("Cache-Control", "no-cache")
	c.Header("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	// Send the headers now, as set here: gin's SSE renderer would otherwise
	// rewrite Content-Type on the first event.
	c.Writer.Flush()
}

func (s *Server) relayEvents(c *gin.Context, g store.Generation, events <-chan progress.Status) {
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-c.Request.Context().Done():
			return
		case <-s.Stopping:
			// The process is shutting down: end the stream cleanly now
			// rather than hold the shutdown until it is cut. EventSource
			// clients reconnect (to another instance) after the retry.
			_, _ = c.Writer.WriteString("retry: 1000\n\n")
			c.Writer.Flush()
			return
		case <-keepAlive.C:
			_, _ = c.Writer.WriteString(": keep-alive\n\n")
			c.Writer.Flush()
		case st, open := <-events:
			if !open {
				return
			}
			if st.Terminal() {
				s.writeFinalEvent(c, st, g)
				return
			}
			writeEvent(c, eventView{Status: st})
		}
	}
}

// eventView is one SSE event: the job's live status and, on the last event,
// the finished job with its images' URLs, so clients need no extra GET.
type eventView struct {
	progress.Status
	Generation *GenerationView `json:"generation,omitempty"`
}

// endedAt is when a finished job ended: its completion, or its creation for
// a row that never recorded one.
func endedAt(g store.Generation) time.Time {
	if g.CompletedAt != nil {
		return g.CompletedAt.UTC()
	}
	return g.CreatedAt.UTC()
}

// writeFinalEvent sends the last event, with the job as the database has it
// now. Should that read fail, the event goes out without it: the stream must
// still end.
func (s *Server) writeFinalEvent(c *gin.Context, st progress.Status, g store.Generation) {
	ev := eventView{Status: st}
	if fresh, err := s.Store.GetGeneration(c.Request.Context(), g.UserID, g.ID); err == nil {
		if view, err := s.generationView(c.Request.Context(), fresh, true); err == nil {
			ev.Generation = &view
		}
	}
	writeEvent(c, ev)
}

// writeEvent sends one status event and flushes it. The JSON goes out as a
// string with one leading space, so the line reads "data: {...}": SSE
// readers drop that space, and clients that match the line whole need it.
func writeEvent(c *gin.Context, ev eventView) {
	b, _ := json.Marshal(ev)
	c.SSEvent("status", " "+string(b))
	c.Writer.Flush()
}

// parsePage reads ?limit= and ?before= (RFC 3339).
func parsePage(c *gin.Context) (store.Page, bool) {
	p, ok := parseLimit(c)
	if !ok {
		return p, false
	}
	if v := c.Query("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			invalid(c, "before must be an RFC 3339 time", FieldError{Field: "before", Message: "must be an RFC 3339 time"})
			return p, false
		}
		if t.IsZero() {
			// A page's zero Before means "from now": refused, so that the
			// earliest time there is never lists everything.
			invalid(c, "before must be after 0001-01-01T00:00:00Z", FieldError{Field: "before", Message: "must be after 0001-01-01T00:00:00Z"})
			return p, false
		}
		p.Before = t
	}
	return p, true
}

// parseLimit reads ?limit= (default 20).
func parseLimit(c *gin.Context) (store.Page, bool) {
	p := store.Page{Limit: 20}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			invalid(c, "limit must be between 1 and 100", FieldError{Field: "limit", Message: "must be between 1 and 100"})
			return p, false
		}
		p.Limit = n
	}
	return p, true
}
