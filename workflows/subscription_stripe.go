package workflows

import (
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
)

// StripeEventSignal delivers a verified Stripe webhook event to the
// subscription it concerns.
const StripeEventSignal = "stripe_event"

// Stripe event types a subscription acts on.
const (
	EventPaymentSucceeded = "payment_intent.succeeded"
	EventPaymentFailed    = "payment_intent.payment_failed"
	EventChargeRefunded   = "charge.refunded"
	EventDisputeCreated   = "charge.dispute.created"
	EventCustomerDeleted  = "customer.deleted"
)

// reasonCustomerDeleted is why a subscription whose Stripe customer was
// deleted ended.
const reasonCustomerDeleted = "Stripe customer deleted"

// StripeEvent is the part of a webhook event the workflow needs.
type StripeEvent struct {
	ID              string
	Type            string
	PaymentIntentID string
	// RefundedCents, on charge.refunded, is how much of the charge has been
	// refunded in all; 0 is all of it (and what events delivered before
	// partial refunds were told apart carry).
	RefundedCents int64 `json:",omitempty"`
}

// listen applies Stripe events as they arrive, in a coroutine of their own
// so that a refund is applied while the workflow sleeps to the period end.
func (s *subscription) listen(ctx workflow.Context) {
	s.events = workflow.GetSignalChannel(ctx, StripeEventSignal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var ev StripeEvent
			s.events.Receive(ctx, &ev)
			s.handling++
			s.apply(ctx, ev)
			s.handling--
		}
	})
}

// apply acts on one event. Refunds and disputes change money, so their
// activities retry until they succeed; a customer deletion ends the
// subscription without another charge. Payment events only confirm what
// the Charge activity already returned, so they are logged.
func (s *subscription) apply(ctx workflow.Context, ev StripeEvent) {
	log := workflow.GetLogger(ctx)
	var err error
	switch ev.Type {
	case EventChargeRefunded:
		err = s.refund(ctx, ev)
	case EventDisputeCreated:
		err = workflow.ExecuteActivity(grantContext(ctx), billingActivity.Dispute, ev.PaymentIntentID).Get(ctx, nil)
	case EventCustomerDeleted:
		s.customerDeleted = true
	default:
		log.Info("stripe event", "event", ev.ID, "type", ev.Type, "payment_intent", ev.PaymentIntentID)
	}
	if err != nil {
		// Only a non-retryable error gets here (the payment is unknown):
		// nothing this workflow can do changes it.
		log.Error("stripe event not applied", "event", ev.ID, "type", ev.Type, "error", err)
	}
}

func (s *subscription) refund(ctx workflow.Context, ev StripeEvent) error {
	var res activities.RefundResult
	var f workflow.Future
	if ev.RefundedCents > 0 {
		f = workflow.ExecuteActivity(grantContext(ctx), billingActivity.RefundPart,
			activities.RefundInput{PaymentIntentID: ev.PaymentIntentID, RefundedCents: ev.RefundedCents})
	} else {
		// A whole refund keeps the activity it always had, so runs that
		// received one before partial refunds existed replay unchanged.
		f = workflow.ExecuteActivity(grantContext(ctx), billingActivity.Refund, ev.PaymentIntentID)
	}
	err := f.Get(ctx, &res)
	if err == nil {
		workflow.GetLogger(ctx).Info("refund applied", "event", ev.ID, "payment_intent", ev.PaymentIntentID, "clawed_back", res.ClawedBack)
	}
	return err
}

// settle waits until every accepted update and every received event is
// applied, so a continue-as-new or an end loses none of them.
func (s *subscription) settle(ctx workflow.Context) error {
	for {
		if err := workflow.Await(ctx, func() bool {
			return s.handling == 0 && workflow.AllHandlersFinished(ctx)
		}); err != nil {
			return err
		}
		var ev StripeEvent
		if !s.events.ReceiveAsync(&ev) {
			return nil
		}
		s.apply(ctx, ev)
	}
}

// sync writes the workflow's state to user_subscriptions. The row is a
// view of the workflow, so a failure is logged rather than failing the
// subscription: the next sync writes the whole state again.
func (s *subscription) sync(ctx workflow.Context) {
	s.syncEnded(ctx, false)
}

