package invokeai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/testenv"
)

// testLogger sends the engine's logs to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newEngine points an engine at the fake; tweak adjusts the config.
func newEngine(t *testing.T, f *fakeInvoke, tweak func(*Config)) *Engine {
	t.Helper()
	cfg := Config{BaseURL: f.srv.URL, PollInterval: 10 * time.Millisecond, Logger: testLogger(t),
		CacheScope: "test-" + uuid.NewString()}
	if tweak != nil {
		tweak(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func request(model string) engine.Request {
	r := engine.Request{Prompt: "a lighthouse at dusk", NegativePrompt: "blurry", Model: model,
		Width: 512, Height: 768, Steps: 6, CFGScale: 6.5, Seed: 4000000000}
	if model == catalog.ModelFlux {
		r.Width, r.Height = 1024, 768
	}
	return r
}

// progressLog records progress callbacks; the engine calls them from the
// render goroutine, but the test reads them from its own.
type progressLog struct {
	mu    sync.Mutex
	steps []engine.Progress
}

func (p *progressLog) add(pr engine.Progress) {
	p.mu.Lock()
	p.steps = append(p.steps, pr)
	p.mu.Unlock()
}

func (p *progressLog) all() []engine.Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]engine.Progress(nil), p.steps...)
}

func render(t *testing.T, e *Engine, ctx context.Context, req engine.Request) (engine.Image, *progressLog, error) {
	t.Helper()
	var pl progressLog
	img, err := e.Render(ctx, req, pl.add)
	return img, &pl, err
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"missing BaseURL":     {},
		"not http":            {BaseURL: "ftp://host:9090"},
		"no host":             {BaseURL: "http://"},
		"query":               {BaseURL: "http://127.0.0.1:9090?x=1"},
		"negative poll":       {BaseURL: "http://127.0.0.1:9090", PollInterval: -time.Second},
		"negative cache TTL":  {BaseURL: "http://127.0.0.1:9090", CacheTTL: -time.Second},
		"negative req timout": {BaseURL: "http://127.0.0.1:9090", RequestTimeout: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	e, err := New(Config{BaseURL: "http://127.0.0.1:9090/"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if e.cfg.PollInterval != DefaultPollInterval || e.cfg.QueueID != DefaultQueueID || e.cfg.CacheTTL != time.Hour {
		t.Errorf("defaults not applied: %+v", e.cfg)
	}
}

// Each family's graph passes the fake's checks (schema per node, edges,
// run-time inputs, use_cache false); the image comes back at the requested
// size; the batch's destination is the job id; the downloaded image is
// deleted from InvokeAI; and a leftover item of the same job is cancelled.
func TestFamiliesBuildValidGraphs(t *testing.T) {
	t.Parallel()
	for _, family := range catalog.ModelFamilies() {
		t.Run(family, func(t *testing.T) {
			f := newFake(t)
			leftover := f.addItem(map[string]any{"nodes": map[string]any{}}, "job-"+family, true)
			<-f.started
			e := newEngine(t, f, nil)
			req := request(family)
			img, _, err := render(t, e, WithJobID(context.Background(), "job-"+family), req)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if img.Width != req.Width || img.Height != req.Height || len(img.PNG) == 0 {
				t.Errorf("image %dx%d (%d bytes), want %dx%d", img.Width, img.Height, len(img.PNG), req.Width, req.Height)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if leftover.status != "canceled" {
				t.Errorf("leftover item of the same job is %s, want canceled", leftover.status)
			}
			it := f.items[2]
			if it.destination != "job-"+family {
				t.Errorf("destination %v, want the job id", it.destination)
			}
			if len(f.deleted) != 1 || len(f.images) != 0 {
				t.Errorf("deleted %v, left %d images: the downloaded image should be deleted", f.deleted, len(f.images))
			}
			checkGraphValues(t, family, it.graph, req)
		})
	}
}

// checkGraphValues spot-checks that the request's values reached the graph.
func checkGraphValues(t *testing.T, family string, g map[string]any, req engine.Request) {
	t.Helper()
	nodes := g["nodes"].(map[string]any)
	node := func(id string) map[string]any { return nodes[id].(map[string]any) }
	loader := node(nodeLoader)
	wantKey := map[string]string{catalog.ModelSD15: "k-sd15", catalog.ModelSDXL: "k-sdxl", catalog.ModelFlux: "k-flux"}[family]
	if loader["model"].(map[string]any)["key"] != wantKey {
		t.Errorf("loader model %v, want key %s", loader["model"], wantKey)
	}
	if family == catalog.ModelFlux {
		if loader["clip_embed_model"].(map[string]any)["key"] != "k-clipl" {
			t.Errorf("FLUX CLIP %v, want CLIP-L", loader["clip_embed_model"])
		}
		d := node(nodeDenoise)
		if d["num_steps"] != float64(req.Steps) || d["seed"] != float64(req.Seed) || d["guidance"] != req.CFGScale {
			t.Errorf("flux_denoise %v does not carry the request", d)
		}
		return
	}
	d, n := node(nodeDenoise), node("noise")
	if d["steps"] != float64(req.Steps) || d["cfg_scale"] != req.CFGScale || n["seed"] != float64(req.Seed) ||
		n["width"] != float64(req.Width) || n["height"] != float64(req.Height) {
		t.Errorf("denoise %v / noise %v do not carry the request", d, n)
	}
}

// Progress arrives over the socket, step by step; the item is read over
// HTTP only once, after the terminal event, and pings are answered.
func TestProgressOverSocket(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(f *fakeInvoke) {
		f.stepDelay = 15 * time.Millisecond
		f.pingInterval, f.pingTimeout = 30*time.Millisecond, 2*time.Second
	})
	e := newEngine(t, f, func(c *Config) { c.SocketPollInterval = time.Minute })
	req := request(catalog.ModelSDXL)
	req.Steps = 8
	_, pl, err := render(t, e, context.Background(), req)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	steps := pl.all()
	if len(steps) != req.Steps {
		t.Fatalf("progress %v: want one report per step", steps)
	}
	for i, p := range steps {
		if p.Step != i+1 || p.TotalSteps != req.Steps {
			t.Errorf("progress[%d] = %+v, want step %d of %d", i, p, i+1, req.Steps)
		}
		// The progress images InvokeAI sent come along with their step.
		if want := fmt.Sprintf("data:image/png;base64,step%d", p.Step); p.Step%2 == 0 &&
			(p.Preview == nil || p.Preview.DataURL != want || p.Preview.Width != 16) {
			t.Errorf("progress[%d] preview %+v, want %s", i, p.Preview, want)
		} else if p.Step%2 == 1 && p.Preview != nil {
			t.Errorf("progress[%d] carries a preview InvokeAI did not send on that step", i)
		}
	}
	if n := f.callCount("GET /api/v1/queue/{queue}/i/{id}"); n != 1 {
		t.Errorf("item polled %d times, want 1 (after the terminal event)", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pongMisses != 0 {
		t.Errorf("%d pings went unanswered", f.pongMisses)
	}
}

// While the item waits in the queue, polls repeat the last progress so
// the activity's heartbeat keeps beating.
func TestProgressRepeatsWhileQueued(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(f *fakeInvoke) { f.queueDelay = 200 * time.Millisecond })
	e := newEngine(t, f, func(c *Config) { c.SocketPollInterval = 20 * time.Millisecond })
	_, pl, err := render(t, e, context.Background(), request(catalog.ModelSD15))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	zero := 0
	for _, p := range pl.all() {
		if p.Step == 0 {
			zero++
		}
	}
	if zero < 2 {
		t.Errorf("progress %v: want repeated step-0 reports while queued", pl.all())
	}
}

// Without a socket the engine polls and still finishes with full progress.
func TestSocketUnavailableFallsBackToPolling(t *testing.T) {
	t.Parallel()
	for name, mode := range map[string]socketMode{"refused": socketRefuse, "dropped mid-render": socketDrop} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, func(f *fakeInvoke) { f.socket, f.stepDelay = mode, 5*time.Millisecond })
			// A slow safety poll: only the fallback can finish in time.
			e := newEngine(t, f, func(c *Config) { c.SocketPollInterval = time.Minute })
			req := request(catalog.ModelSDXL)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			img, pl, err := render(t, e, ctx, req)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			steps := pl.all()
			if img.Width != req.Width || len(steps) == 0 || steps[len(steps)-1].Step != req.Steps || steps[len(steps)-1].TotalSteps != req.Steps {
				t.Errorf("image width %d, progress %v", img.Width, steps)
			}
			if f.callCount("socket.io") != 1 || f.callCount("GET /api/v1/queue/{queue}/i/{id}") < 1 {
				t.Errorf("calls %v: want one socket attempt, then polling", f.calls)
			}
		})
	}
}

