package api_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/easel/easel/internal/testenv"
)

// Authenticated reads at a fixed rate: the cost of knowing who is asking.
const (
	authUsers       = 40
	authDefaultRate = 2000
)

// BenchmarkAuthenticatedReads sends GET requests open-loop at a fixed rate
// (EASEL_BENCH_RATE, default 2,000/s, for EASEL_BENCH_SECONDS, default 5 s,
// after 1 s of warm-up) to the full in-process stack (API, workers and the
// embedded Temporal server in this process, as in `easel dev`), round-robin
// over 40 Enterprise users, and reports each route's p50 and p99 latency,
// the share of 200 answers and the p99 as a ratio to the unauthenticated
// baseline (GET /api/v1/app/version) measured first in the same run. Each
// authenticated route runs again on a second API instance without the auth
// cache (internal/authcache), sharing everything else. CPU per request is
// reported for this process (API, workers, Temporal and the load
// generator, which costs the same on every route) and for Postgres.
// EASEL_BENCH_ROUTES, a regular expression, picks the routes to run
// (the baseline always runs), e.g. for a CPU profile of one of them.
// Each route also reports how busy the whole machine was (every process,
// and the hypervisor's steal). EASEL_BENCH_BASELINE_RATES (e.g.
// "6000,8000") runs the baseline again at those rates: a route that does
// no work, with the machine as busy as an authenticated route makes it,
// shows how much of the tail is the machine's. EASEL_BENCH_SPIN_US (e.g.
// "100,200,300") runs, at the main rate, a server whose handler only
// computes for that many microseconds: how much CPU a request may cost
// before this machine's p99 leaves the target, whatever the request does.
// Each route also logs when its slow answers (over 20 ms) were sent, in
// 100 ms windows dated from the process's start as GODEBUG=gctrace=1 dates
// collections, and how late a sleeping goroutine woke in each window.
//
// vegeta's attacker paces the sends and starts a new worker whenever every
// worker is busy, so a slow answer delays no later send; latency runs from
// the send to the end of the body.
//
//	go test -run '^$' -bench AuthenticatedReads -benchtime 1x -v ./api/
func BenchmarkAuthenticatedReads(b *testing.B) {
	s := newStack(b, 0)
	ctx := context.Background()
	idTokens := make([]string, authUsers)
	apiKeys := make([]string, authUsers)
	for i := range authUsers {
		var u, tok = s.newUser(b, "enterprise", 1000)
		idTokens[i] = tok
		_, secret, err := s.store.CreateAPIKey(ctx, u.ID, "bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		apiKeys[i] = secret
	}
	rate := envInt("EASEL_BENCH_RATE", authDefaultRate)
	seconds := envInt("EASEL_BENCH_SECONDS", 5)
	baselineRates, err := envInts("EASEL_BENCH_BASELINE_RATES")
	if err != nil {
		b.Fatal(err)
	}
	spins, err := envInts("EASEL_BENCH_SPIN_US")
	if err != nil {
		b.Fatal(err)
	}
	var only *regexp.Regexp // EASEL_BENCH_ROUTES: the routes to run, e.g. for a profile
	if v := os.Getenv("EASEL_BENCH_ROUTES"); v != "" {
		only = regexp.MustCompile(v)
	}

	routes := []struct {
		name, path string
		tokens     []string
	}{
		{"baseline-version", "/api/v1/app/version", nil},
		{"credits-idtoken", "/v1/credits", idTokens},
		{"me-idtoken", "/v1/me", idTokens},
		{"generations-idtoken", "/v1/generations", idTokens},
		{"credits-apikey", "/v1/credits", apiKeys},
		{"me-apikey", "/v1/me", apiKeys},
		{"generations-apikey", "/v1/generations", apiKeys},
	}
	// The same routes on an instance without the auth cache, in the same
	// run: what the cache saves.
	h, err := s.newAPI(b, false).Handler()
	if err != nil {
		b.Fatal(err)
	}
	uncached := httptest.NewServer(h)
	b.Cleanup(uncached.Close)
	// All cached routes run before any uncached one: a run that saturates
	// leaves abandoned requests behind that would load the next.
	instances := []struct{ label, url string }{{"", s.http.URL}, {"uncached-", uncached.URL}}
	for i := 0; i < b.N; i++ {
		var baseP99 time.Duration
		for _, inst := range instances {
			for _, r := range routes {
				if r.tokens == nil && inst.label != "" {
					continue
				}
				name := inst.label + r.name
				if r.tokens != nil && only != nil && !only.MatchString(name) {
					continue
				}
				targets := readTargets(inst.url+r.path, r.tokens)
				m := measureRoute(b, name, targets, rate, seconds, baseP99)
				if r.tokens != nil {
					continue
				}
				baseP99 = m.Latencies.P99
				for _, br := range baselineRates {
					measureRoute(b, name+"@"+strconv.Itoa(br), targets, br, seconds, baseP99)
				}
				for _, us := range spins {
					spin := httptest.NewServer(spinHandler(b, time.Duration(us)*time.Microsecond))
					measureRoute(b, fmt.Sprintf("spin-%dµs", us), readTargets(spin.URL, nil), rate, seconds, baseP99)
					spin.Close()
				}
			}
		}
	}
}

// measureRoute sends targets at rate for seconds (after a pause and a
// second of warm-up) and logs and reports what the answers and the CPU
// measured; baseP99 is the baseline's p99 (0 while the baseline runs).
func measureRoute(b *testing.B, name string, targets []vegeta.Target, rate, seconds int, baseP99 time.Duration) vegeta.Metrics {
	b.Helper()
	time.Sleep(2 * time.Second)
	attack(targets, rate, time.Second) // warm-up: connections, caches
	cpu := startCPUSample()
	machine := testenv.ReadMachineCPU()
	late := watchScheduler()
	m, slow := attack(targets, rate, time.Duration(seconds)*time.Second)
	slow.late = late()
	busy, steal := machine.Since()
	goCPU, pgCPU := cpu.perRequest(m.Requests)
	if baseP99 == 0 {
		baseP99 = m.Latencies.P99
	}
	b.Logf("%-30s %d req/s: p50 %v p99 %v max %v, %.1f %% 200, p99 %.2fx baseline; CPU per request: this process %v, postgres %v; machine %.0f %% busy, %.0f %% stolen",
		name, rate, m.Latencies.P50.Round(10*time.Microsecond), m.Latencies.P99.Round(10*time.Microsecond),
		m.Latencies.Max.Round(time.Millisecond), m.Success*100, float64(m.Latencies.P99)/float64(baseP99),
		goCPU.Round(time.Microsecond), pgCPU.Round(time.Microsecond), busy*100, steal*100)
	b.Logf("%-30s slow: %v", name, slow)
	b.ReportMetric(float64(m.Latencies.P99)/1e6, name+"-p99-ms")
	b.ReportMetric(float64(goCPU.Microseconds()), name+"-go-µs/req")
	b.ReportMetric(busy*100, name+"-busy-%")
	if m.Success < 0.999 {
		b.Errorf("%s: only %.2f %% of answers were 200 (%v)", name, m.Success*100, m.StatusCodes)
	}
	return m
}

// perRequest is the CPU this process and Postgres used since the sample
// began, per request (Postgres: an upper bound, other clients count too).
func (c cpuSample) perRequest(n uint64) (self, pg time.Duration) {
	if n == 0 {
		return 0, 0
	}
	self = (testenv.SelfCPU() - c.self) / time.Duration(n)
	pg = (testenv.ProcessCPU("postgres") - c.procs["postgres"]) / time.Duration(n)
	return self, pg
}

// readTargets is one GET of url per token (or one without, for nil).
func readTargets(url string, tokens []string) []vegeta.Target {
	if tokens == nil {
		return []vegeta.Target{{Method: http.MethodGet, URL: url}}
	}
	targets := make([]vegeta.Target, len(tokens))
	for i, tok := range tokens {
		targets[i] = vegeta.Target{Method: http.MethodGet, URL: url,
			Header: http.Header{"Authorization": {"Bearer " + tok}}}
	}
	return targets
}

// attack sends targets round-robin at rate per second for d and returns
// what the answers measured, and when the slow ones were sent.
func attack(targets []vegeta.Target, rate int, d time.Duration) (vegeta.Metrics, stalls) {
	atk := vegeta.NewAttacker(vegeta.Workers(64), vegeta.MaxWorkers(20_000), vegeta.KeepAlive(true),
		vegeta.Connections(256), vegeta.Timeout(10*time.Second))
	var m vegeta.Metrics
	st := stalls{windows: map[time.Duration]int{}}
	for res := range atk.Attack(vegeta.NewStaticTargeter(targets...), vegeta.Rate{Freq: rate, Per: time.Second}, d, "reads") {
		st.add(res)
		m.Add(res)
	}
	m.Close()
	return m, st
}

// slowAnswer is the latency from which an answer counts as slow: the
// issue's p99 target.
const slowAnswer = 20 * time.Millisecond

// processStart dates the stall windows the way GODEBUG=gctrace=1 dates
// collections (@12.345s), so the two can be laid side by side.
var processStart = time.Now()

// stalls counts the slow answers by the 100 ms window they were sent in,
// dated from the process's start: one stall of the whole process shows as
// one or two full windows, contention as slow answers spread thin.
type stalls struct {
	windows map[time.Duration]int
	late    map[time.Duration]time.Duration // the scheduler's longest delay in each window
}

// watchScheduler sleeps 1 ms at a time until the returned function is
// called, which returns, for each 100 ms window (dated as in stalls), the
// longest a wake-up came late when that was over 5 ms: whether this
// process's goroutines waited for a CPU, whatever they were waiting on.
func watchScheduler() func() map[time.Duration]time.Duration {
	late := map[time.Duration]time.Duration{}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			before := time.Now()
			time.Sleep(time.Millisecond)
			if d := time.Since(before) - time.Millisecond; d > 5*time.Millisecond {
				w := before.Sub(processStart).Truncate(100 * time.Millisecond)
				late[w] = max(late[w], d)
			}
		}
	}()
	return func() map[time.Duration]time.Duration {
		close(stop)
		<-done
		return late
	}
}

