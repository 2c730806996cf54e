package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

func admitJob(t *testing.T, s *store.Store, userID string, credits, batch int) store.Generation {
	t.Helper()
	id := uuid.NewString()
	g, err := s.Admit(context.Background(), store.AdmitInput{MaxConcurrent: 4, Generation: store.Generation{
		ID: id, UserID: userID, RequestHash: "h", WorkflowID: "generation/" + id, Model: "sdxl",
		Params: json.RawMessage(`{"prompt":"p","model":"sdxl"}`), Plan: "pro", GPUTier: "a10g",
		BatchSize: batch, CreditsHeld: credits}})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// Finalize records images, settles and writes usage once, however often it runs.
func TestFinalizeIsAtomicAndIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	grant(t, s, u.ID, 20, time.Hour)
	g := admitJob(t, s, u.ID, 8, 4)
	if g.Status != catalog.JobQueued || g.CreditsHeld != 8 {
		t.Fatalf("admitted %+v", g)
	}
	in := store.FinalizeInput{JobID: g.ID, UserID: u.ID, Credits: 4, ComputeSeconds: 1.5, Model: "sdxl",
		GPUTier: "a10g", Steps: 30, Width: 1024, Height: 1024, BatchSize: 4, Images: []store.ImageRecord{
			{Name: g.ID + "_0", Key: "k0", ThumbnailKey: "t0", Width: 1024, Height: 1024, Bytes: 10, Seed: 7},
			{Name: g.ID + "_1", Key: "k1", ThumbnailKey: "t1", Width: 1024, Height: 1024, Bytes: 10, Seed: 8},
		}}
	for range 3 {
		if g, err := s.Finalize(ctx, in); err != nil || g.Status != catalog.JobCompleted || *g.CreditsSettled != 4 {
			t.Fatalf("finalize: %+v %v", g, err)
		}
	}
	imgs, err := s.JobImages(ctx, u.ID, g.ID)
	if err != nil || len(imgs) != 2 {
		t.Fatalf("images: %d %v", len(imgs), err)
	}
	var meta struct{ Seed int }
	_ = json.Unmarshal(imgs[1].Metadata, &meta)
	if meta.Seed != 8 {
		t.Fatalf("image metadata %s", imgs[1].Metadata)
	}
	var usage, consumed int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*), COALESCE(SUM(credits_consumed),0) FROM usage_records WHERE job_id = $1`, g.ID).Scan(&usage, &consumed); err != nil {
		t.Fatal(err)
	}
	if usage != 1 || consumed != 4 {
		t.Fatalf("usage rows %d consuming %d", usage, consumed)
	}
	if b := balance(t, s, u.ID); b.Available != 16 || b.Held != 0 {
		t.Fatalf("balance %+v, want 16", b)
	}
	// An abort after completion changes nothing.
	if h, err := s.Abort(ctx, g.ID, catalog.JobCanceled, "late"); err != nil || h.Status != store.HoldPosted {
		t.Fatalf("late abort: %+v %v", h, err)
	}
	if got, _ := s.GetGeneration(ctx, u.ID, g.ID); got.Status != catalog.JobCompleted {
		t.Fatalf("late abort changed status to %s", got.Status)
	}
}

// A cancel and a settle meet at the job's row: a job marked canceling is
// not settled (the workflow then releases it), and a cancel marked after
// the settle leaves the job completed, which the API answers as too late.
func TestCancelAndSettleMeetAtTheRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	grant(t, s, u.ID, 20, time.Hour)
	img := func(g store.Generation) []store.ImageRecord {
		return []store.ImageRecord{{Name: g.ID + "_0", Key: "k", ThumbnailKey: "t", Width: 64, Height: 64, Bytes: 10}}
	}

	first := admitJob(t, s, u.ID, 4, 1)
	if g, err := s.MarkCanceling(ctx, u.ID, first.ID); err != nil || g.Status != catalog.JobCanceling {
		t.Fatalf("mark canceling: %+v %v", g, err)
	}
	if _, err := s.Finalize(ctx, store.FinalizeInput{JobID: first.ID, UserID: u.ID, Credits: 4, Images: img(first)}); !errors.Is(err, store.ErrCancelRequested) {
		t.Fatalf("finalize of a job marked canceling: %v", err)
	}
	if imgs, _ := s.JobImages(ctx, u.ID, first.ID); len(imgs) != 0 {
		t.Fatalf("images recorded for a canceled job: %d", len(imgs))
	}
	if b := balance(t, s, u.ID); b.Held != 4 || b.Available != 16 {
		t.Fatalf("balance after the refused settle: %+v, want the hold untouched", b)
	}
	if h, err := s.Abort(ctx, first.ID, catalog.JobCanceled, "canceled by user"); err != nil || h.Status != store.HoldVoided {
		t.Fatalf("abort: %+v %v", h, err)
	}
	if b := balance(t, s, u.ID); b.Held != 0 || b.Available != 20 {
		t.Fatalf("balance after the cancel: %+v, want every credit back", b)
	}

	second := admitJob(t, s, u.ID, 4, 1)
	if _, err := s.Finalize(ctx, store.FinalizeInput{JobID: second.ID, UserID: u.ID, Credits: 4, Images: img(second)}); err != nil {
		t.Fatal(err)
	}
	if g, err := s.MarkCanceling(ctx, u.ID, second.ID); err != nil || g.Status != catalog.JobCompleted {
		t.Fatalf("a cancel after the settle: %+v %v; want the job completed", g, err)
	}
}

func TestAbortReleases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	grant(t, s, u.ID, 20, time.Hour)
	g := admitJob(t, s, u.ID, 8, 1)
	for range 2 {
		if h, err := s.Abort(ctx, g.ID, catalog.JobFailed, "gpu on fire"); err != nil || h.Status != store.HoldVoided {
			t.Fatalf("abort: %+v %v", h, err)
		}
	}
	got, err := s.GetGeneration(ctx, u.ID, g.ID)
	if err != nil || got.Status != catalog.JobFailed || got.Error != "gpu on fire" || *got.CreditsSettled != 0 {
		t.Fatalf("after abort %+v %v", got, err)
	}
	if b := balance(t, s, u.ID); b.Available != 20 {
		t.Fatalf("balance %+v, want 20", b)
	}
	// A settle racing in after the abort is refused.
	if _, err := s.Finalize(ctx, store.FinalizeInput{JobID: g.ID, UserID: u.ID, Credits: 8}); !errors.Is(err, store.ErrHoldVoided) {
		t.Fatalf("finalize after abort: %v", err)
	}
	// Another user cannot see the job.
	other := newUser(t, s)
	if _, err := s.GetGeneration(ctx, other.ID, g.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other user read the job: %v", err)
	}
}
