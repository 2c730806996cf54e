package activities

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

// TestLedgerDataErrorIsFinal: a value Postgres refuses (a NUL in a prompt
// stored in jsonb) fails Admit at once with a non-retryable InvalidRequest
// instead of a retryable error the workflow would retry for an hour; and an
// abort whose reason holds such text still releases the hold.
func TestLedgerDataErrorIsFinal(t *testing.T) {
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u, err := s.UpsertUser(ctx, uuid.NewString()+"@example.com", "ledger", "sub-"+uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Grant(ctx, store.GrantInput{UserID: u.ID, Amount: 100, Source: "test",
		ValidFrom: time.Now().Add(-time.Hour), ValidUntil: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	l := &Ledger{Store: s}
	admit := func(prompt string) (AdmitResult, error) {
		id := uuid.NewString()
		return l.Admit(ctx, AdmitInput{JobID: id, UserID: u.ID, RequestHash: "h", WorkflowID: "generation/" + id,
			Plan: "pro", GPUTier: "a10g", Credits: 5, MaxConcurrent: 4,
			Params: Params{Prompt: prompt, Model: "sd-1.5", Width: 64, Height: 64, Steps: 1, BatchSize: 1}})
	}
	_, err = admit("a\x00b")
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != TypeInvalidRequest {
		t.Fatalf("admit with a NUL: %v, want a non-retryable %s", err, TypeInvalidRequest)
	}
	if b, err := s.Balance(ctx, u.ID); err != nil || b.Available != 100 || b.Held != 0 {
		t.Fatalf("refused admit moved credits: %+v (%v)", b, err)
	}
	ok, err := admit("fine")
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Abort(ctx, AbortInput{JobID: ok.JobID, UserID: u.ID, Status: catalog.JobFailed,
		Reason: "engine said \x00 and \xff", BatchSize: 1})
	if err != nil || res.HoldStatus != store.HoldVoided {
		t.Fatalf("abort with odd text in its reason: %+v %v", res, err)
	}
}
