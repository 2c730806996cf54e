package progress

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/redis/go-redis/v9"
)

// Every watcher of every job in one process shares a single Redis pub/sub
// connection: a job's channel is subscribed while someone in the process
// watches it (reference counted) and each message is decoded once and
// offered to that job's watchers. 10,000 people watching 100 jobs cost one
// connection and 100 subscriptions, not 10,000 of each.

var (
	watchersGauge = promauto.NewGauge(prometheus.GaugeOpts{Name: "easel_progress_watchers",
		Help: "Live progress streams (SSE watchers) in this process."})
	feedsGauge = promauto.NewGauge(prometheus.GaugeOpts{Name: "easel_progress_subscriptions",
		Help: "Jobs whose Redis channel this process subscribes to for its watchers."})
)

// subscribeWait bounds how long Watch waits for Redis to confirm a
// subscription.
const subscribeWait = 10 * time.Second

// watcherBuffer is how many statuses a watcher may fall behind before the
// oldest are dropped. Each status is a full snapshot, so a slow reader
// only skips intermediate steps; the last status is never dropped.
const watcherBuffer = 16

type fanout struct {
	mu   sync.Mutex
	ps   *redis.PubSub
	jobs map[string]*jobFeed // by channel
	// sent and confirmed count SUBSCRIBE commands and Redis's confirmations
	// per channel: a feed is ready once its own command is confirmed, not
	// an earlier one for the same channel.
	sent      map[string]int
	confirmed map[string]int
	// queued are SUBSCRIBE/UNSUBSCRIBE commands in the order they were
	// decided; send writes them to Redis outside mu, so no watcher and no
	// delivery waits on the network while holding it.
	queued []subscription
	wake   chan struct{}
}

// subscription is one queued command: subscribe or unsubscribe a channel.
type subscription struct {
	channel   string
	subscribe bool
}

// jobFeed is one job's subscription and its watchers.
type jobFeed struct {
	channel  string
	jobID    string
	want     int // the confirmation count that makes it ready
	ready    chan struct{}
	watchers map[*watcher]struct{}
}

type watcher struct {
	out    chan Status
	closed bool
}

// offer queues s, dropping the oldest queued status when the reader is
// behind. Only the dispatcher sends, under fanout.mu.
func (w *watcher) offer(s Status) {
	for {
		select {
		case w.out <- s:
			return
		default:
			select {
			case <-w.out:
			default:
			}
		}
	}
}

// Watch streams the job's status: the stored one first (if any), then every
// published change, until a terminal status or ctx ends. The channel is
// closed when the stream ends.
func (h *Hub) Watch(ctx context.Context, jobID string) (<-chan Status, error) {
	w := &watcher{out: make(chan Status, watcherBuffer)}
	feed := h.join(jobID, w)
	// Subscribed before the stored status is read, so no change falls
	// between the two.
	wait, cancel := context.WithTimeout(ctx, subscribeWait)
	defer cancel()
	select {
	case <-feed.ready:
	case <-wait.Done():
		h.leave(feed, w)
		return nil, fmt.Errorf("subscribe to job %s: %w", jobID, wait.Err())
	}
	first, ok, err := h.Get(ctx, jobID)
	if err != nil {
		h.leave(feed, w)
		return nil, err
	}
	h.fan.mu.Lock()
	if ok && !w.closed {
		w.offer(first)
		if first.Terminal() {
			h.closeWatcher(feed, w)
		}
	}
	h.fan.mu.Unlock()
	context.AfterFunc(ctx, func() { h.leave(feed, w) })
	return w.out, nil
}

// join adds w to the job's feed, subscribing to the job's channel when w
// is its first watcher.
func (h *Hub) join(jobID string, w *watcher) *jobFeed {
	f := &h.fan
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ps == nil {
		f.ps = h.rdb.Subscribe(context.Background())
		f.wake = make(chan struct{}, 1)
		go h.dispatch(f.ps.ChannelWithSubscriptions(redis.WithChannelSize(1000)))
		go f.send()
	}
	ch := EventsChannel(jobID)
	feed := f.jobs[ch]
	if feed == nil {
		f.sent[ch]++
		feed = &jobFeed{channel: ch, jobID: jobID, want: f.sent[ch], ready: make(chan struct{}),
			watchers: map[*watcher]struct{}{}}
		f.jobs[ch] = feed
		feedsGauge.Inc()
		f.queue(subscription{channel: ch, subscribe: true})
	}
	feed.watchers[w] = struct{}{}
	watchersGauge.Inc()
	return feed
}