func TestCancelCancelsQueueItem(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(f *fakeInvoke) { f.hang = true })
	e := newEngine(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.Render(ctx, request(catalog.ModelSDXL), nil)
		done <- err
	}()
	var id int
	select {
	case id = <-f.started:
	case <-time.After(10 * time.Second):
		t.Fatal("item never started")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Render error %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Render did not return after cancel")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.cancels) != 1 || f.cancels[0] != id || f.items[id].status != "canceled" {
		t.Errorf("cancels %v, item status %s: want item %d canceled", f.cancels, f.items[id].status, id)
	}
}

func TestFailedItemsAreClassified(t *testing.T) {
	t.Parallel()
	cases := []struct {
		typ, msg    string
		invalid     bool
		sentinel    error
		description string
	}{
		{"OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB", false, ErrOutOfMemory, "CUDA OOM"},
		{"RuntimeError", "MPS backend out of memory", false, ErrOutOfMemory, "OOM in the message only"},
		{"RuntimeError", "CUDA error: an illegal memory access was encountered", false, ErrRenderFailed, "other runtime error"},
		{"ValidationError", "1 validation error for DenoiseLatentsInvocation", true, engine.ErrInvalidRequest, "validation"},
		{"UnknownModelException", "unknown model: k-gone", true, engine.ErrInvalidRequest, "unknown model"},
		// InvokeAI 6.x's own class names for a graph that can never run
		// (invokeai/app/invocations/baseinvocation.py, services/shared/graph.py).
		{"RequiredConnectionException", "Node denoise missing connections for field unet", true,
			engine.ErrInvalidRequest, "required connection"},
		{"MissingInputException", "Node noise missing value or connection for field width", true,
			engine.ErrInvalidRequest, "missing input"},
		{"NodeFieldNotFoundError", "Edge destination field steps2 does not exist in node denoise", true,
			engine.ErrInvalidRequest, "field not found"},
		{"CyclicalGraphError", "Graph contains cycles", true, engine.ErrInvalidRequest, "cycle"},
		{"NodeIdMismatchError", "Node ids must match, got a and b", true, engine.ErrInvalidRequest, "id mismatch"},
		{"InvalidFieldError", "Invalid field type", true, engine.ErrInvalidRequest, "invalid field"},
	}
	for _, c := range cases {
		t.Run(c.description, func(t *testing.T) {
			f := newFake(t, func(f *fakeInvoke) { f.failType, f.failMsg = c.typ, c.msg })
			e := newEngine(t, f, nil)
			_, err := e.Render(context.Background(), request(catalog.ModelSD15), nil)
			if err == nil || errors.Is(err, engine.ErrInvalidRequest) != c.invalid || !errors.Is(err, c.sentinel) {
				t.Errorf("error %v: want invalid=%v and %v", err, c.invalid, c.sentinel)
			}
			if err != nil && !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not quote InvokeAI's message", err)
			}
		})
	}
}

