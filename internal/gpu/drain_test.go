package gpu

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestDrainDeadline(t *testing.T) {
	t.Parallel()
	log, _ := bufferLog()
	d := NewDrain(80*time.Millisecond, log)
	if closed(d.Begun()) || closed(d.Expired()) {
		t.Fatal("drain began before Begin")
	}
	start := time.Now()
	d.Begin("test", time.Time{})
	if !closed(d.Begun()) || closed(d.Expired()) {
		t.Fatal("after Begin: want begun, not yet expired")
	}
	<-d.Expired()
	if waited := time.Since(start); waited < 70*time.Millisecond {
		t.Fatalf("expired after %v, want the drain timeout (80 ms)", waited)
	}
}

func TestDrainEarlierDeadlineWins(t *testing.T) {
	t.Parallel()
	log, buf := bufferLog()
	d := NewDrain(time.Hour, log)
	d.Begin("SIGTERM", time.Time{})
	d.Begin("later", time.Now().Add(2*time.Hour))
	// The operator sees one drain, begun by SIGTERM: the later deadline
	// changed nothing.
	if lines := strings.Count(buf.String(), "draining:"); lines != 1 || !strings.Contains(buf.String(), "reason=SIGTERM") ||
		strings.Contains(buf.String(), "reason=later") {
		t.Fatalf("a later deadline moved the drain:\n%s", buf)
	}
	d.Begin("spot", time.Now().Add(30*time.Millisecond))
	select {
	case <-d.Expired():
	case <-time.After(5 * time.Second):
		t.Fatal("an earlier deadline did not bring the drain forward")
	}
}

func TestServeStopsOnSignalAndOnLostGPUs(t *testing.T) {
	t.Parallel()
	log, _ := bufferLog()
	ctx, cancel := context.WithCancel(context.Background())
	d := NewDrain(time.Minute, log)
	stopped := false
	errc := make(chan error)
	go func() { errc <- d.Serve(ctx, nil, func() { stopped = closed(d.Begun()) }) }()
	cancel() // SIGTERM
	if err := <-errc; err != nil || !stopped {
		t.Fatalf("signal: err %v, worker stopped while draining %v", err, stopped)
	}

	exhausted := make(chan struct{})
	close(exhausted)
	d = NewDrain(time.Minute, log)
	err := d.Serve(context.Background(), exhausted, func() {})
	if !errors.Is(err, ErrNoDevice) || !closed(d.Begun()) {
		t.Fatalf("no healthy GPU: err %v, want ErrNoDevice and a drain", err)
	}
}
