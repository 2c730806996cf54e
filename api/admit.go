package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/temporal"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/workflows"
)

// defaultAdmitTimeout bounds the API's wait on a generation's admit update
// when Server.AdmitTimeout is unset. Admission is one short Postgres
// transaction; a wait this long means the control plane is stuck.
const defaultAdmitTimeout = 30 * time.Second

// errAdmitTimeout marks an admission that did not answer in time.
var errAdmitTimeout = errors.New("admission did not answer in time")

// admitWithin runs admit under the admission deadline. Past it the error
// wraps errAdmitTimeout and the cause is logged with what Temporal says of
// the workflow, so an operator can find why.
func (s *Server) admitWithin(ctx context.Context, in workflows.GenerationInput) (admission, error) {
	d := s.AdmitTimeout
	if d <= 0 {
		d = defaultAdmitTimeout
	}
	actx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	r, err := s.admit(actx, in)
	// The server may give up on the deadline it was sent a moment before
	// the client's own context expires: its DeadlineExceeded is the same
	// timeout.
	if err == nil || ctx.Err() != nil || (actx.Err() == nil && !deadlineExceeded(err)) {
		return r, err
	}
	attrs := []any{"job_id", in.JobID, "workflow_id", workflows.GenerationID(in.JobID), "timeout", d, "err", err}
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer dcancel()
	if desc, derr := s.Temporal.DescribeWorkflowExecution(dctx, workflows.GenerationID(in.JobID), ""); derr != nil {
		attrs = append(attrs, "describe_err", derr)
	} else if info := desc.GetWorkflowExecutionInfo(); info != nil {
		attrs = append(attrs, "workflow_status", info.GetStatus().String(), "history_length", info.GetHistoryLength(),
			"pending_activities", len(desc.GetPendingActivities()))
	}
	s.Log.WarnContext(ctx, "generation admission timed out", attrs...)
	return r, fmt.Errorf("%w after %s: %w", errAdmitTimeout, d, err)
}

// admitInputError answers an admission refused for its input (400) or not
// answered in time (503 with Retry-After); false leaves err to admitError.
func (s *Server) admitInputError(c *gin.Context, err error, plan string) bool {
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &appErr) && appErr.Type() == activities.TypeInvalidRequest:
		admissions.WithLabelValues("invalid", plan).Inc()
		_ = c.Error(err)
		invalid(c, "the request holds a value that cannot be stored: "+appErr.Message())
	case errors.Is(err, errAdmitTimeout):
		admissions.WithLabelValues("timeout", plan).Inc()
		_ = c.Error(err)
		c.Header("Retry-After", strconv.Itoa(5))
		problem(c, http.StatusServiceUnavailable, "admission-timeout", "Admission timed out",
			"the job was not admitted in time; retry with the same Idempotency-Key", nil)
	default:
		return false
	}
	return true
}

// deadlineExceeded reports whether err is a deadline that passed, as the
// client or the Temporal server saw it.
func deadlineExceeded(err error) bool {
	var server *serviceerror.DeadlineExceeded
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &server) ||
		status.Code(err) == codes.DeadlineExceeded
}
