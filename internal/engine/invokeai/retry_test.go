package invokeai

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/testenv"
)

// hosts starts one engine per fake server, each a host of its own with a
// retry listener on one real Redis.
func hosts(t *testing.T, fakes ...*fakeInvoke) []*Engine {
	t.Helper()
	rdb := testenv.Redis(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var es []*Engine
	for _, f := range fakes {
		e := newEngine(t, f, func(c *Config) { c.Redis = rdb })
		if err := e.ListenRetries(ctx); err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	return es
}

func waitCanceled(t *testing.T, it *fakeItem, what string) {
	t.Helper()
	select {
	case <-it.canceled:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s was not canceled", what)
	}
}

func attemptCtx(jobID string, attempt int) context.Context {
	return engine.WithAttempt(WithJobID(context.Background(), jobID), attempt)
}

// A lost attempt (its worker cut off from Temporal) may go on rendering on
// another host: the retry cancels its item there, and not its own.
func TestRetryCancelsLostAttemptOnAnotherHost(t *testing.T) {
	t.Parallel()
	a, b := newFake(t), newFake(t)
	es := hosts(t, a, b)
	jobID := "job-" + uuid.NewString()
	lost := a.addItem(map[string]any{"nodes": map[string]any{}}, jobID, true)
	<-a.started
	if _, _, err := render(t, es[1], attemptCtx(jobID, 2), request(catalog.ModelSD15)); err != nil {
		t.Fatalf("retry on host B: %v", err)
	}
	waitCanceled(t, lost, "the lost attempt's item on host A")
}

// A notice from an attempt older than the one a host renders (a lost
// attempt still enqueueing images) leaves that host's render alone.
func TestStaleRetryNoticeSparesNewerAttempt(t *testing.T) {
	t.Parallel()
	a, b := newFake(t), newFake(t)
	es := hosts(t, a, b)
	jobID, marker := "job-"+uuid.NewString(), "job-"+uuid.NewString()
	ctx, cancel := context.WithCancel(attemptCtx(jobID, 3))
	a.hang = true
	done := make(chan error, 1)
	go func() { _, _, err := render(t, es[0], ctx, request(catalog.ModelSD15)); done <- err }()
	t.Cleanup(func() { cancel(); <-done }) // before the fake server closes
	<-a.started
	markerItem := a.addItem(map[string]any{"nodes": map[string]any{}}, marker, true)
	<-a.started
	// Host B announces attempt 2 of the job, then attempt 2 of the marker:
	// once the marker's item is canceled, host A has handled both notices.
	es[1].announceRetry(context.Background(), jobID, 2)
	es[1].announceRetry(context.Background(), marker, 2)
	waitCanceled(t, markerItem, "the marker item")
	select {
	case err := <-done:
		done <- err
		t.Fatalf("attempt 3 on host A ended after a stale notice: %v", err)
	default:
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, it := range a.items {
		if it.destination == jobID && it.status == "canceled" {
			t.Fatalf("attempt 3's item %d on host A was canceled by attempt 2's notice", it.id)
		}
	}
}
