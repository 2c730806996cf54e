package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/store"
)

// SubscriptionWorkflow is the workflow type name the workers register
// Subscription under.
const SubscriptionWorkflow = "Subscription"

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

// StripeEvent is the part of a webhook event the workflow needs.
type StripeEvent struct {
	ID              string
	Type            string
	PaymentIntentID string
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
		var res activities.RefundResult
		err = workflow.ExecuteActivity(grantContext(ctx), billingActivity.Refund, ev.PaymentIntentID).Get(ctx, &res)
		if err == nil {
			log.Info("refund applied", "event", ev.ID, "payment_intent", ev.PaymentIntentID, "clawed_back", res.ClawedBack)
		}
	case EventDisputeCreated:
		err = workflow.ExecuteActivity(grantContext(ctx), billingActivity.Dispute, ev.PaymentIntentID).Get(ctx, nil)
	case EventCustomerDeleted:
		s.endNow, s.endReason = true, "Stripe customer deleted"
	default:
		log.Info("stripe event", "event", ev.ID, "type", ev.Type, "payment_intent", ev.PaymentIntentID)
	}
	if err != nil {
		// Only a non-retryable error gets here (the payment is unknown):
		// nothing this workflow can do changes it.
		log.Error("stripe event not applied", "event", ev.ID, "type", ev.Type, "error", err)
	}
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

// searchable sets the run's search attributes, so every subscription is
// found in Temporal UI by user and current plan.
func (s *subscription) searchable(ctx workflow.Context) error {
	err := workflow.UpsertTypedSearchAttributes(ctx, SearchUserID.ValueSet(s.in.UserID), SearchPlan.ValueSet(s.in.Plan.Slug))
	if err != nil {
		return fmt.Errorf("set search attributes: %w", err)
	}
	return nil
}

// sync writes the workflow's state to user_subscriptions. The row is a
// view of the workflow, so a failure is logged rather than failing the
// subscription: the next sync writes the whole state again.
func (s *subscription) sync(ctx workflow.Context) {
	s.syncEnded(ctx, false)
}

func (s *subscription) syncEnded(ctx workflow.Context, ended bool) {
	if !s.in.Synced {
		return
	}
	in := store.SubscriptionSync{ID: s.in.SubscriptionID, Plan: s.in.Plan.Slug, Status: s.status,
		PeriodStart: s.in.PeriodStart, PeriodEnd: s.in.PeriodEnd, TrialEnd: s.in.TrialEnd,
		CancelAtPeriodEnd: s.in.CancelAtPeriodEnd, Ended: ended}
	if s.in.PendingPlan != nil {
		in.PendingPlan = s.in.PendingPlan.Slug
	}
	if err := workflow.ExecuteActivity(bookkeepingContext(ctx), billingActivity.SyncSubscription, in).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("sync subscription row", "subscription_id", s.in.SubscriptionID, "error", err)
	}
}

// notify sends a notice to the user; a failure is logged.
func (s *subscription) notify(ctx workflow.Context, in activities.NoticeInput) {
	if !s.in.Synced {
		return
	}
	if err := workflow.ExecuteActivity(bookkeepingContext(ctx), billingActivity.Notify, in).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("notify user", "user_id", in.UserID, "kind", in.Kind, "error", err)
	}
}

// afterDecline records a failed attempt for the billing team, tells the
// user on the first one, and shows the subscription as past due.
func (s *subscription) afterDecline(ctx workflow.Context, key string) {
	if !s.in.Synced {
		return
	}
	last := s.in.Charges[len(s.in.Charges)-1]
	f := store.PaymentFailure{UserID: s.in.UserID, SubscriptionID: s.in.SubscriptionID, IdempotencyKey: key,
		PaymentIntentID: last.PaymentIntentID, AmountCents: last.AmountCents, Code: last.Code}
	if err := workflow.ExecuteActivity(bookkeepingContext(ctx), billingActivity.RecordPaymentFailure, f).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("record payment failure", "key", key, "error", err)
	}
	if s.in.DunningAttempt == 1 {
		s.notify(ctx, activities.NoticeInput{UserID: s.in.UserID, Kind: store.NoticePaymentFailed,
			Subject: "We could not charge your card",
			Body: fmt.Sprintf("The payment for your %s plan was declined. We will try again in %d, %d and %d days; "+
				"update your card before then to keep your plan.\n", s.in.Plan.Slug,
				int(DunningSchedule[0].Hours()/24), int(DunningSchedule[1].Hours()/24), int(DunningSchedule[2].Hours()/24))})
	}
	s.sync(ctx)
}

