package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/easel/easel/activities"
)

// Checkout is the state of a subscription waiting to start billing.
type Checkout struct {
	// Replaces is the free subscription that ends when this one starts.
	Replaces string
	// ExpiresAt ends a checkout that has no card by then.
	ExpiresAt time.Time
	// CardReady says a payment method is saved (CardReadySignal).
	CardReady bool
}

// CheckoutTTL is how long a checkout waits for its card.
const CheckoutTTL = 24 * time.Hour

// CardReadySignal tells a checkout that the customer's card is saved.
const CardReadySignal = "card_ready"

// awaitCard waits until the checkout's card is saved; a checkout abandoned
// (cancel), whose customer was deleted, or without a card by its expiry
// ends, and the free subscription stays in effect.
func (s *subscription) awaitCard(ctx workflow.Context) (SubscriptionResult, bool, error) {
	s.receiveCard(ctx)
	waiting := func() bool { return s.in.Checkout.CardReady || s.in.CancelAtPeriodEnd || s.customerDeleted }
	d := s.in.Checkout.ExpiresAt.Sub(workflow.Now(ctx))
	if _, err := workflow.AwaitWithTimeout(ctx, max(d, 0), waiting); err != nil {
		return s.result(ctx, s.phase, ""), true, err
	}
	if phase, reason, ends := s.checkoutEnd(); ends {
		res, err := s.end(ctx, phase, reason)
		return res, true, err
	}
	return SubscriptionResult{}, false, nil
}

// receiveCard marks the card ready when CardReadySignal arrives.
func (s *subscription) receiveCard(ctx workflow.Context) {
	ready := workflow.GetSignalChannel(ctx, CardReadySignal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for ready.Receive(ctx, nil) {
			if s.in.Checkout != nil {
				s.in.Checkout.CardReady = true
			}
		}
	})
}

// checkoutEnd says how a checkout whose wait is over ends, if it does: an
// abandon wins over a deleted customer, which wins over the expiry.
func (s *subscription) checkoutEnd() (subscriptionPhase, string, bool) {
	switch {
	case s.in.CancelAtPeriodEnd:
		return phaseCanceled, "checkout abandoned", true
	case s.customerDeleted:
		return phaseCanceled, reasonCustomerDeleted, true
	case !s.in.Checkout.CardReady:
		return phaseExpired, "checkout expired without a card", true
	}
	return s.phase, "", false
}

// activate puts a checkout in effect once it is paid (or its trial began):
// the free subscription it replaces ends in the same transaction, and its
// workflow is stopped.
func (s *subscription) activate(ctx workflow.Context) error {
	co := s.in.Checkout
	if co == nil {
		return nil
	}
	var ended []string
	err := workflow.ExecuteActivity(grantContext(ctx), billingActivity.Activate,
		activities.ActivateInput{SubscriptionID: s.in.SubscriptionID, Status: s.phase.String()}).Get(ctx, &ended)
	if err != nil {
		return fmt.Errorf("activate subscription %s: %w", s.in.SubscriptionID, err)
	}
	if co.Replaces != "" && !slices.Contains(ended, co.Replaces) {
		ended = append(ended, co.Replaces)
	}
	stopReplaced(ctx, ended)
	s.in.Checkout = nil
	return nil
}

// stopReplaced stops the workflows of the free subscriptions a checkout
// replaced. A free workflow already gone is what we want.
func stopReplaced(ctx workflow.Context, ids []string) {
	for _, id := range ids {
		if err := workflow.RequestCancelExternalWorkflow(ctx, SubscriptionID(id), "").Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Info("stop replaced free subscription", "subscription_id", id, "error", err)
		}
	}
}
