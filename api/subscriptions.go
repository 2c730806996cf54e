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

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/payments"
	"github.com/easel/easel/internal/store"
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
	// Checkout is a paid subscription waiting for its card or its first
	// payment; the subscription shown stays in effect until it is paid.
	Checkout *SubscriptionView `json:"checkout,omitempty"`
}

// ChangePlanRequest is the body of POST /v1/subscription/change.
type ChangePlanRequest struct {
	Plan string `json:"plan"`
}

// RegisterSubscriptionRoutes adds the subscription routes to the
// authenticated /v1 group.
func (s *Server) RegisterSubscriptionRoutes(v1 *gin.RouterGroup) {
	v1.POST("/subscriptions", s.forgetCaller, s.subscribe)
	v1.GET("/subscription", s.getSubscription)
	v1.POST("/subscription/cancel", s.forgetCaller, s.updateSubscription(workflows.CancelUpdate))
	v1.POST("/subscription/resume", s.forgetCaller, s.updateSubscription(workflows.ResumeUpdate))
	v1.POST("/subscription/change", s.forgetCaller, s.changePlan)
	v1.POST("/subscription/change/preview", s.previewPlanChange)
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
	if paid && s.Payments == nil {
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
	case live.Plan != store.FreePlan || !paid:
		problem(c, http.StatusConflict, "already-subscribed", "Already subscribed",
			fmt.Sprintf("you are on the %s plan (%s); change plans with POST /v1/subscription/change", live.Plan, live.Status),
			map[string]any{"subscription_id": live.ID})
		return
	}
	if !paid {
		s.subscribeFree(c, u, plan)
		return
	}
	s.checkout(c, u, plan, req.PaymentMethod, http.StatusCreated)
}

// subscribeFree puts a user without a subscription on the free plan.
func (s *Server) subscribeFree(c *gin.Context, u store.User, plan workflows.SubscriptionPlan) {
	ctx := c.Request.Context()
	now := time.Now().UTC()
	sub, err := s.Store.CreateSubscription(ctx, store.NewSubscription{UserID: u.ID, Plan: plan.Slug,
		Status: catalog.SubActive, PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0)})
	if errors.Is(err, store.ErrLiveSubscription) {
		problem(c, http.StatusConflict, "already-subscribed", "Already subscribed",
			"another request created a subscription at the same time", nil)
		return
	}
	if err != nil {
		internalError(c, err)
		return
	}
	if err := s.StartSubscription(ctx, sub, plan); err != nil {
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusCreated, SubscriptionView{Subscription: sub, WorkflowID: workflows.SubscriptionID(sub.ID)})
}

// checkout opens a checkout for a paid plan, beside the free subscription
// that stays in effect until the first charge succeeds. The same request
// again finishes what it started (200); a checkout for another plan is
// abandoned and replaced. With a card, billing starts at once; without
// one, the answer carries the SetupIntent secret and billing starts when
// Stripe reports the card saved.
func (s *Server) checkout(c *gin.Context, u store.User, plan workflows.SubscriptionPlan, pm string, status int) {
	ctx := c.Request.Context()
	open, err := s.Store.Checkout(ctx, u.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		internalError(c, err)
		return
	case open.Plan == plan.Slug:
		status = http.StatusOK
	default:
		if !s.abandonCheckout(c, open) {
			return
		}
		open = store.Subscription{}
	}
	// Stripe answers the same keyed request with the same objects, so a
	// retry or a replacement finds the user's customer and setup intent.
	cus, err := s.Payments.CreateCustomer(ctx, u.ID, u.Email)
	if err != nil {
		s.billingError(c, err)
		return
	}
	if pm != "" {
		if err := s.Payments.SaveCard(ctx, cus.CustomerID, pm); err != nil {
			s.billingError(c, err)
			return
		}
	}
	if open.ID == "" {
		if open, err = s.createCheckout(ctx, u, plan, cus); errors.Is(err, store.ErrLiveSubscription) {
			problem(c, http.StatusConflict, "already-subscribed", "Already subscribed",
				"another request opened a checkout at the same time", nil)
			return
		} else if err != nil {
			internalError(c, err)
			return
		}
	}
	if err := s.startCheckout(ctx, open, plan, pm != ""); err != nil {
		unavailable(c, err)
		return
	}
	view := SubscriptionView{Subscription: open, WorkflowID: workflows.SubscriptionID(open.ID)}
	if pm == "" {
		view.SetupIntentClientSecret = cus.SetupIntentClientSecret
	}
	c.JSON(status, view)
}