// end closes the subscription: its row is marked ended with status and,
// when a fallback plan is set, a free subscription takes over in a workflow
// of its own that outlives this one.
func (s *subscription) end(ctx workflow.Context, status, reason string) (SubscriptionResult, error) {
	res := s.result(ctx, status, reason)
	if err := s.settle(ctx); err != nil {
		return res, err
	}
	fb := s.in.FallbackPlan
	if !s.in.Synced || fb == nil || fb.Slug == s.in.Plan.Slug || s.in.Checkout != nil {
		// A checkout was never in effect: the free subscription still is.
		s.syncEnded(ctx, true)
		return res, nil
	}
	now := workflow.Now(ctx)
	next := SubscriptionInput{UserID: s.in.UserID, CustomerID: s.in.CustomerID, Plan: *fb,
		PeriodStart: now, PeriodEnd: addMonths(now, 1), Anchor: now, FallbackPlan: fb, Synced: true}
	if s.endNow {
		next.CustomerID = ""
	}
	err := workflow.ExecuteActivity(grantContext(ctx), billingActivity.Fallback, activities.FallbackInput{
		SubscriptionID: s.in.SubscriptionID, Status: status, FreePlan: fb.Slug,
		PeriodStart: next.PeriodStart, PeriodEnd: next.PeriodEnd}).Get(ctx, &next.SubscriptionID)
	if err != nil {
		return res, fmt.Errorf("move subscription %s to %s: %w", s.in.SubscriptionID, fb.Slug, err)
	}
	if err := startSuccessor(ctx, next); err != nil {
		return res, err
	}
	res.Successor = next.SubscriptionID
	return res, nil
}

// startSuccessor starts the free subscription as an abandoned child, so it
// keeps running after this workflow closes. A child already started (this
// workflow task retried) is success.
func startSuccessor(ctx workflow.Context, in SubscriptionInput) error {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            SubscriptionID(in.SubscriptionID),
		TaskQueue:             ControlQueue,
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

// bookkeepingContext runs the database writes that mirror the workflow: a
// few quick retries, since the next write repeats the whole state.
func bookkeepingContext(ctx workflow.Context) workflow.Context {
	return controlContext(ctx, time.Minute, 10)
}

// awaitCard waits until the checkout's card is saved; a checkout abandoned
// (cancel), whose customer was deleted, or without a card by its expiry
// ends, and the free subscription stays in effect.
func (s *subscription) awaitCard(ctx workflow.Context) (SubscriptionResult, bool, error) {
	ready := workflow.GetSignalChannel(ctx, CardReadySignal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for ready.Receive(ctx, nil) {
			if s.in.Checkout != nil {
				s.in.Checkout.CardReady = true
			}
		}
	})
	waiting := func() bool { return s.in.Checkout.CardReady || s.in.CancelAtPeriodEnd || s.endNow }
	d := s.in.Checkout.ExpiresAt.Sub(workflow.Now(ctx))
	if _, err := workflow.AwaitWithTimeout(ctx, max(d, 0), waiting); err != nil {
		return s.result(ctx, s.status, ""), true, err
	}
	switch {
	case s.in.CancelAtPeriodEnd:
		res, err := s.end(ctx, SubCanceled, "checkout abandoned")
		return res, true, err
	case s.endNow:
		res, err := s.end(ctx, SubCanceled, s.endReason)
		return res, true, err
	case !s.in.Checkout.CardReady:
		res, err := s.end(ctx, SubExpired, "checkout expired without a card")
		return res, true, err
	}
	return SubscriptionResult{}, false, nil
}

// activate puts a checkout in effect once it is paid (or its trial began):
// the free subscription it replaces ends in the same transaction, and its
// workflow is stopped.
func (s *subscription) activate(ctx workflow.Context) error {
	co := s.in.Checkout
	if co == nil {
		return nil
	}
	if s.in.Synced {
		var ended []string
		err := workflow.ExecuteActivity(grantContext(ctx), billingActivity.Activate,
			activities.ActivateInput{SubscriptionID: s.in.SubscriptionID, Status: s.status}).Get(ctx, &ended)
		if err != nil {
			return fmt.Errorf("activate subscription %s: %w", s.in.SubscriptionID, err)
		}
		if co.Replaces != "" && !slices.Contains(ended, co.Replaces) {
			ended = append(ended, co.Replaces)
		}
		for _, id := range ended {
			// A free workflow already gone is what we want.
			if err := workflow.RequestCancelExternalWorkflow(ctx, SubscriptionID(id), "").Get(ctx, nil); err != nil {
				workflow.GetLogger(ctx).Info("stop replaced free subscription", "subscription_id", id, "error", err)
			}
		}
	}
	s.in.Checkout = nil
	return nil
}
