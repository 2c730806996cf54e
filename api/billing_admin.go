package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/workflows"
)

// RenewResult says which period the billing team renewed.
type RenewResult struct {
	SubscriptionID string    `json:"subscription_id"`
	PeriodStart    time.Time `json:"renewed_period_start"`
	WorkflowID     string    `json:"workflow_id"`
}

// RenewRequest is the optional body of POST /v1/admin/subscriptions/{id}/renew.
type RenewRequest struct {
	// PeriodStart is the current_period_start the caller saw; a period
	// already renewed is then refused. Without it the current period is
	// renewed, unless a renewal began it within workflows.RenewCooldown.
	PeriodStart *time.Time `json:"period_start,omitempty"`
}

// ErrRenewRefused is a renewal the subscription's workflow refused (already
// renewed, in dunning, canceled); its message says why.
var ErrRenewRefused = errors.New("renewal refused")

// RenewSubscription ends a period of a subscription now: its workflow
// charges and grants the next one. The workflow decides which period that
// is, in the same step that accepts the request, so concurrent or repeated
// requests renew once: period names the period the caller saw (zero: the
// current one, see workflows.RenewNowRequest).
func RenewSubscription(ctx context.Context, tc client.Client, subID string, period time.Time) (RenewResult, error) {
	wid := workflows.SubscriptionID(subID)
	h, err := tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: wid, UpdateName: workflows.RenewNowUpdate,
		Args: []any{workflows.RenewNowRequest{PeriodStart: period}}, WaitForStage: client.WorkflowUpdateStageCompleted})
	var res workflows.RenewNowResult
	if err == nil {
		err = h.Get(ctx, &res)
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return RenewResult{}, fmt.Errorf("%w: %s", ErrRenewRefused, appErr.Message())
	}
	if err != nil {
		return RenewResult{}, fmt.Errorf("renew subscription %s: %w", subID, err)
	}
	return RenewResult{SubscriptionID: subID, PeriodStart: res.PeriodStart, WorkflowID: wid}, nil
}

func (s *Server) adminRenew(c *gin.Context) {
	id := c.Param("id")
	if _, err := uuid.Parse(id); err != nil {
		notFound(c, "subscription")
		return
	}
	var req RenewRequest
	if c.Request.ContentLength != 0 && !s.decodeJSON(c, &req) {
		return
	}
	var period time.Time
	if req.PeriodStart != nil {
		if req.PeriodStart.IsZero() {
			invalid(c, "period_start must be a time", FieldError{Field: "period_start", Message: "zero time"})
			return
		}
		period = *req.PeriodStart
	}
	if _, err := s.Store.GetSubscription(c.Request.Context(), id); errors.Is(err, store.ErrNotFound) {
		notFound(c, "subscription")
		return
	} else if err != nil {
		internalError(c, err)
		return
	}
	ctx, cancel := detached(c, time.Minute)
	defer cancel()
	// One renewal of a subscription at a time from this instance: the
	// workflow decides each exactly once either way, but a burst of
	// concurrent updates to one workflow as it continues as new can keep
	// the server aborting and retrying them all past the deadline (seen
	// under load), while one at a time each is answered in milliseconds.
	unlock, err := s.renewals.lock(ctx, id)
	if err != nil {
		unavailable(c, err)
		return
	}
	defer unlock()
	res, err := RenewSubscription(ctx, s.Temporal, id, period)
	switch {
	case err == nil:
		c.JSON(http.StatusAccepted, res)
	case errors.Is(err, ErrRenewRefused):
		problem(c, http.StatusConflict, "renewal-refused", "Renewal refused", err.Error(), nil)
	case isNotFound(err):
		problem(c, http.StatusConflict, "subscription-not-running", "Subscription not running",
			"this subscription's billing has not started or has ended", nil)
	default:
		unavailable(c, err)
	}
}

func (s *Server) adminBilling(c *gin.Context) {
	sum, err := s.Store.Billing(c.Request.Context(), 50)
	if err != nil {
		internalError(c, err)
		return
	}
	if sum.FailedPayments == nil {
		sum.FailedPayments = []store.FailedPayment{}
	}
	c.JSON(http.StatusOK, sum)
}

// keyedLocks lets one holder per key in at a time; the others wait in turn.
type keyedLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed when its holder unlocks
}

// lock waits until key is free (or ctx ends) and takes it.
func (k *keyedLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	for {
		k.mu.Lock()
		if k.held == nil {
			k.held = map[string]chan struct{}{}
		}
		busy, ok := k.held[key]
		if !ok {
			free := make(chan struct{})
			k.held[key] = free
			k.mu.Unlock()
			return func() {
				k.mu.Lock()
				delete(k.held, key)
				k.mu.Unlock()
				close(free)
			}, nil
		}
		k.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the renewal of %s under way: %w", key, ctx.Err())
		}
	}
}