func TestHTTPFailuresAreClassified(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]error{422: engine.ErrInvalidRequest, 500: ErrUnavailable, 503: ErrUnavailable} {
		f := newFake(t, func(f *fakeInvoke) { f.enqueueStatus = status })
		_, err := newEngine(t, f, nil).Render(context.Background(), request(catalog.ModelSDXL), nil)
		if !errors.Is(err, want) || (want != engine.ErrInvalidRequest && errors.Is(err, engine.ErrInvalidRequest)) {
			t.Errorf("enqueue answered %d: error %v, want %v", status, err, want)
		}
		if status == 422 && !strings.Contains(err.Error(), "injected failure") {
			t.Errorf("422 error %q does not carry FastAPI's detail", err)
		}
	}
	// Nothing listens: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	e, err := New(Config{BaseURL: "http://" + addr, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Render(context.Background(), request(catalog.ModelSD15), nil); !errors.Is(err, ErrUnavailable) ||
		errors.Is(err, engine.ErrInvalidRequest) {
		t.Errorf("connection refused: error %v, want ErrUnavailable", err)
	}
}

func TestInvalidRequestsFailBeforeEnqueue(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	e := newEngine(t, f, nil)
	strict := newEngine(t, f, func(c *Config) { c.Models.SDXL = "not-installed" })
	bad := func(mut func(*engine.Request)) engine.Request {
		r := request(catalog.ModelSDXL)
		mut(&r)
		return r
	}
	for name, c := range map[string]struct {
		e   *Engine
		req engine.Request
	}{
		"unknown family":          {e, bad(func(r *engine.Request) { r.Model = "sd-3" })},
		"width not multiple of 8": {e, bad(func(r *engine.Request) { r.Width = 500 })},
		"flux height not 16x":     {e, bad(func(r *engine.Request) { r.Model, r.Height = catalog.ModelFlux, 520 })},
		"no steps":                {e, bad(func(r *engine.Request) { r.Steps = 0 })},
		"malformed graph":         {e, bad(func(r *engine.Request) { r.Graph = []byte(`{"nodes": [`) })},
		"graph without nodes":     {e, bad(func(r *engine.Request) { r.Graph = []byte(`{"id": "g"}`) })},
		"configured model absent": {strict, request(catalog.ModelSDXL)},
	} {
		if _, err := c.e.Render(context.Background(), c.req, nil); !errors.Is(err, engine.ErrInvalidRequest) {
			t.Errorf("%s: error %v, want engine.ErrInvalidRequest", name, err)
		}
	}
	if n := f.callCount("POST /api/v1/queue/{queue}/enqueue_batch"); n != 0 {
		t.Errorf("%d invalid requests were enqueued", n)
	}
}