// leave removes w (closing its channel) and unsubscribes the job's channel
// when nobody in the process watches it any more.
func (h *Hub) leave(feed *jobFeed, w *watcher) {
	h.fan.mu.Lock()
	defer h.fan.mu.Unlock()
	h.closeWatcher(feed, w)
}

// closeWatcher is leave with fanout.mu held.
func (h *Hub) closeWatcher(feed *jobFeed, w *watcher) {
	f := &h.fan
	if _, ok := feed.watchers[w]; !ok {
		return
	}
	delete(feed.watchers, w)
	w.closed = true
	close(w.out)
	watchersGauge.Dec()
	if len(feed.watchers) > 0 || f.jobs[feed.channel] != feed {
		return
	}
	delete(f.jobs, feed.channel)
	f.forgetSettled(feed.channel)
	feedsGauge.Dec()
	f.queue(subscription{channel: feed.channel})
}

// queue adds a command for send; f.mu is held.
func (f *fanout) queue(c subscription) {
	f.queued = append(f.queued, c)
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// send writes the queued commands to the shared connection, in order. A
// failed write is retried by go-redis on reconnect, which resubscribes
// every channel the PubSub holds.
func (f *fanout) send() {
	for range f.wake {
		f.mu.Lock()
		cmds := f.queued
		f.queued = nil
		f.mu.Unlock()
		for _, c := range cmds {
			if c.subscribe {
				_ = f.ps.Subscribe(context.Background(), c.channel)
			} else {
				_ = f.ps.Unsubscribe(context.Background(), c.channel)
			}
		}
	}
}

// dispatch reads the shared connection: confirmations make feeds ready,
// messages go to the job's watchers.
func (h *Hub) dispatch(in <-chan any) {
	for m := range in {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				h.confirm(m.Channel)
			}
		case *redis.Message:
			var s Status
			if json.Unmarshal([]byte(m.Payload), &s) == nil {
				h.deliver(m.Channel, s)
			}
		}
	}
}

// confirm marks the channel's subscription confirmed. A confirmation for a
// feed that was already ready means go-redis resubscribed after a lost
// connection: messages may have been missed meanwhile, so the stored
// status is offered again.
func (h *Hub) confirm(ch string) {
	f := &h.fan
	f.mu.Lock()
	feed := f.jobs[ch]
	if feed != nil && isClosed(feed.ready) {
		f.mu.Unlock()
		go h.refresh(feed)
		return
	}
	f.confirmed[ch]++
	if feed != nil && f.confirmed[ch] >= feed.want {
		close(feed.ready)
	}
	f.forgetSettled(ch)
	f.mu.Unlock()
}

// forgetSettled drops the channel's counts once no feed needs them and no
// confirmation is outstanding, so they do not grow with every job ever
// watched.
func (f *fanout) forgetSettled(ch string) {
	if f.jobs[ch] == nil && f.confirmed[ch] >= f.sent[ch] {
		delete(f.sent, ch)
		delete(f.confirmed, ch)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// refresh offers the job's stored status to its watchers after a
// reconnect.
func (h *Hub) refresh(feed *jobFeed) {
	ctx, cancel := context.WithTimeout(context.Background(), subscribeWait)
	defer cancel()
	s, ok, err := h.Get(ctx, feed.jobID)
	if err == nil && ok {
		h.deliver(feed.channel, s)
	}
}

// deliver offers s to the job's watchers, ending their streams on a
// terminal status.
func (h *Hub) deliver(ch string, s Status) {
	f := &h.fan
	f.mu.Lock()
	defer f.mu.Unlock()
	feed := f.jobs[ch]
	if feed == nil {
		return
	}
	for w := range feed.watchers {
		w.offer(s)
		if s.Terminal() {
			h.closeWatcher(feed, w)
		}
	}
}
