package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/store"
)

// deliveryHarness runs WebhookDelivery with a mocked attempt activity that
// answers outcome(n) for the n-th attempt, and records when each ran.
type deliveryHarness struct {
	testsuite.WorkflowTestSuite
	env      *testsuite.TestWorkflowEnvironment
	start    time.Time
	attempts []time.Duration // since the start
	numbers  []int
	gaveUp   []string
}

func newDeliveryHarness(outcome func(n int) activities.WebhookAttemptResult) *deliveryHarness {
	h := &deliveryHarness{start: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	h.env = h.NewTestWorkflowEnvironment()
	h.env.SetStartTime(h.start)
	h.env.RegisterWorkflow(WebhookDelivery)
	h.env.RegisterActivity(&activities.Webhooks{})
	h.env.OnActivity(webhookActivity.AttemptWebhookDelivery, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.WebhookAttemptInput) (activities.WebhookAttemptResult, error) {
			h.attempts = append(h.attempts, h.env.Now().Sub(h.start))
			h.numbers = append(h.numbers, in.Attempt)
			return outcome(len(h.attempts)), nil
		})
	h.env.OnActivity(webhookActivity.GiveUpWebhookDelivery, mock.Anything, mock.Anything).Return(
		func(_ context.Context, id string) error {
			h.gaveUp = append(h.gaveUp, id)
			return nil
		})
	return h
}

func (h *deliveryHarness) run(t *testing.T) WebhookDeliveryResult {
	t.Helper()
	h.env.ExecuteWorkflow(WebhookDelivery, WebhookDeliveryInput{DeliveryID: "d-1"})
	if !h.env.IsWorkflowCompleted() {
		t.Fatal("delivery did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var r WebhookDeliveryResult
	if err := h.env.GetWorkflowResult(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

var failed = activities.WebhookAttemptResult{StatusCode: 500, Error: "the receiver answered 500"}

// A receiver that fails three times gets the fourth attempt after 30 s,
// 1 min and 2 min of backoff, each attempt numbered.
func TestWebhookDeliveryRetriesWithBackoffUntilDelivered(t *testing.T) {
	h := newDeliveryHarness(func(n int) activities.WebhookAttemptResult {
		if n <= 3 {
			return failed
		}
		return activities.WebhookAttemptResult{Delivered: true, StatusCode: 200}
	})
	r := h.run(t)
	if r.Status != store.WebhookDelivered || r.Attempts != 4 || len(h.gaveUp) != 0 {
		t.Fatalf("result %+v, gave up %v", r, h.gaveUp)
	}
	want := []time.Duration{0, 30 * time.Second, 90 * time.Second, 210 * time.Second}
	for i, at := range h.attempts {
		if at != want[i] || h.numbers[i] != i+1 {
			t.Fatalf("attempts at %v numbered %v, want at %v numbered 1..4", h.attempts, h.numbers, want)
		}
	}
}

// A receiver down for good is retried over simulated days, never more than
// 6 h apart, and given up once the next attempt would fall past 3 days.
func TestWebhookDeliveryGivesUpAfterThreeDays(t *testing.T) {
	h := newDeliveryHarness(func(int) activities.WebhookAttemptResult { return failed })
	r := h.run(t)
	if r.Status != store.WebhookFailed || len(h.gaveUp) != 1 || h.gaveUp[0] != "d-1" {
		t.Fatalf("result %+v, gave up %v", r, h.gaveUp)
	}
	last := h.attempts[len(h.attempts)-1]
	if last > WebhookRetryWindow || last < WebhookRetryWindow-WebhookMaxInterval {
		t.Fatalf("last attempt at %v, want within the last 6 h of 72 h", last)
	}
	var prev time.Duration
	for i := 1; i < len(h.attempts); i++ {
		gap := h.attempts[i] - h.attempts[i-1]
		if gap > WebhookMaxInterval || gap < prev {
			t.Fatalf("attempt %d came %v after the one before (attempts at %v)", i+1, gap, h.attempts)
		}
		prev = gap
	}
	// 30 s doubling reaches 6 h at the 11th wait (8.5 h in); then every 6 h.
	if n := len(h.attempts); n != r.Attempts || n < 18 || n > 24 {
		t.Fatalf("%d attempts over 3 days (%v)", n, h.attempts)
	}
}

// An endpoint deleted while its delivery waits ends the delivery.
func TestWebhookDeliveryStopsWhenTheEndpointIsGone(t *testing.T) {
	h := newDeliveryHarness(func(n int) activities.WebhookAttemptResult {
		if n == 1 {
			return failed
		}
		return activities.WebhookAttemptResult{Gone: true}
	})
	if r := h.run(t); r.Status != WebhookGone || len(h.attempts) != 2 || len(h.gaveUp) != 0 {
		t.Fatalf("result %+v after %d attempts, gave up %v", r, len(h.attempts), h.gaveUp)
	}
}

// A URL refused outright (https required, a private address) is not
// retried for three days.
func TestWebhookDeliveryGivesUpOnARefusedURL(t *testing.T) {
	h := newDeliveryHarness(func(int) activities.WebhookAttemptResult {
		return activities.WebhookAttemptResult{Final: true, Error: "refused: the URL must use https"}
	})
	if r := h.run(t); r.Status != store.WebhookFailed || len(h.attempts) != 1 || len(h.gaveUp) != 1 {
		t.Fatalf("result %+v after %d attempts", r, len(h.attempts))
	}
}

func TestWebhookRetryDelay(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute,
		10: 256 * time.Minute, 11: 6 * time.Hour, 40: 6 * time.Hour} {
		if got := WebhookRetryDelay(0, n); got != want {
			t.Errorf("delay after failure %d = %v, want %v", n, got, want)
		}
	}
	if got := WebhookRetryDelay(100*time.Millisecond, 2); got != 200*time.Millisecond {
		t.Errorf("a shortened schedule: %v", got)
	}
}
