package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/easel/easel/internal/notify"
	"github.com/easel/easel/internal/store"
)

// The activities here keep the database in step with a subscription
// workflow: its row, its failed charges, refunds, disputes and notices. Each
// is idempotent, so a retry after a commit changes nothing.

// SyncSubscription writes the workflow's state to user_subscriptions.
func (b *Billing) SyncSubscription(ctx context.Context, in store.SubscriptionSync) error {
	err := b.Store.SyncSubscription(ctx, in)
	if errors.Is(err, store.ErrNotFound) {
		// The row or the plan is gone: retrying cannot bring it back.
		return temporal.NewNonRetryableApplicationError(err.Error(), TypeInvalidRequest, err)
	}
	return err
}

// RecordPaymentFailure records a declined or failed charge attempt.
func (b *Billing) RecordPaymentFailure(ctx context.Context, in store.PaymentFailure) error {
	return b.Store.RecordPaymentFailure(ctx, in)
}

// RefundResult is what a refund took back.
type RefundResult struct {
	ClawedBack int
	First      bool
}

// Refund applies a Stripe refund of a whole payment: the payment is marked
// refunded and the unspent credits it bought are clawed back, once. Runs
// that received a refund event before partial refunds were told apart
// schedule this; newer ones schedule RefundPart.
func (b *Billing) Refund(ctx context.Context, paymentIntentID string) (RefundResult, error) {
	return b.RefundPart(ctx, RefundInput{PaymentIntentID: paymentIntentID})
}

// RefundInput is a refund of a payment: RefundedCents is how much of it has
// been refunded in all (the charge's amount_refunded); 0 is all of it.
type RefundInput struct {
	PaymentIntentID string
	RefundedCents   int64
}

// RefundPart applies a Stripe refund, partial or whole: the grant the
// payment bought loses the refunded share of its credits, never more than
// is unspent and not held, once per refunded cent.
func (b *Billing) RefundPart(ctx context.Context, in RefundInput) (RefundResult, error) {
	r, err := b.Store.RefundPayment(ctx, in.PaymentIntentID, in.RefundedCents)
	if err != nil {
		return RefundResult{}, nonRetryableIfMissing(err)
	}
	if r.ClawedBack > 0 && b.Balances != nil {
		// The user is known only once the refund has committed, so the
		// cache is dropped after it rather than bracketed around it.
		if err := b.Balances.Invalidate(ctx, r.UserID); err != nil && b.Log != nil {
			b.Log.WarnContext(ctx, "balance cache", "user_id", r.UserID, "err", err)
		}
	}
	if r.First && b.Log != nil {
		b.Log.InfoContext(ctx, "payment refunded", "payment_intent", in.PaymentIntentID, "user_id", r.UserID,
			"refunded_cents", in.RefundedCents, "whole", r.Whole, "credits_clawed_back", r.ClawedBack)
	}
	return RefundResult{ClawedBack: r.ClawedBack, First: r.First}, nil
}

// Dispute applies a chargeback: the payment is marked disputed, the user is
// suspended (no new generations until support reviews it) and told, once.
func (b *Billing) Dispute(ctx context.Context, paymentIntentID string) error {
	userID, first, err := b.Store.DisputePayment(ctx, paymentIntentID)
	if err != nil {
		return nonRetryableIfMissing(err)
	}
	if _, err := b.Store.SetUserActive(ctx, userID, false); err != nil {
		return fmt.Errorf("suspend user %s after dispute: %w", userID, err)
	}
	if !first {
		return nil
	}
	return b.Notify(ctx, NoticeInput{UserID: userID, Kind: store.NoticeSuspended,
		Subject: "Your Easel account is on hold",
		Body: "A payment on your account was disputed with your bank, so new generations are paused " +
			"until our billing team has reviewed it. Your images stay available.\n"})
}

// NoticeInput is one billing notice to a user.
type NoticeInput struct {
	UserID  string
	Kind    string
	Subject string
	Body    string
}

// Notify records a notice and sends it. A failed delivery is recorded on
// the notice and not retried (retrying would send twice if the first
// attempt did arrive).
func (b *Billing) Notify(ctx context.Context, in NoticeInput) error {
	n, err := b.Store.RecordNotice(ctx, in.UserID, in.Kind)
	if err != nil {
		return nonRetryableIfMissing(err)
	}
	sender := b.Notices
	if sender == nil {
		sender = notify.LogSender{Log: b.Log}
	}
	sendErr := sender.Send(ctx, notify.Notice{To: n.Email, Kind: in.Kind, Subject: in.Subject, Body: in.Body})
	if err := b.Store.MarkNoticeSent(ctx, n.ID, sendErr); err != nil && b.Log != nil {
		b.Log.WarnContext(ctx, "record notice outcome", "notice_id", n.ID, "err", err)
	}
	return nil
}

func nonRetryableIfMissing(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return temporal.NewNonRetryableApplicationError(err.Error(), TypeInvalidRequest, err)
	}
	return err
}

// FallbackInput ends a paid subscription and opens its free successor.
type FallbackInput struct {
	SubscriptionID string
	Status         string // the ended subscription's final status
	FreePlan       string
	PeriodStart    time.Time
	PeriodEnd      time.Time
}

// Fallback ends a subscription and returns the id of the user's free
// subscription that replaces it (created once).
func (b *Billing) Fallback(ctx context.Context, in FallbackInput) (string, error) {
	id, err := b.Store.FallbackSubscription(ctx, in.SubscriptionID, in.Status, in.FreePlan, in.PeriodStart, in.PeriodEnd)
	if err != nil {
		return "", nonRetryableIfMissing(err)
	}
	return id, nil
}
