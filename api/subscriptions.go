package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/store"
	"github.com/easel/easel/workflows"
)

// SubscribeRequest is the body of POST /v1/subscriptions.
type SubscribeRequest struct {
	Plan string `json:"plan"`
	// PaymentMethod is a Stripe payment method the web app collected
	// (pm_...). Without it the answer carries a SetupIntent client secret,
	// and billing starts when Stripe reports the card saved.
	PaymentMethod string `json:"payment_method,omitempty"`
}

// SubscriptionView is a subscription as the API shows it.
type SubscriptionView struct {
	store.Subscription
	NextChargeAt            *time.Time `json:"next_charge_at,omitempty"`
	DunningAttempt          int        `json:"dunning_attempt,omitempty"`
	WorkflowID              string     `json:"workflow_id"`
	SetupIntentClientSecret string     `json:"setup_intent_client_secret,omitempty"`
}

// ChangePlanRequest is the body of POST /v1/subscription/change.
type ChangePlanRequest struct {
	Plan string `json:"plan"`
}

// RegisterSubscriptionRoutes adds the subscription routes to the
// authenticated /v1 group.
func (s *Server) RegisterSubscriptionRoutes(v1 *gin.RouterGroup) {
	v1.POST("/subscriptions", s.subscribe)
	v1.GET("/subscription", s.getSubscription)
	v1.POST("/subscription/cancel", s.updateSubscription(workflows.CancelUpdate))
	v1.POST("/subscription/resume", s.updateSubscription(workflows.ResumeUpdate))
	v1.POST("/subscription/change", s.changePlan)
}

// subscriptionPlan is the billing view of a plan, price in exact cents.
func subscriptionPlan(p store.Plan) (workflows.SubscriptionPlan, error) {
	cents, err := p.PriceCents()
	return workflows.SubscriptionPlan{Slug: p.Slug, PriceCents: cents, Credits: p.MonthlyCredits}, err
}

// billingPlan reads a plan by slug for billing.
func (s *Server) billingPlan(ctx context.Context, slug string) (workflows.SubscriptionPlan, error) {
	p, err := s.Store.PlanBySlug(ctx, slug)
	if err != nil {
		return workflows.SubscriptionPlan{}, err
	}
	return subscriptionPlan(p)
}

func (s *Server) subscribe(c *gin.Context) {
	var req SubscribeRequest
	if !s.decodeJSON(c, &req) {
		return
	}
	ctx, u := c.Request.Context(), user(c)
	plan, ok := s.planForRequest(c, req.Plan)
	if !ok {
		return
	}
	paid := plan.PriceCents > 0
	if paid && s.Billing == nil {
		problem(c, http.StatusServiceUnavailable, "billing-unavailable", "Billing unavailable",
			"payments are not configured on this server", nil)
		return
	}
	live, err := s.Store.LiveSubscription(ctx, u.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		internalError(c, err)
		return
	case live.Status == store.SubIncomplete && live.Plan == plan.Slug:
		// A retry of the same request: finish what it started.
		secret := ""
		if paid && req.PaymentMethod == "" {
			// Stripe answers the same keyed request with the same objects.
			cus, err := s.Billing.CreateCustomer(ctx, activities.CreateCustomerInput{UserID: u.ID, Email: u.Email})
			if err != nil {
				s.billingError(c, err)
				return
			}
			secret = cus.SetupIntentClientSecret
		}
		s.finishSubscribe(c, live, plan, req.PaymentMethod, secret, http.StatusOK)
		return
	case live.Plan != store.FreePlan || !paid:
		problem(c, http.StatusConflict, "already-subscribed", "Already subscribed",
			fmt.Sprintf("you are on the %s plan (%s); change plans with POST /v1/subscription/change", live.Plan, live.Status),
			map[string]any{"subscription_id": live.ID})
		return
	}
	sub, secret, err := s.createSubscription(ctx, u, plan)
	if errors.Is(err, store.ErrLiveSubscription) {
		problem(c, http.StatusConflict, "already-subscribed", "Already subscribed",
			"another request created a subscription at the same time", nil)
		return
	}
	if err != nil {
		s.billingError(c, err)
		return
	}
	s.finishSubscribe(c, sub, plan, req.PaymentMethod, secret, http.StatusCreated)
}

