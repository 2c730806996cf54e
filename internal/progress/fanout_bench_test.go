package progress_test

import (
	"context"
	"encoding/json"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/progress"
	"github.com/easel/easel/internal/testenv"
)

// BenchmarkProgressFanout watches 100 running jobs with 10,000 watchers
// through one Hub (one API process) and publishes 10 steps per job,
// reporting the Redis connections the process held, event delivery
// latency after the publish (p50, p99) and heap per watcher. The baseline,
// in the same run, is what the Hub did before: one Redis subscription per
// watcher (1,000 watchers over 10 jobs; 10,000 would open 10,000
// connections).
//
//	go test -run '^$' -bench ProgressFanout -benchtime 1x ./internal/progress/
func BenchmarkProgressFanout(b *testing.B) {
	for range b.N {
		base := fanoutRun(b, 10, 100, perWatcherSubscriptions)
		shared := fanoutRun(b, 100, 100, sharedHub)
		b.ReportMetric(float64(base.conns), "baseline_conns")
		b.ReportMetric(float64(base.p99.Microseconds())/1000, "baseline_p99_ms")
		b.ReportMetric(float64(shared.conns), "conns")
		b.ReportMetric(float64(shared.p50.Microseconds())/1000, "p50_ms")
		b.ReportMetric(float64(shared.p99.Microseconds())/1000, "p99_ms")
		b.ReportMetric(shared.bytesPerWatcher, "B/watcher")
		b.Logf("baseline (a subscription per watcher): %d watchers, %d Redis connections, p50 %v, p99 %v, %.0f B/watcher",
			base.watchers, base.conns, base.p50, base.p99, base.bytesPerWatcher)
		b.Logf("shared hub: %d watchers, %d Redis connections, p50 %v, p99 %v, %.0f B/watcher",
			shared.watchers, shared.conns, shared.p50, shared.p99, shared.bytesPerWatcher)
	}
}

type fanoutResult struct {
	watchers        int
	conns           int
	p50, p99        time.Duration
	bytesPerWatcher float64
}

// watchFunc opens one watcher of a job on a client named for the run.
type watchFunc func(ctx context.Context, hub *progress.Hub, rdb *redis.Client, job string) (<-chan progress.Status, error)

func sharedHub(ctx context.Context, hub *progress.Hub, _ *redis.Client, job string) (<-chan progress.Status, error) {
	return hub.Watch(ctx, job)
}

// perWatcherSubscriptions is the old Watch: its own SUBSCRIBE per watcher.
func perWatcherSubscriptions(ctx context.Context, _ *progress.Hub, rdb *redis.Client, job string) (<-chan progress.Status, error) {
	sub := rdb.Subscribe(ctx, progress.EventsChannel(job))
	if _, err := sub.Receive(ctx); err != nil {
		return nil, err
	}
	out := make(chan progress.Status, 16)
	go func() {
		defer close(out)
		defer sub.Close()
		for m := range sub.Channel() {
			var s progress.Status
			if json.Unmarshal([]byte(m.Payload), &s) == nil {
				out <- s
				if s.Terminal() {
					return
				}
			}
		}
	}()
	return out, nil
}

func fanoutRun(b *testing.B, jobs, perJob int, watch watchFunc) fanoutResult {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	name := "easel-bench-" + uuid.NewString()[:8]
	opts, err := redis.ParseURL(testenv.RedisURL(b))
	if err != nil {
		b.Fatal(err)
	}
	opts.ClientName = name
	opts.PoolSize = 4 * runtime.GOMAXPROCS(0)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	hub := progress.NewHub(rdb)
	publisher := testenv.Redis(b) // the GPU workers' side, not counted
	pubHub := progress.NewHub(publisher)

	ids := make([]string, jobs)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var (
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	for _, id := range ids {
		for range perJob {
			ch, err := watch(ctx, hub, rdb, id)
			if err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				var mine []time.Duration
				for s := range ch {
					mine = append(mine, time.Since(s.UpdatedAt))
				}
				mu.Lock()
				latencies = append(latencies, mine...)
				mu.Unlock()
			}()
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	conns := clientCount(ctx, b, publisher, name)
	const steps = 10
	for step := 1; step <= steps; step++ {
		for _, id := range ids {
			s := progress.Status{JobID: id, State: catalog.JobRunning, Step: step, TotalSteps: steps}
			if step == steps {
				s.State = catalog.JobCompleted
			}
			if err := pubHub.Publish(ctx, s); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	slices.Sort(latencies)
	watchers := jobs * perJob
	if len(latencies) < watchers {
		b.Fatalf("%d deliveries for %d watchers", len(latencies), watchers)
	}
	return fanoutResult{watchers: watchers, conns: conns,
		p50: latencies[len(latencies)/2], p99: latencies[len(latencies)*99/100],
		bytesPerWatcher: float64(after.HeapAlloc-before.HeapAlloc) / float64(watchers)}
}

// clientCount counts the Redis connections named name.
func clientCount(ctx context.Context, b *testing.B, rdb *redis.Client, name string) int {
	b.Helper()
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		b.Fatal(err)
	}
	return strings.Count(list, "name="+name+" ")
}
