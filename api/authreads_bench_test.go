package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
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
				time.Sleep(2 * time.Second)
				attack(targets, rate, time.Second) // warm-up: connections, caches
				cpu := startCPUSample()
				m := attack(targets, rate, time.Duration(seconds)*time.Second)
				goCPU, pgCPU := cpu.perRequest(m.Requests)
				if r.tokens == nil {
					baseP99 = m.Latencies.P99
				}
				b.Logf("%-30s %d req/s: p50 %v p99 %v max %v, %.1f %% 200, p99 %.2fx baseline; CPU per request: this process %v, postgres %v",
					name, rate, m.Latencies.P50.Round(10*time.Microsecond), m.Latencies.P99.Round(10*time.Microsecond),
					m.Latencies.Max.Round(time.Millisecond), m.Success*100, float64(m.Latencies.P99)/float64(baseP99),
					goCPU.Round(time.Microsecond), pgCPU.Round(time.Microsecond))
				b.ReportMetric(float64(m.Latencies.P99)/1e6, name+"-p99-ms")
				b.ReportMetric(float64(goCPU.Microseconds()), name+"-go-µs/req")
				if m.Success < 0.999 {
					b.Errorf("%s: only %.2f %% of answers were 200 (%v)", name, m.Success*100, m.StatusCodes)
				}
			}
		}
	}
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
// what the answers measured.
func attack(targets []vegeta.Target, rate int, d time.Duration) vegeta.Metrics {
	atk := vegeta.NewAttacker(vegeta.Workers(64), vegeta.MaxWorkers(20_000), vegeta.KeepAlive(true),
		vegeta.Connections(256), vegeta.Timeout(10*time.Second))
	var m vegeta.Metrics
	for res := range atk.Attack(vegeta.NewStaticTargeter(targets...), vegeta.Rate{Freq: rate, Per: time.Second}, d, "reads") {
		m.Add(res)
	}
	m.Close()
	return m
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