// createSubscription makes the Stripe customer (paid plans), ends a free
// subscription the paid one replaces and inserts the row. The setup intent
// secret is returned for the web app.
func (s *Server) createSubscription(ctx context.Context, u store.User, plan workflows.SubscriptionPlan) (store.Subscription, string, error) {
	in := store.NewSubscription{UserID: u.ID, Plan: plan.Slug, Status: store.SubIncomplete, PeriodStart: time.Now().UTC()}
	in.PeriodEnd = in.PeriodStart.AddDate(0, 1, 0)
	var secret string
	if plan.PriceCents > 0 {
		cus, err := s.Billing.CreateCustomer(ctx, activities.CreateCustomerInput{UserID: u.ID, Email: u.Email})
		if err != nil {
			return store.Subscription{}, "", err
		}
		in.CustomerID, in.SetupIntentID, secret = cus.CustomerID, cus.SetupIntentID, cus.SetupIntentClientSecret
		if s.TrialDays > 0 {
			in.TrialEnd = in.PeriodStart.AddDate(0, 0, s.TrialDays)
		}
		in.ReplaceFree = true
	}
	sub, ended, err := s.Store.CreateSubscription(ctx, in)
	if err == nil && ended != "" {
		// The free row is final already; its workflow only has to stop.
		if err := s.Temporal.CancelWorkflow(ctx, workflows.SubscriptionID(ended), ""); err != nil && !isNotFound(err) {
			s.Log.WarnContext(ctx, "stop replaced free subscription", "subscription_id", ended, "err", err)
		}
	}
	return sub, secret, err
}

// finishSubscribe saves the card when one was given and starts billing; a
// subscription without a card waits for Stripe's setup_intent.succeeded.
func (s *Server) finishSubscribe(c *gin.Context, sub store.Subscription, plan workflows.SubscriptionPlan, pm, secret string, status int) {
	ctx := c.Request.Context()
	view := SubscriptionView{Subscription: sub, WorkflowID: workflows.SubscriptionID(sub.ID)}
	if plan.PriceCents > 0 && pm == "" {
		view.SetupIntentClientSecret = secret
		c.JSON(status, view)
		return
	}
	if pm != "" {
		if err := s.Billing.SaveCard(ctx, sub.CustomerID, pm); err != nil {
			s.billingError(c, err)
			return
		}
	}
	if err := s.StartSubscription(ctx, sub, plan); err != nil {
		unavailable(c, err)
		return
	}
	c.JSON(status, view)
}

// StartSubscription starts the billing workflow of a subscription row. It
// is idempotent: the workflow id is the subscription id, and a running
// workflow is joined.
func (s *Server) StartSubscription(ctx context.Context, sub store.Subscription, plan workflows.SubscriptionPlan) error {
	fallback, err := s.billingPlan(ctx, store.FreePlan)
	if err != nil {
		return err
	}
	in := workflows.SubscriptionInput{SubscriptionID: sub.ID, UserID: sub.UserID, CustomerID: sub.CustomerID,
		Plan: plan, PeriodStart: sub.PeriodStart, PeriodEnd: sub.PeriodEnd, FallbackPlan: &fallback, Synced: true}
	if sub.TrialEnd != nil {
		in.TrialEnd = *sub.TrialEnd
	}
	_, err = s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.SubscriptionID(sub.ID),
		TaskQueue:                workflows.ControlQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(SearchUserID.ValueSet(sub.UserID),
			SearchPlan.ValueSet(plan.Slug)),
	}, workflows.Subscription, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		return fmt.Errorf("start subscription workflow %s: %w", sub.ID, err)
	}
	return nil
}

func (s *Server) planForRequest(c *gin.Context, slug string) (workflows.SubscriptionPlan, bool) {
	if slug == "" {
		invalid(c, "plan is required", FieldError{Field: "plan", Message: "required"})
		return workflows.SubscriptionPlan{}, false
	}
	p, err := s.Store.PlanBySlug(c.Request.Context(), slug)
	if errors.Is(err, store.ErrNotFound) {
		invalid(c, fmt.Sprintf("unknown plan %q; GET /v1/plans lists them", slug), FieldError{Field: "plan", Message: "unknown plan"})
		return workflows.SubscriptionPlan{}, false
	}
	if err != nil {
		internalError(c, err)
		return workflows.SubscriptionPlan{}, false
	}
	plan, err := subscriptionPlan(p)
	if err != nil {
		internalError(c, err)
		return workflows.SubscriptionPlan{}, false
	}
	return plan, true
}

// billingError answers a failed Stripe call: a refused card or request is
// the client's to fix (402), anything else is worth a retry (503).
func (s *Server) billingError(c *gin.Context, err error) {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case activities.ErrCardDeclined, activities.ErrStripeInvalidRequest:
			problem(c, http.StatusPaymentRequired, "payment-method-refused", "Payment method refused", appErr.Message(), nil)
			return
		}
	}
	unavailable(c, err)
}

func (s *Server) liveSubscription(c *gin.Context) (store.Subscription, bool) {
	sub, err := s.Store.LiveSubscription(c.Request.Context(), user(c).ID)
	if err == nil {
		logIDs(c, "", workflows.SubscriptionID(sub.ID))
	}
	if errors.Is(err, store.ErrNotFound) {
		notFound(c, "subscription")
		return sub, false
	}
	if err != nil {
		internalError(c, err)
		return sub, false
	}
	return sub, true
}