func (s *subscription) syncEnded(ctx workflow.Context, ended bool) {
	if err := workflow.ExecuteActivity(bookkeepingContext(ctx), billingActivity.SyncSubscription, s.row(ended)).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("sync subscription row", "subscription_id", s.in.SubscriptionID, "error", err)
	}
}

// row is the subscription's user_subscriptions row.
func (s *subscription) row(ended bool) store.SubscriptionSync {
	in := store.SubscriptionSync{ID: s.in.SubscriptionID, Plan: s.in.Plan.Slug, Status: s.phase.String(),
		PeriodStart: s.in.PeriodStart, PeriodEnd: s.in.PeriodEnd, TrialEnd: s.in.TrialEnd,
		CancelAtPeriodEnd: s.in.CancelAtPeriodEnd, Ended: ended}
	if s.in.PendingPlan != nil {
		in.PendingPlan = s.in.PendingPlan.Slug
	}
	return in
}

// notify sends a notice to the user; a failure is logged.
func (s *subscription) notify(ctx workflow.Context, in activities.NoticeInput) {
	if err := workflow.ExecuteActivity(bookkeepingContext(ctx), billingActivity.Notify, in).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("notify user", "user_id", in.UserID, "kind", in.Kind, "error", err)
	}
}

// end closes the subscription in phase: its row is marked ended and, when
// a fallback plan is set, a free subscription takes over in a workflow of
// its own that outlives this one.
func (s *subscription) end(ctx workflow.Context, phase subscriptionPhase, reason string) (SubscriptionResult, error) {
	res := s.result(ctx, phase, reason)
	if err := s.settle(ctx); err != nil {
		return res, err
	}
	fb := s.in.FallbackPlan
	if fb == nil || fb.Slug == s.in.Plan.Slug || s.inCheckout() {
		// A checkout was never in effect: the free subscription still is.
		s.syncEnded(ctx, true)
		return res, nil
	}
	successor, err := s.fallBack(ctx, phase, fb)
	if err != nil {
		return res, err
	}
	res.Successor = successor
	return res, nil
}

// fallBack moves the user to the fallback plan: the Fallback activity ends
// the row and creates the free subscription's (once), then its workflow
// starts. It returns the free subscription's id.
func (s *subscription) fallBack(ctx workflow.Context, phase subscriptionPhase, fb *SubscriptionPlan) (string, error) {
	next := s.successorInput(ctx, fb)
	err := workflow.ExecuteActivity(grantContext(ctx), billingActivity.Fallback, activities.FallbackInput{
		SubscriptionID: s.in.SubscriptionID, Status: phase.String(), FreePlan: fb.Slug,
		PeriodStart: next.PeriodStart, PeriodEnd: next.PeriodEnd}).Get(ctx, &next.SubscriptionID)
	if err != nil {
		return "", fmt.Errorf("move subscription %s to %s: %w", s.in.SubscriptionID, fb.Slug, err)
	}
	if err := startSuccessor(ctx, next); err != nil {
		return "", err
	}
	return next.SubscriptionID, nil
}

// successorInput starts the free subscription now; without the Stripe
// customer, which is gone when its deletion ended this one.
func (s *subscription) successorInput(ctx workflow.Context, fb *SubscriptionPlan) SubscriptionInput {
	now := workflow.Now(ctx)
	next := SubscriptionInput{UserID: s.in.UserID, CustomerID: s.in.CustomerID, Plan: *fb,
		PeriodStart: now, PeriodEnd: addMonths(now, 1), Anchor: now, FallbackPlan: fb}
	if s.customerDeleted {
		next.CustomerID = ""
	}
	return next
}

// startSuccessor starts the free subscription as an abandoned child, so it
// keeps running after this workflow closes. A child already started (this
// workflow task retried) is success.
func startSuccessor(ctx workflow.Context, in SubscriptionInput) error {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            SubscriptionID(in.SubscriptionID),
		TaskQueue:             catalog.ControlQueue,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(SearchUserID.ValueSet(in.UserID), SearchPlan.ValueSet(in.Plan.Slug)),
	})
	err := workflow.ExecuteChildWorkflow(cctx, SubscriptionWorkflow, in).GetChildWorkflowExecution().Get(ctx, nil)
	var started *temporal.ChildWorkflowExecutionAlreadyStartedError
	if err != nil && !errors.As(err, &started) {
		return fmt.Errorf("start free subscription %s: %w", in.SubscriptionID, err)
	}
	return nil
}
