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

// Many watchers of several jobs share one subscription per job (Redis
// counts one subscriber per channel), each gets every event in order and
// the terminal one, a reader that never reads holds nobody up, and the
// channels are unsubscribed once the jobs end.
func TestWatchersShareOneSubscription(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rdb := testenv.Redis(t)
	hub := progress.NewHub(rdb)
	const jobs, perJob, steps = 5, 40, 8
	ids := make([]string, jobs)
	streams := make([][]<-chan progress.Status, jobs)
	for j := range ids {
		ids[j] = uuid.NewString()
		for range perJob {
			ch, err := hub.Watch(ctx, ids[j])
			if err != nil {
				t.Fatal(err)
			}
			streams[j] = append(streams[j], ch)
		}
	}
	stalled, err := hub.Watch(ctx, ids[0]) // never read until the end
	if err != nil {
		t.Fatal(err)
	}
	for j, id := range ids {
		n, err := rdb.PubSubNumSub(ctx, progress.EventsChannel(id)).Result()
		if err != nil || n[progress.EventsChannel(id)] != 1 {
			t.Fatalf("job %d has %v subscribers (%v); want 1 for %d watchers", j, n, err, perJob+1)
		}
	}
	for step := 1; step <= steps; step++ {
		for _, id := range ids {
			s := progress.Status{JobID: id, State: catalog.JobRunning, Step: step, TotalSteps: steps}
			if step == steps {
				s.State = catalog.JobCompleted
			}
			if err := hub.Publish(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	for j := range ids {
		for _, ch := range streams[j] {
			var got []int
			for s := range ch {
				got = append(got, s.Step)
			}
			if len(got) != steps || got[steps-1] != steps {
				t.Fatalf("job %d watcher saw steps %v, want 1..%d", j, got, steps)
			}
		}
	}
	var last progress.Status
	for s := range stalled {
		last = s
	}
	if last.State != catalog.JobCompleted {
		t.Fatalf("the stalled watcher's last status is %+v, want the terminal one", last)
	}
	for _, id := range ids {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n, _ := rdb.PubSubNumSub(ctx, progress.EventsChannel(id)).Result()
			if n[progress.EventsChannel(id)] == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s is still subscribed after it ended", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// A watcher arriving after the end gets the stored terminal status.
	late, err := hub.Watch(ctx, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := <-late; !ok || s.State != catalog.JobCompleted {
		t.Fatalf("late watcher got %+v (%v)", s, ok)
	}
	if _, open := <-late; open {
		t.Fatal("the late watcher's stream did not end")
	}
}

// A watcher whose request ends stops receiving and its channel closes.
func TestWatchEndsWithContext(t *testing.T) {
	rdb := testenv.Redis(t)
	hub := progress.NewHub(rdb)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := hub.Watch(ctx, uuid.NewString())
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case _, open := <-ch:
		if open {
			t.Fatal("got a status after the context ended")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not close when its context ended")
	}
}