// A raw graph (the shared SDXL sample) runs as given, with use_cache forced
// off on every node, and its image is found without knowing its node ids.
func TestRawGraph(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "..", "shared", "invokeai", "sdxl_t2i_batch.json"))
	if err != nil {
		testenv.Unavailable(t, "shared sdxl_t2i_batch.json: %v", err)
	}
	var sample struct {
		Batch struct {
			Graph map[string]any `json:"graph"`
		} `json:"batch"`
	}
	if err := json.Unmarshal(raw, &sample); err != nil {
		t.Fatal(err)
	}
	sample.Batch.Graph["nodes"].(map[string]any)["model_loader"].(map[string]any)["model"] = modelID{
		Key: "k-sdxl", Hash: "h-sdxl", Name: "stable-diffusion-xl-base-1.0", Base: "sdxl", Type: "main"}
	graph, _ := json.Marshal(sample.Batch.Graph)
	f := newFake(t)
	e := newEngine(t, f, func(c *Config) { c.KeepImages = true })
	img, pl, err := render(t, e, context.Background(), engine.Request{Graph: graph, Steps: 30})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if img.Width != 1024 || img.Height != 1024 {
		t.Errorf("image %dx%d, want the graph's 1024x1024", img.Width, img.Height)
	}
	if steps := pl.all(); len(steps) == 0 || steps[len(steps)-1].Step != 30 {
		t.Errorf("progress %v, want to end at 30 of 30", steps)
	}
	if n := f.callCount("GET /api/v2/models/{$}"); n != 0 {
		t.Errorf("a raw graph looked up models %d times", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.deleted) != 0 {
		t.Errorf("KeepImages: images %v were deleted", f.deleted)
	}
}

