package activities

import (
	"context"
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"
)

// TestCanceledRender: a render its job's cancellation stopped returns a
// benign error (the SDK logs it at debug, not as an ERROR to page on)
// that still unwraps to context.Canceled (the SDK reports the task
// canceled); a render stopped for any other reason returns the context's
// plain error, retried as before.
func TestCanceledRender(t *testing.T) {
	byUser, cancel := context.WithCancelCause(context.Background())
	cancel(temporal.NewCanceledError())
	err := canceled(byUser)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Category() != temporal.ApplicationErrorCategoryBenign || app.Type() != TypeCanceled || !app.NonRetryable() {
		t.Fatalf("canceled by the user: %#v, want a benign, non-retryable %s", err, TypeCanceled)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled by the user: %v does not unwrap to context.Canceled", err)
	}

	shutdown, stop := context.WithCancelCause(context.Background())
	stop(errors.New("worker is shutting down"))
	if err := canceled(shutdown); !errors.Is(err, context.Canceled) || errors.As(err, &app) {
		t.Fatalf("stopped by a shutdown: %#v, want the plain context error", err)
	}
}
