package gpu

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// metadataServer is an EC2 instance metadata service that speaks IMDSv2
// only: every read needs the token from PUT /latest/api/token.
type metadataServer struct {
	*httptest.Server
	mu       sync.Mutex
	notice   string // body of instance-action; empty answers 404
	gets     atomic.Int32
	badToken atomic.Int32
}

func newMetadataServer(t *testing.T) *metadataServer {
	m := &metadataServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /latest/api/token", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "missing ttl", http.StatusBadRequest)
			return
		}
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", "21600")
		_, _ = w.Write([]byte("token-1"))
	})
	mux.HandleFunc("GET /latest/meta-data/spot/instance-action", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-aws-ec2-metadata-token") != "token-1" {
			m.badToken.Add(1)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		m.gets.Add(1)
		m.mu.Lock()
		body := m.notice
		m.mu.Unlock()
		if body == "" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(body))
	})
	m.Server = httptest.NewServer(mux)
	t.Cleanup(m.Close)
	return m
}

func (m *metadataServer) setNotice(body string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notice = body
}

func TestSpotNoticeTriggersDrain(t *testing.T) {
	t.Parallel()
	m := newMetadataServer(t)
	log, buf := bufferLog()
	d := NewDrain(time.Hour, log)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	w := SpotWatcher{Endpoint: m.URL, Every: 10 * time.Millisecond, Margin: 30 * time.Second, Log: log}
	go func() { w.Watch(ctx, d); close(done) }()
	for m.gets.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	if closed(d.Begun()) {
		t.Fatal("drain began before any notice")
	}
	at := time.Now().Add(2 * time.Minute).UTC().Truncate(time.Second)
	m.setNotice(`{"action": "terminate", "time": "` + at.Format(time.RFC3339) + `"}`)
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the watcher did not see the notice")
	}
	want := `reason="spot interruption: terminate" deadline=` + at.Add(-30*time.Second).Format(time.RFC3339)
	if !closed(d.Begun()) || !strings.Contains(buf.String(), want) {
		t.Fatalf("drain begun=%v, log:\n%s\nwant %s: the notice time less the margin", closed(d.Begun()), buf, want)
	}
	if m.badToken.Load() != 0 {
		t.Fatal("a metadata read went without the IMDSv2 token")
	}
}

// Sequential: its last Check gives the metadata read only Every (5 ms),
// which other tests competing for the CPU can exceed.
func TestNoSpotNoticeDoesNothing(t *testing.T) {
	m := newMetadataServer(t)
	log, _ := bufferLog()
	d := NewDrain(time.Hour, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := SpotWatcher{Endpoint: m.URL, Every: 5 * time.Millisecond, Log: log}
	go func() { w.Watch(ctx, d); close(done) }()
	for m.gets.Load() < 5 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if closed(d.Begun()) {
		t.Fatal("404 from instance-action began a drain")
	}
	if _, ok, err := w.Check(context.Background()); ok || err != nil {
		t.Fatalf("Check: notice %v, err %v; want neither", ok, err)
	}
}

func TestUnreadableSpotNoticeAssumesTwoMinutes(t *testing.T) {
	t.Parallel()
	log, _ := bufferLog()
	n := parseSpotNotice([]byte("not json"), log)
	if until := time.Until(n.Time); until < time.Minute || until > 2*time.Minute {
		t.Fatalf("notice time in %v, want about two minutes", until)
	}
}
