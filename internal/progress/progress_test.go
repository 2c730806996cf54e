package progress_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/progress"
	"github.com/easel/easel/internal/testenv"
)

func TestPublishWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := testenv.Redis(t)
	hub := progress.NewHub(rdb)
	job := uuid.NewString()

	if err := hub.Publish(ctx, progress.Status{JobID: job, State: catalog.JobRunning, Step: 1, TotalSteps: 4}); err != nil {
		t.Fatal(err)
	}
	ttl, err := rdb.TTL(ctx, progress.StatusKey(job)).Result()
	if err != nil || ttl < 23*time.Hour {
		t.Fatalf("status TTL = %v, %v; want about 24h", ttl, err)
	}
	events, err := hub.Watch(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	first := <-events
	if first.Step != 1 {
		t.Fatalf("first event = %+v, want the stored status", first)
	}
	for _, s := range []progress.Status{
		{JobID: job, State: catalog.JobRunning, Step: 2, TotalSteps: 4},
		{JobID: job, State: catalog.JobCompleted, Progress: 1},
	} {
		if err := hub.Publish(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var got []progress.Status
	for s := range events {
		got = append(got, s)
	}
	if len(got) != 2 || got[0].Step != 2 || got[1].State != catalog.JobCompleted {
		t.Fatalf("events = %+v", got)
	}
	last, ok, err := hub.Get(ctx, job)
	if err != nil || !ok || last.State != catalog.JobCompleted {
		t.Fatalf("Get = %+v %v %v", last, ok, err)
	}
}