func (s *Server) createCheckout(ctx context.Context, u store.User, plan workflows.SubscriptionPlan, cus payments.Customer) (store.Subscription, error) {
	in := store.NewSubscription{UserID: u.ID, Plan: plan.Slug, Status: catalog.SubIncomplete, PeriodStart: time.Now().UTC(),
		CustomerID: cus.CustomerID, SetupIntentID: cus.SetupIntentID}
	in.PeriodEnd = in.PeriodStart.AddDate(0, 1, 0)
	if s.TrialDays > 0 {
		in.TrialEnd = in.PeriodStart.AddDate(0, 0, s.TrialDays)
	}
	return s.Store.CreateSubscription(ctx, in)
}

// abandonCheckout ends an open checkout through its workflow, which refuses
// while the first charge is in flight (409). A checkout without a workflow
// (opened before checkouts had one) is ended in the database.
func (s *Server) abandonCheckout(c *gin.Context, open store.Subscription) bool {
	ctx, cancel := detached(c, 2*time.Minute)
	defer cancel()
	var st workflows.SubscriptionState
	err := s.update(ctx, open.ID, workflows.CancelUpdate, &st)
	if isNotFound(err) {
		_, err = s.Store.EndCheckout(ctx, open.ID, catalog.SubCanceled)
	}
	return s.answerUpdateError(c, err)
}

// StartSubscription starts the billing workflow of a subscription row. It
// is idempotent: the workflow id is the subscription id, and a running
// workflow is joined.
func (s *Server) StartSubscription(ctx context.Context, sub store.Subscription, plan workflows.SubscriptionPlan) error {
	in, err := s.subscriptionInput(ctx, sub, plan)
	if err != nil {
		return err
	}
	_, err = s.Temporal.ExecuteWorkflow(ctx, s.subscriptionOptions(sub, plan), workflows.Subscription, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		return fmt.Errorf("start subscription workflow %s: %w", sub.ID, err)
	}
	return nil
}

// startCheckout starts (or joins) a checkout's workflow; with cardReady it
// also tells the workflow that the card is saved, so billing starts.
func (s *Server) startCheckout(ctx context.Context, sub store.Subscription, plan workflows.SubscriptionPlan, cardReady bool) error {
	if !cardReady {
		return s.StartSubscription(ctx, sub, plan)
	}
	in, err := s.subscriptionInput(ctx, sub, plan)
	if err != nil {
		return err
	}
	_, err = s.Temporal.SignalWithStartWorkflow(ctx, workflows.SubscriptionID(sub.ID), workflows.CardReadySignal, nil,
		s.subscriptionOptions(sub, plan), workflows.Subscription, in)
	if err != nil {
		return fmt.Errorf("start billing of checkout %s: %w", sub.ID, err)
	}
	return nil
}

func (s *Server) subscriptionInput(ctx context.Context, sub store.Subscription, plan workflows.SubscriptionPlan) (workflows.SubscriptionInput, error) {
	fallback, err := s.billingPlan(ctx, store.FreePlan)
	if err != nil {
		return workflows.SubscriptionInput{}, err
	}
	in := workflows.SubscriptionInput{SubscriptionID: sub.ID, UserID: sub.UserID, CustomerID: sub.CustomerID,
		Plan: plan, PeriodStart: sub.PeriodStart, PeriodEnd: sub.PeriodEnd, FallbackPlan: &fallback}
	if sub.TrialEnd != nil {
		in.TrialEnd = *sub.TrialEnd
	}
	if sub.Status == catalog.SubIncomplete {
		in.Checkout = &workflows.Checkout{ExpiresAt: sub.CreatedAt.Add(workflows.CheckoutTTL)}
		if free, err := s.Store.LiveSubscription(ctx, sub.UserID); err == nil && free.Plan == store.FreePlan {
			in.Checkout.Replaces = free.ID
		}
	}
	return in, nil
}

