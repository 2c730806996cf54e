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
