package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
)

// A cancel stops a running render within seconds, with the production
// heartbeat timeout (30 s), not when the batch would have ended: a job of
// three images of 30 steps of 100 ms (9 s) canceled during its second
// image ends canceled about a second later, with every credit back.
func TestCancelStopsRenderWithinSeconds(t *testing.T) {
	s := newStackWith(t, 100*time.Millisecond, stackOptions{renderHeartbeat: 30 * time.Second})
	_, token := s.newUser(t, "pro", 100)
	r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{
		"prompt": "slow steps", "model": "sd-1.5", "width": 256, "height": 256, "steps": 30, "batch_size": 3})
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var g api.GenerationView
	r.decode(t, &g)
	if c := s.credits(t, token); c.Held != g.CreditsHeld || c.Available != 100-g.CreditsHeld {
		t.Fatalf("credits while queued = %+v, want %d held", c, g.CreditsHeld)
	}
	// The first image is stored and the second is under way.
	s.waitGeneration(t, g.ID, token, func(g api.GenerationView) bool {
		return g.Progress != nil && g.Progress.Image == 1 && g.Progress.Step >= 2
	})

	canceledAt := time.Now()
	if c := s.do(t, http.MethodDelete, "/v1/generations/"+g.ID, token, nil); c.status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", c.status, c.body)
	}
	g = s.waitGeneration(t, g.ID, token, terminal)
	took := time.Since(canceledAt)
	t.Logf("canceled %.2f s after the cancel was sent", took.Seconds())
	if g.Status != catalog.JobCanceled {
		t.Fatalf("job ended %s, want canceled", g.Status)
	}
	// The render had more than 4 s to go; it must not have run them.
	if took > 3*time.Second {
		t.Errorf("the job ended canceled %.1f s after the cancel, want within 3 s", took.Seconds())
	}
	if g.CreditsSettled == nil || *g.CreditsSettled != 0 || g.ImagesProduced != 0 {
		t.Errorf("canceled job settled %v credits for %d images, want nothing", g.CreditsSettled, g.ImagesProduced)
	}
	if c := s.credits(t, token); c.Available != 100 || c.Held != 0 {
		t.Errorf("credits after cancel = %+v, want all 100 back and nothing held", c)
	}
}

// A cancel sent as a job finishes is either accepted and wins (the job ends
// canceled, nothing charged) or refused with 409 because the job was
// already settled: never accepted and then charged. Cancels are sent at
// moments spread across the end of short renders, so some land before the
// render ends, some between the render and the settle, some after.
func TestCancelAsTheJobFinishes(t *testing.T) {
	s := newStackWith(t, 10*time.Millisecond, stackOptions{})
	u, token := s.newUser(t, "pro", 1000)
	outcomes := map[string]int{}
	for i := range 24 {
		r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{
			"prompt": "a race", "model": "sd-1.5", "width": 256, "height": 256, "steps": 10})
		if r.status != http.StatusAccepted {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		var g api.GenerationView
		r.decode(t, &g)
		s.waitGeneration(t, g.ID, token, func(g api.GenerationView) bool {
			return g.Progress != nil && g.Progress.Step >= 8 || terminal(g)
		})
		time.Sleep(time.Duration(i%8) * 5 * time.Millisecond)
		c := s.do(t, http.MethodDelete, "/v1/generations/"+g.ID, token, nil)
		var answered api.GenerationView
		if c.status == http.StatusAccepted {
			c.decode(t, &answered)
		}
		end := s.waitGeneration(t, g.ID, token, terminal)
		switch {
		case c.status == http.StatusAccepted && (answered.Status == catalog.JobCanceling || answered.Status == catalog.JobCanceled):
			if end.Status != catalog.JobCanceled || end.CreditsSettled == nil || *end.CreditsSettled != 0 {
				t.Fatalf("cancel accepted (%d %s), then the job ended %s with %d credits charged", c.status, answered.Status, end.Status, deref(end.CreditsSettled))
			}
		case c.status == http.StatusConflict:
			if end.Status != catalog.JobCompleted {
				t.Fatalf("cancel refused as too late, but the job ended %s", end.Status)
			}
		default:
			t.Fatalf("cancel answered %d %s", c.status, c.body)
		}
		outcomes[end.Status]++
	}
	t.Logf("outcomes: %v", outcomes)
	s.checkMoney(t, u.ID)
}

func deref(n *int) int {
	if n == nil {
		return -1
	}
	return *n
}