func (s *Server) subscriptionOptions(sub store.Subscription, plan workflows.SubscriptionPlan) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       workflows.SubscriptionID(sub.ID),
		TaskQueue:                catalog.ControlQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(SearchUserID.ValueSet(sub.UserID),
			SearchPlan.ValueSet(plan.Slug)),
	}
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
	var decline *payments.DeclineError
	if errors.As(err, &decline) || errors.Is(err, payments.ErrInvalidRequest) {
		problem(c, http.StatusPaymentRequired, "payment-method-refused", "Payment method refused", err.Error(), nil)
		return
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

// getSubscription shows the subscription in effect and any open checkout;
// a user with only a checkout sees the checkout.
func (s *Server) getSubscription(c *gin.Context) {
	ctx, u := c.Request.Context(), user(c)
	open, err := s.Store.Checkout(ctx, u.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		internalError(c, err)
		return
	}
	live, err := s.Store.LiveSubscription(ctx, u.ID)
	switch {
	case errors.Is(err, store.ErrNotFound) && open.ID != "":
		c.JSON(http.StatusOK, s.subscriptionView(ctx, open))
		return
	case errors.Is(err, store.ErrNotFound):
		notFound(c, "subscription")
		return
	case err != nil:
		internalError(c, err)
		return
	}
	logIDs(c, "", workflows.SubscriptionID(live.ID))
	view := s.subscriptionView(ctx, live)
	if open.ID != "" {
		co := s.subscriptionView(ctx, open)
		view.Checkout = &co
	}
	c.JSON(http.StatusOK, view)
}

// subscriptionView is a row with what its workflow knows: the next charge
// and the dunning attempt.
func (s *Server) subscriptionView(ctx context.Context, sub store.Subscription) SubscriptionView {
	view := SubscriptionView{Subscription: sub, WorkflowID: workflows.SubscriptionID(sub.ID)}
	if st, err := s.subscriptionState(ctx, sub.ID); err == nil {
		if !st.NextChargeAt.IsZero() {
			view.NextChargeAt = &st.NextChargeAt
		}
		view.DunningAttempt = st.DunningAttempt
	}
	return view
}

func (s *Server) subscriptionState(ctx context.Context, id string) (workflows.SubscriptionState, error) {
	var st workflows.SubscriptionState
	v, err := s.Temporal.QueryWorkflow(ctx, workflows.SubscriptionID(id), "", workflows.StateQuery)
	if err == nil {
		err = v.Get(&st)
	}
	return st, err
}

// openCheckout is the caller's open checkout, if any; false means the
// answer is written.
func (s *Server) openCheckout(c *gin.Context) (store.Subscription, bool) {
	open, err := s.Store.Checkout(c.Request.Context(), user(c).ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		internalError(c, err)
		return open, false
	}
	return open, true
}

// updateSubscription sends a cancel or resume update to the caller's
// subscription and answers with the row the workflow wrote. A cancel with a
// checkout open abandons the checkout: the plan in effect is unchanged.
func (s *Server) updateSubscription(name string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if name == workflows.CancelUpdate {
			open, ok := s.openCheckout(c)
			if !ok {
				return
			}
			if open.ID != "" {
				if s.abandonCheckout(c, open) {
					s.answerSubscription(c, open.ID, workflows.SubscriptionState{})
				}
				return
			}
		}
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

// changePlan changes the plan of the subscription in effect. With a
// checkout open, the checkout is replaced by one for the new plan, as
// subscribing to it would.
func (s *Server) changePlan(c *gin.Context) {
	plan, open, sub, ok := s.planChangeTarget(c)
	if !ok {
		return
	}
	if open.ID != "" {
		s.checkout(c, user(c), plan, "", http.StatusOK)
		return
	}
	var res workflows.ChangePlanResult
	if !s.sendUpdate(c, sub.ID, workflows.ChangePlanUpdate, &res, workflows.ChangePlanRequest{Plan: plan}) {
		return
	}
	st, _ := s.subscriptionState(c.Request.Context(), sub.ID)
	c.JSON(http.StatusOK, gin.H{"plan": st.Plan.Slug, "pending_plan": workflows.PlanSlug(st.PendingPlan), "effective_at": res.EffectiveAt,
		"charged_cents": res.AmountCents, "credits_added": res.Credits})
}

// update runs a workflow update to completion.
func (s *Server) update(ctx context.Context, subID, name string, out any, args ...any) error {
	h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.SubscriptionID(subID), UpdateName: name, Args: args,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, out)
	}
	return err
}

// sendUpdate runs a workflow update and answers the errors: a refusal by
// the validator or a failed handler is a 409 with its reason.
func (s *Server) sendUpdate(c *gin.Context, subID, name string, out any, args ...any) bool {
	ctx, cancel := detached(c, 2*time.Minute)
	defer cancel()
	return s.answerUpdateError(c, s.update(ctx, subID, name, out, args...))
}

// answerUpdateError answers a failed update; true when there was none.
func (s *Server) answerUpdateError(c *gin.Context, err error) bool {
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

// welcome starts the billing workflow of the free subscription that
// store.SignIn gave the user it created, with the first period's credits
// already granted; the workflow renews it monthly. A failure is logged and
// does not fail the request: the credits are there and the user can still
// subscribe.
func (s *Server) welcome(ctx context.Context, u store.User) {
	plan, err := s.billingPlan(ctx, store.FreePlan)
	if err == nil {
		var sub store.Subscription
		if sub, err = s.Store.LiveSubscription(ctx, u.ID); err == nil {
			err = s.StartSubscription(ctx, sub, plan)
		}
	}
	if err != nil {
		s.Log.WarnContext(ctx, "start the free plan of a new user", "user_id", u.ID, "err", err)
	}
}