func (s *stalls) add(res *vegeta.Result) {
	if res.Latency < slowAnswer {
		return
	}
	s.windows[res.Timestamp.Sub(processStart).Truncate(100*time.Millisecond)]++
}

// String lists the windows holding at least 5 slow answers, in order,
// and how many slow answers there were in all.
func (s stalls) String() string {
	var at []time.Duration
	total := 0
	for w, n := range s.windows {
		total += n
		if n >= 5 {
			at = append(at, w)
		}
	}
	slices.Sort(at)
	parts := make([]string, len(at))
	for i, w := range at {
		parts[i] = fmt.Sprintf("@%.1fs:%d", w.Seconds(), s.windows[w])
	}
	lateAt := slices.Sorted(maps.Keys(s.late))
	lates := make([]string, len(lateAt))
	for i, w := range lateAt {
		lates[i] = fmt.Sprintf("@%.1fs:%v", w.Seconds(), s.late[w].Round(time.Millisecond))
	}
	return fmt.Sprintf("%d answers over %v; windows of 100 ms with 5 or more: [%s]; the scheduler over 5 ms late: [%s]",
		total, slowAnswer, strings.Join(parts, " "), strings.Join(lates, " "))
}

// spinHandler answers every request after computing for about d of CPU
// (SHA-256 rounds over 1 KiB, counted once against the clock while the
// machine is otherwise idle) and nothing else: no I/O, no locks.
func spinHandler(b *testing.B, d time.Duration) http.Handler {
	const probe = 20_000
	start := time.Now()
	spinRounds(probe)
	perRound := time.Since(start) / probe
	rounds := int(d / max(perRound, time.Nanosecond))
	b.Logf("spin %v: %d SHA-256 rounds of %v", d, rounds, perRound)
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"sum":"%x"}`, spinRounds(rounds))
	})
}

// spinRounds hashes a 1 KiB block n times, each round over the last sum.
func spinRounds(n int) []byte {
	var buf [1024]byte
	for range n {
		sum := sha256.Sum256(buf[:])
		copy(buf[:], sum[:])
	}
	return buf[:8]
}

// envInts reads a comma-separated list of positive integers; none when
// the variable is unset.
func envInts(name string) ([]int, error) {
	v := os.Getenv(name)
	if v == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive integer", name, f)
		}
		out = append(out, n)
	}
	return out, nil
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