func TestModelCacheInMemory(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	e := newEngine(t, f, nil)
	for range 3 {
		if _, _, err := render(t, e, context.Background(), request(catalog.ModelSDXL)); err != nil {
			t.Fatalf("Render: %v", err)
		}
	}
	if n := f.callCount("GET /api/v2/models/{$}"); n != 1 {
		t.Errorf("models listed %d times for three renders, want 1", n)
	}
	// The model is reinstalled under a new key: the render that finds the
	// cached key stale looks it up again and succeeds.
	f.reinstall("k-sdxl", "k-sdxl-reinstalled")
	if _, _, err := render(t, e, context.Background(), request(catalog.ModelSDXL)); err != nil {
		t.Fatalf("render after reinstall: %v", err)
	}
	if n, m := f.callCount("GET /api/v2/models/{$}"), f.callCount("POST /api/v1/queue/{queue}/enqueue_batch"); n != 2 || m != 5 {
		t.Errorf("after reinstall: %d model lists (want 2), %d enqueues (want 5: one failed on the stale key)", n, m)
	}
}

// Model keys are shared through Redis under model_cache:{model_key} with a
// one-hour TTL; a stale key (the model was reinstalled) is dropped and
// resolved again within the same render.
func TestModelCacheRedis(t *testing.T) {
	t.Parallel()
	rdb := testenv.Redis(t)
	scope := "invokeai-test-" + uuid.NewString()
	t.Cleanup(func() { cleanRedis(t, rdb, "model_cache:"+scope+"*") })
	f := newFake(t)
	withRedis := func(c *Config) { c.Redis, c.CacheScope = rdb, scope }
	if _, _, err := render(t, newEngine(t, f, withRedis), context.Background(), request(catalog.ModelSDXL)); err != nil {
		t.Fatalf("first render: %v", err)
	}
	key := "model_cache:" + scope + "/sdxl/main/" + DefaultSDXLModel
	ttl, err := rdb.TTL(context.Background(), key).Result()
	if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("TTL of %s = %v (%v), want about an hour", key, ttl, err)
	}
	// A second worker (empty memory) finds the key in Redis.
	if _, _, err := render(t, newEngine(t, f, withRedis), context.Background(), request(catalog.ModelSDXL)); err != nil {
		t.Fatalf("second render: %v", err)
	}
	if n := f.callCount("GET /api/v2/models/{$}"); n != 1 {
		t.Errorf("models listed %d times, want 1: the second worker should hit Redis", n)
	}
	// Reinstalling the model gives it a new key; the cached one fails.
	f.reinstall("k-sdxl", "k-sdxl-reinstalled")
	if _, _, err := render(t, newEngine(t, f, withRedis), context.Background(), request(catalog.ModelSDXL)); err != nil {
		t.Fatalf("render after reinstall: %v", err)
	}
	var cached modelID
	raw, err := rdb.Get(context.Background(), key).Bytes()
	if err != nil || json.Unmarshal(raw, &cached) != nil || cached.Key != "k-sdxl-reinstalled" {
		t.Errorf("cache holds %s (%v), want the new key", raw, err)
	}
}

func cleanRedis(t *testing.T, rdb *redis.Client, pattern string) {
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, pattern).Result()
	if err != nil {
		t.Errorf("list test keys: %v", err)
		return
	}
	if len(keys) > 0 {
		if err := rdb.Del(ctx, keys...).Err(); err != nil {
			t.Errorf("delete test keys: %v", err)
		}
	}
}
