//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/oidc"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
	"github.com/easel/easel/workflows"
)

// Scale-out experiment: renders of a fixed length on one-slot GPU workers,
// so the GPU workers' capacity is the limit until something else is.
const (
	scaleRenderSteps   = 10
	scaleJobsPerGPU    = 30 // jobs per GPU worker process in a measured run
	scaleClientsPerGPU = 4  // closed-loop clients per GPU worker: its slot, the task it holds ahead, and a backlog
)

// BenchmarkScaleOut runs Easel as separate processes of the easel binary, as
// in production: one Temporal server on Postgres (`easel temporal
// --temporal-db postgres`, fresh databases), the API (`easel api`), the
// control worker and 1, 2, then 4 GPU worker processes (`easel worker
// --role gpu --engine sim --slots 1`, Pro's tier). Renders take a fixed
// time (EASEL_BENCH_RENDER, default 1s: 10 steps), so each GPU worker can
// finish at most 1/render jobs a second. For each worker count n, 4n
// closed-loop clients (each its own Pro user, one job in flight) submit 30
// jobs per worker through the HTTP API and wait for each workflow's
// result; it reports jobs/s, the
// ratio to the GPU workers' capacity (capacity-ratio: 1 means the GPUs
// were never idle), job latency and the CPU cores each process used.
// EASEL_BENCH_HISTORY_SHARDS sets the server's history shards (default 1);
// EASEL_BENCH_GPU_WORKERS the counts (default 1,2,4).
//
//	go test -run '^$' -bench ScaleOut -benchtime 1x -v ./cmd/easel/
func BenchmarkScaleOut(b *testing.B) {
	render := benchEnvDuration(b, "EASEL_BENCH_RENDER", time.Second)
	shards := benchEnvInt(b, "EASEL_BENCH_HISTORY_SHARDS", 1)
	counts := benchEnvInts(b, "EASEL_BENCH_GPU_WORKERS", []int{1, 2, 4})
	root := testenv.RepoRoot(b)
	bin := buildEasel(b, root)
	c := newScaleCluster(b, bin, root, render)
	c.start(b, "temporal", "temporal", "--port", strconv.Itoa(c.temporalPort), "--ui-port", "0",
		"--history-shards", strconv.Itoa(shards))
	c.waitTemporal(b)
	c.start(b, "control", "worker", "--role", "control")
	c.start(b, "api", "api")
	for _, name := range []string{"control", "api"} {
		c.waitReady(b, name)
	}
	tokens := c.users(b, scaleClientsPerGPU*counts[len(counts)-1])
	b.Logf("render %s, %d history shards, %d clients per GPU worker, GPU workers %v; machine: %d cores, load %s",
		render, shards, scaleClientsPerGPU, counts, runtime.NumCPU(), loadAvg())

	gpus := 0
	for i, n := range counts {
		for gpus < n {
			gpus++
			name := "gpu-" + strconv.Itoa(gpus)
			c.start(b, name, "worker", "--role", "gpu", "--tier", catalog.TierA10G, "--engine", "sim", "--slots", "1")
			c.waitReady(b, name)
		}
		clients := tokens[:scaleClientsPerGPU*n]
		if i == 0 {
			c.runJobs(b, clients, len(clients), nil) // warm-up: task queues, pools, caches
		}
		b.Run(fmt.Sprintf("gpu-workers=%d", n), func(b *testing.B) {
			capacity := float64(n) / render.Seconds()
			c.runJobs(b, clients, b.N*scaleJobsPerGPU*n, func(jobs int, wall time.Duration) {
				rate := float64(jobs) / wall.Seconds()
				b.ReportMetric(rate, "jobs/s")
				b.ReportMetric(rate/capacity, "capacity-ratio")
			})
		})
	}
}

// scaleCluster is the set of easel processes and what they share.
type scaleCluster struct {
	bin, root, logDir string
	env               []string
	temporalPort      int
	render            time.Duration
	issuer            *oidc.DevIssuer
	apiAddr           string
	store             *store.Store
	temporal          client.Client

	procs  map[string]*exec.Cmd
	status map[string]string // process name -> its status (readyz) address
	order  []string
}