func (s *Server) getSubscription(c *gin.Context) {
	sub, ok := s.liveSubscription(c)
	if !ok {
		return
	}
	view := SubscriptionView{Subscription: sub, WorkflowID: workflows.SubscriptionID(sub.ID)}
	if st, err := s.subscriptionState(c.Request.Context(), sub.ID); err == nil {
		if !st.NextChargeAt.IsZero() {
			view.NextChargeAt = &st.NextChargeAt
		}
		view.DunningAttempt = st.DunningAttempt
	}
	c.JSON(http.StatusOK, view)
}

func (s *Server) subscriptionState(ctx context.Context, id string) (workflows.SubscriptionState, error) {
	var st workflows.SubscriptionState
	v, err := s.Temporal.QueryWorkflow(ctx, workflows.SubscriptionID(id), "", workflows.StateQuery)
	if err == nil {
		err = v.Get(&st)
	}
	return st, err
}

// updateSubscription sends a cancel or resume update to the caller's
// subscription and answers with the row the workflow wrote.
func (s *Server) updateSubscription(name string) gin.HandlerFunc {
	return func(c *gin.Context) {
		sub, ok := s.liveSubscription(c)
		if !ok {
			return
		}
		var st workflows.SubscriptionState
		if !s.sendUpdate(c, sub.ID, name, &st) {
			return
		}
		s.answerSubscription(c, sub.ID, st)
	}
}

func (s *Server) changePlan(c *gin.Context) {
	var req ChangePlanRequest
	if !s.decodeJSON(c, &req) {
		return
	}
	plan, ok := s.planForRequest(c, req.Plan)
	if !ok {
		return
	}
	sub, ok := s.liveSubscription(c)
	if !ok {
		return
	}
	if sub.Plan == store.FreePlan {
		problem(c, http.StatusConflict, "subscribe-first", "Subscribe first",
			"the free plan has no card on file; subscribe with POST /v1/subscriptions", nil)
		return
	}
	var res workflows.ChangePlanResult
	if !s.sendUpdate(c, sub.ID, workflows.ChangePlanUpdate, &res, workflows.ChangePlanRequest{Plan: plan}) {
		return
	}
	st, _ := s.subscriptionState(c.Request.Context(), sub.ID)
	c.JSON(http.StatusOK, gin.H{"plan": st.Plan.Slug, "pending_plan": pendingSlug(st), "effective_at": res.EffectiveAt,
		"charged_cents": res.AmountCents, "credits_added": res.Credits})
}

func pendingSlug(st workflows.SubscriptionState) string {
	if st.PendingPlan == nil {
		return ""
	}
	return st.PendingPlan.Slug
}

// sendUpdate runs a workflow update and answers the errors: a refusal by
// the validator or a failed handler is a 409 with its reason.
func (s *Server) sendUpdate(c *gin.Context, subID, name string, out any, args ...any) bool {
	ctx, cancel := detached(c, 2*time.Minute)
	defer cancel()
	h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.SubscriptionID(subID), UpdateName: name, Args: args,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, out)
	}
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return true
	case isNotFound(err):
		problem(c, http.StatusConflict, "subscription-not-running", "Subscription not running",
			"this subscription's billing has not started or has ended", nil)
	case errors.As(err, &appErr):
		problem(c, http.StatusConflict, "subscription-conflict", "Not possible now", appErr.Message(), nil)
	default:
		unavailable(c, err)
	}
	return false
}

func (s *Server) answerSubscription(c *gin.Context, id string, st workflows.SubscriptionState) {
	sub, err := s.Store.GetSubscription(c.Request.Context(), id)
	if err != nil {
		internalError(c, err)
		return
	}
	view := SubscriptionView{Subscription: sub, WorkflowID: workflows.SubscriptionID(id), DunningAttempt: st.DunningAttempt}
	if !st.NextChargeAt.IsZero() {
		view.NextChargeAt = &st.NextChargeAt
	}
	c.JSON(http.StatusOK, view)
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

// welcome puts a user this sign-in created on the free plan: a free
// subscription, 50 credits a month, renewed by its own workflow. A failure
// is logged and does not fail the request: the user can still subscribe.
func (s *Server) welcome(ctx context.Context, u store.User) {
	plan, err := s.billingPlan(ctx, store.FreePlan)
	if err == nil {
		now := time.Now().UTC()
		var sub store.Subscription
		sub, _, err = s.Store.CreateSubscription(ctx, store.NewSubscription{UserID: u.ID, Plan: store.FreePlan,
			Status: store.SubActive, PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0)})
		if err == nil {
			err = s.StartSubscription(ctx, sub, plan)
		}
	}
	if err != nil && !errors.Is(err, store.ErrLiveSubscription) {
		s.Log.WarnContext(ctx, "start the free plan of a new user", "user_id", u.ID, "err", err)
	}
}
