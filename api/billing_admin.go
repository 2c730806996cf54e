package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/easel/easel/store"
	"github.com/easel/easel/workflows"
)

// RenewResult says which period the billing team renewed.
type RenewResult struct {
	SubscriptionID string    `json:"subscription_id"`
	PeriodStart    time.Time `json:"renewed_period_start"`
	WorkflowID     string    `json:"workflow_id"`
}

// ErrRenewRefused is a renewal the subscription's workflow refused (already
// renewed, in dunning, canceled); its message says why.
var ErrRenewRefused = errors.New("renewal refused")

// RenewSubscription ends the current period of a subscription now: its
// workflow charges and grants the next one. The update names the period, so
// a retried request for the same period is refused instead of charging twice.
func RenewSubscription(ctx context.Context, tc client.Client, subID string) (RenewResult, error) {
	wid := workflows.SubscriptionID(subID)
	v, err := tc.QueryWorkflow(ctx, wid, "", workflows.StateQuery)
	var st workflows.SubscriptionState
	if err == nil {
		err = v.Get(&st)
	}
	if err != nil {
		return RenewResult{}, fmt.Errorf("read subscription %s: %w", subID, err)
	}
	h, err := tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: wid, UpdateName: workflows.RenewNowUpdate,
		Args: []any{workflows.RenewNowRequest{PeriodStart: st.PeriodStart}}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return RenewResult{}, fmt.Errorf("%w: %s", ErrRenewRefused, appErr.Message())
	}
	if err != nil {
		return RenewResult{}, fmt.Errorf("renew subscription %s: %w", subID, err)
	}
	return RenewResult{SubscriptionID: subID, PeriodStart: st.PeriodStart, WorkflowID: wid}, nil
}

func (s *Server) adminRenew(c *gin.Context) {
	id := c.Param("id")
	if _, err := uuid.Parse(id); err != nil {
		notFound(c, "subscription")
		return
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
	res, err := RenewSubscription(ctx, s.Temporal, id)
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