func newScaleCluster(b *testing.B, bin, root string, render time.Duration) *scaleCluster {
	dbURL := testenv.PostgresURL(b)
	pool, err := store.Connect(context.Background(), dbURL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	temporalDB := testenv.TemporalPostgres(b) // dropped after the processes stop (cleanups run last-in first-out)
	s3 := testenv.S3(b)
	ports := freePorts(b, 2)
	c := &scaleCluster{bin: bin, root: root, logDir: b.TempDir(), render: render, temporalPort: ports[0],
		apiAddr: "127.0.0.1:" + strconv.Itoa(ports[1]), store: store.New(pool),
		procs: map[string]*exec.Cmd{}, status: map[string]string{}}
	key, err := oidc.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	// The development issuer serves its key set from this process, as
	// Cognito would from its own host.
	var handler http.Handler
	iss := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	b.Cleanup(iss.Close)
	if c.issuer, err = oidc.NewDevIssuer(iss.URL+"/oidc", "easel-bench", key); err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/oidc/", http.StripPrefix("/oidc", c.issuer.Handler()))
	handler = mux
	namespace := "scaleout-" + uuid.NewString()[:8]
	c.env = append(os.Environ(),
		"DATABASE_URL="+dbURL, "REDIS_URL="+testenv.RedisURL(b),
		"TEMPORAL_DB=postgres", "TEMPORAL_DATABASE_URL="+temporalDB.URL,
		"TEMPORAL_ADDRESS=127.0.0.1:"+strconv.Itoa(c.temporalPort), "TEMPORAL_NAMESPACE="+namespace,
		"S3_BUCKET="+s3.Bucket, "S3_ENDPOINT="+s3.Endpoint, "S3_PATH_STYLE=true", "AWS_REGION="+s3.Region,
		"AWS_ACCESS_KEY_ID="+s3.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+s3.SecretAccessKey,
		"OIDC_ISSUER="+c.issuer.Config().Issuer, "OIDC_AUDIENCE=easel-bench", "OIDC_JWKS_URL="+c.issuer.Config().JWKSURL,
		"HTTP_ADDR="+c.apiAddr, "SIM_STEP_DELAY="+(render/scaleRenderSteps).String(),
		"NOTIFY_SENDER=log", "LOG_FORMAT=json", "LOG_LEVEL=warn", "DEPLOYMENT_MODE=saas")
	b.Cleanup(func() { c.stopAll(b) })
	return c
}

// start runs one easel process with its own status port and log file.
func (c *scaleCluster) start(b *testing.B, name string, args ...string) {
	b.Helper()
	metrics := "127.0.0.1:" + strconv.Itoa(freePorts(b, 1)[0])
	logFile, err := os.Create(filepath.Join(c.logDir, name+".log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(c.bin, args...)
	cmd.Dir = c.root
	cmd.Env = append(slices.Clone(c.env), "METRICS_ADDR="+metrics)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", name, err)
	}
	c.procs[name], c.status[name] = cmd, metrics
	if name == "api" {
		c.status[name] = c.apiAddr
	}
	c.order = append(c.order, name)
}

// stopAll stops the processes in reverse order of their start (GPU workers
// first, Temporal last), each with SIGTERM, then SIGKILL after 15 s.
func (c *scaleCluster) stopAll(b *testing.B) {
	for _, name := range slices.Backward(c.order) {
		cmd := c.procs[name]
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	if b.Failed() {
		for _, name := range c.order {
			b.Logf("%s log, last lines:\n%s", name, tail(filepath.Join(c.logDir, name+".log"), 20))
		}
	}
	if c.temporal != nil {
		c.temporal.Close()
	}
}

// waitTemporal dials the server once it answers for the namespace.
func (c *scaleCluster) waitTemporal(b *testing.B) {
	b.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	ns := ""
	for _, kv := range c.env {
		if v, ok := strings.CutPrefix(kv, "TEMPORAL_NAMESPACE="); ok {
			ns = v
		}
	}
	for {
		cl, err := client.Dial(client.Options{HostPort: "127.0.0.1:" + strconv.Itoa(c.temporalPort), Namespace: ns,
			Logger: sdklog.NewStructuredLogger(quietLog())})
		if err == nil {
			_, err = cl.WorkflowService().DescribeNamespace(context.Background(),
				&workflowservice.DescribeNamespaceRequest{Namespace: ns})
			if err == nil {
				c.temporal = cl
				return
			}
			cl.Close()
		}
		c.checkAlive(b, "temporal")
		if time.Now().After(deadline) {
			b.Fatalf("temporal not ready: %v\n%s", err, tail(filepath.Join(c.logDir, "temporal.log"), 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitReady polls a process's /readyz until it answers 200.
func (c *scaleCluster) waitReady(b *testing.B, name string) {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + c.status[name] + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		c.checkAlive(b, name)
		if time.Now().After(deadline) {
			b.Fatalf("%s not ready: %v\n%s", name, err, tail(filepath.Join(c.logDir, name+".log"), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *scaleCluster) checkAlive(b *testing.B, name string) {
	b.Helper()
	if err := syscall.Kill(c.procs[name].Process.Pid, 0); err != nil {
		b.Fatalf("%s exited: %v\n%s", name, err, tail(filepath.Join(c.logDir, name+".log"), 20))
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.procs[name].Process.Pid)); err == nil {
		if i := bytes.LastIndexByte(st, ')'); i > 0 && bytes.HasPrefix(st[i+1:], []byte(" Z")) {
			b.Fatalf("%s exited:\n%s", name, tail(filepath.Join(c.logDir, name+".log"), 20))
		}
	}
}

// users makes n Pro users with credits for every job and signs an ID token
// for each.
func (c *scaleCluster) users(b *testing.B, n int) []string {
	b.Helper()
	ctx := context.Background()
	tokens := make([]string, n)
	for i := range tokens {
		id := uuid.NewString()
		u, err := c.store.UpsertUser(ctx, id+"@example.com", "User "+id[:8], "sub-"+id)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.store.Subscribe(ctx, u.ID, "pro", "cus_bench", time.Now().AddDate(0, 1, 0)); err != nil {
			b.Fatal(err)
		}
		if _, err := c.store.Grant(ctx, store.GrantInput{UserID: u.ID, Amount: 1_000_000, Source: "bench",
			ValidFrom: time.Now().Add(-time.Minute), ValidUntil: time.Now().Add(24 * time.Hour)}); err != nil {
			b.Fatal(err)
		}
		if tokens[i], err = c.issuer.Sign(oidc.Identity{Subject: u.CognitoSub, Email: u.Email, Name: u.Name}, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	return tokens
}

// runJobs submits total generations from one closed-loop client per token,
// each timed from its POST until its workflow's result, and reports the
// latency and each process's CPU; report (when not nil) adds the
// throughput metrics.
func (c *scaleCluster) runJobs(b *testing.B, tokens []string, total int, report func(jobs int, wall time.Duration)) {
	b.Helper()
	body, _ := json.Marshal(map[string]any{"prompt": "a scale-out benchmark", "model": "sd-1.5",
		"width": 64, "height": 64, "steps": scaleRenderSteps, "batch_size": 1})
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * len(tokens)}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	lat := make([][]time.Duration, len(tokens))
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	cpu0 := c.cpu()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, token := range tokens {
		wg.Go(func() {
			for next.Add(1) <= int64(total) {
				t0 := time.Now()
				if err := c.generate(ctx, hc, token, body); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	if report == nil {
		return
	}
	report(total, wall)
	all := slices.Concat(lat...)
	slices.Sort(all)
	ms := func(q float64) float64 {
		return float64(all[min(int(q*float64(len(all))), len(all)-1)].Microseconds()) / 1000
	}
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	cpu1 := c.cpu()
	for _, role := range slices.Sorted(maps.Keys(cpu1)) {
		b.ReportMetric((cpu1[role]-cpu0[role]).Seconds()/wall.Seconds(), role+"-cores")
	}
	b.Logf("%d jobs from %d clients in %v; load %s", total, len(tokens), wall.Round(time.Millisecond), loadAvg())
}

// generate POSTs one generation and waits for its workflow's result.
func (c *scaleCluster) generate(ctx context.Context, hc *http.Client, token string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.apiAddr+"/v1/generations", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", uuid.NewString())
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST /v1/generations: %d %s", resp.StatusCode, raw)
	}
	var g struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &g); err != nil || g.ID == "" {
		return fmt.Errorf("POST /v1/generations answered %s: %v", raw, err)
	}
	var res workflows.GenerationResult
	if err := c.temporal.GetWorkflow(ctx, workflows.GenerationID(g.ID), "").Get(ctx, &res); err != nil {
		return fmt.Errorf("generation %s: %w", g.ID, err)
	}
	if res.Status != catalog.JobCompleted {
		return fmt.Errorf("generation %s ended %s: %s", g.ID, res.Status, res.Error)
	}
	return nil
}

// cpu is the CPU time used so far by each role: temporal, api, control,
// gpu (all GPU workers), postgres (every postgres process on the machine:
// an upper bound on a shared server), redis and bench (this process, the
// load generator).
func (c *scaleCluster) cpu() map[string]time.Duration {
	out := map[string]time.Duration{
		"postgres": testenv.ProcessCPU("postgres"),
		"redis":    testenv.ProcessCPU("redis-server"),
		"bench":    testenv.SelfCPU(),
	}
	for name, cmd := range c.procs {
		role := name
		if strings.HasPrefix(name, "gpu-") {
			role = "gpu"
		}
		out[role] += pidCPU(cmd.Process.Pid)
	}
	return out
}

// pidCPU is a process's user + system time from /proc/<pid>/stat (ticks
// of 1/100 s).
func pidCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(raw, ')')
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

func loadAvg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func benchEnvDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q: want a positive duration", name, v)
	}
	return d
}

func benchEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func benchEnvInts(b *testing.B, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, s := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 || (len(out) > 0 && n < out[len(out)-1]) {
			b.Fatalf("%s=%q: want rising positive numbers, e.g. 1,2,4", name, v)
		}
		out = append(out, n)
	}
	return out
}
