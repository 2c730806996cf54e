package api_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/api"
	"github.com/easel/easel/api/apitypes"
	"github.com/easel/easel/internal/authcache"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/devstack"
	"github.com/easel/easel/internal/devstack/temporalserver"
	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/engine/sim"
	"github.com/easel/easel/internal/gctune"
	"github.com/easel/easel/internal/objects"
	"github.com/easel/easel/internal/oidc"
	"github.com/easel/easel/internal/payments"
	"github.com/easel/easel/internal/progress"
	"github.com/easel/easel/internal/servedmodels"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
	"github.com/easel/easel/internal/webhook"
	"github.com/easel/easel/workers"
)

// stack is the whole product wired over real servers: Postgres, Redis,
// versitygw, an embedded Temporal server, the control worker, one sim GPU
// worker per tier and the API.
type stack struct {
	t        testing.TB
	store    *store.Store
	hub      *progress.Hub
	objects  *objects.Bucket
	temporal client.Client
	http     *httptest.Server
	issuer   *oidc.DevIssuer
	// deps and engine build every worker, through workers as in production.
	deps   workers.Deps
	engine engine.Engine

	mu  sync.Mutex
	gpu map[string]worker.Worker

	control     worker.Worker
	newControl  func() worker.Worker
	temporalSrv *temporalserver.Server // with temporalFile: restartable
	temporalOpt temporalserver.Options

	// With billing: stripe-mock behind a transport that settles payments.
	stripe        *devstack.StripeTransport
	webhookSecret string

	// newAPI builds another API instance over the same servers, with or
	// without the auth cache.
	newAPI func(t testing.TB, cached bool) *api.Server
}

// stackOptions widen the stack.
type stackOptions struct {
	billing bool      // serve subscriptions through stripe-mock
	logs    io.Writer // JSON logs of every component, at debug level (nil: discarded)
	// temporalFile keeps Temporal's state in a SQLite file, so that the
	// test can kill and restart the server (restartTemporal).
	temporalFile bool
	// temporalPostgres keeps Temporal's state in fresh Postgres databases
	// (as a production cluster) instead of SQLite.
	temporalPostgres bool
	// afterAdmit runs after each hold's commit, before the workflow task
	// that took it completes: a fault hook for crash tests.
	afterAdmit func(ctx context.Context, jobID string)
	// renderHeartbeat is the heartbeat timeout of renders (0: 5 s, so that
	// a lost worker's job is retried soon).
	renderHeartbeat time.Duration
}

func newStack(t testing.TB, stepDelay time.Duration) *stack {
	t.Helper()
	return newStackWith(t, stepDelay, stackOptions{})
}

func newStackWith(t testing.TB, stepDelay time.Duration, opts stackOptions) *stack {
	t.Helper()
	if b, ok := t.(*testing.B); ok {
		serverGC(b)
	}
	ctx := context.Background()
	dbURL := testenv.PostgresURL(t)
	pool, err := store.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// The API works as the easel_api role, under row-level security, as in
	// production; workers and the tests' own checks use the owner's pool.
	apiPool, err := store.ConnectScoped(ctx, dbURL, store.APIRole)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(apiPool.Close)
	apiStore := store.NewScoped(apiPool)
	rdb := testenv.Redis(t)
	objects, err := objects.New(ctx, testenv.S3(t))
	if err != nil {
		t.Fatal(err)
	}
	temporalOpt := temporalserver.Options{SearchAttributes: api.SearchAttributes}
	if opts.temporalFile {
		temporalOpt.DatabaseFile = filepath.Join(t.TempDir(), "temporal.db")
	}
	if opts.temporalPostgres {
		temporalOpt.Postgres = testenv.TemporalPostgres(t)
	}
	temporalSrv, tc := testenv.TemporalServer(t, temporalOpt)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if opts.logs != nil {
		log = slog.New(slog.NewJSONHandler(opts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s := &stack{t: t, store: store.New(pool), hub: progress.NewHub(rdb), objects: objects, temporal: tc,
		gpu: map[string]worker.Worker{}, temporalSrv: temporalSrv, temporalOpt: temporalOpt}
	s.engine = sim.New(sim.Config{StepDelay: stepDelay})
	// Without Stripe the control worker still bills free subscriptions.
	// Webhook receivers are httptest servers on this machine; retries and
	// timeouts are short.
	s.deps = workers.Deps{Temporal: tc, Store: s.store, Redis: rdb, Progress: s.hub, Objects: objects,
		ProgressEvery: 10 * time.Millisecond, PreviewEvery: 10 * time.Millisecond, Log: log,
		ServedModels: &servedmodels.Registry{Redis: rdb, Scope: "test-" + uuid.NewString()},
		WebhookGuard: webhook.Guard{AllowLocal: true}, WebhookFirstRetry: 200 * time.Millisecond, WebhookTimeout: time.Second}
	if opts.billing {
		s.stripe = &devstack.StripeTransport{}
		s.webhookSecret = "whsec_easel_test"
		s.deps.Payments = payments.New(testenv.StripeMockKey, testenv.StripeMock(t),
			&http.Client{Transport: s.stripe, Timeout: 10 * time.Second})
	}
	s.newControl = func() worker.Worker {
		w := workers.NewControl(s.deps)
		w.Ledger.AfterAdmit = opts.afterAdmit
		return w
	}
	s.control = s.newControl()
	if err := s.control.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.control.Stop()
	})
	for _, tier := range catalog.TierNames() {
		s.startGPU(tier)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, w := range s.gpu {
			w.Stop()
		}
	})
	// Users sign in with ID tokens from the development issuer, served by the
	// API under test and verified through its JWKS like Cognito's.
	// The verifier fetches the issuer's keys from this server while the
	// router is still being built: requests wait for it.
	var router http.Handler
	routerReady := make(chan struct{})
	s.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-routerReady
		router.ServeHTTP(w, r)
	}))
	t.Cleanup(s.http.Close)
	key, err := oidc.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if s.issuer, err = oidc.NewDevIssuer(s.http.URL+"/dev/oidc", "easel-test", key); err != nil {
		t.Fatal(err)
	}
	verifierCtx, stopVerifier := context.WithCancel(context.Background())
	t.Cleanup(stopVerifier)
	verifier, err := oidc.NewVerifier(verifierCtx, s.issuer.Config())
	if err != nil {
		t.Fatal(err)
	}
	// Each API instance of the stack is built the same way and hears
	// changes on its own connection, as separate processes would.
	s.newAPI = func(t testing.TB, cached bool) *api.Server {
		srv := &api.Server{Store: apiStore, Temporal: tc, Progress: s.hub, Redis: rdb, Objects: objects,
			ServedModels: s.deps.ServedModels, Auth: &api.Tokens{Verifier: verifier, Store: apiStore}, Log: log, Version: "test", PresignTTL: time.Hour,
			RenderHeartbeat: cmp.Or(opts.renderHeartbeat, 5*time.Second), DevIssuer: s.issuer.Handler(), Limiter: redis_rate.NewLimiter(rdb),
			Payments: s.deps.Payments, StripeWebhookSecret: s.webhookSecret, WebhookGuard: s.deps.WebhookGuard,
			WebhookFirstRetry: s.deps.WebhookFirstRetry, AuthCache: &authcache.Set{}}
		if opts.billing {
			srv.Billing = &activities.Billing{Store: s.store, Log: log}
		}
		if !cached {
			srv.AuthCache = nil
			return srv
		}
		listenCtx, stopListening := context.WithCancel(context.Background())
		listening := make(chan struct{})
		go func() {
			defer close(listening)
			authcache.Listen(listenCtx, dbURL, srv.AuthCache, log)
		}()
		t.Cleanup(func() { stopListening(); <-listening })
		return srv
	}
	srv := s.newAPI(t, true)
	h, err := srv.Handler()
	if err != nil {
		t.Fatal(err)
	}
	router = h
	close(routerReady)
	s.waitReady()
	return s
}

// crash stops the Temporal server and the control worker at once, as a
// kill -9 of the process that runs both would; the worker's tasks in flight
// are lost. The server comes back with restartTemporal.
func (s *stack) crash() {
	s.t.Helper()
	if err := s.temporalSrv.Stop(); err != nil {
		s.t.Errorf("stop temporal: %v", err)
	}
	s.mu.Lock()
	w := s.control
	s.mu.Unlock()
	go w.Stop() // returns once its tasks in flight give up
}

// restartTemporal starts the server again on its state file and port, with
// a new control worker; the clients reconnect on their own.
func (s *stack) restartTemporal() {
	s.t.Helper()
	opt := s.temporalOpt
	_, port, _ := net.SplitHostPort(s.temporalSrv.HostPort())
	opt.Port, _ = strconv.Atoi(port)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := temporalserver.Start(ctx, opt)
	if err != nil {
		s.t.Fatalf("restart temporal: %v", err)
	}
	s.t.Cleanup(func() { _ = srv.Stop() })
	w := s.newControl()
	if err := w.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.temporalSrv, s.control = srv, w
	s.mu.Unlock()
}

// waitReady waits until the API reports ready (its key set has loaded), as
// a load balancer would before routing to it.
func (s *stack) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.http.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the API never became ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *stack) startGPU(tier string) { s.startGPUWith(tier, s.engine) }

func (s *stack) startGPUWith(tier string, eng engine.Engine) {
	s.t.Helper()
	w := workers.NewGPU(s.deps, tier, eng, workers.GPUOptions{Slots: 2})
	if err := w.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.gpu[tier] = w
	s.mu.Unlock()
}

func (s *stack) stopGPU(tier string) {
	s.mu.Lock()
	w := s.gpu[tier]
	delete(s.gpu, tier)
	s.mu.Unlock()
	w.Stop()
}

// newUser creates a user on plan with credits and returns its token.
func (s *stack) newUser(t testing.TB, plan string, credits int) (store.User, string) {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	u, err := s.store.UpsertUser(ctx, id+"@example.com", "User "+id[:8], "sub-"+id)
	if err != nil {
		t.Fatal(err)
	}
	if plan != store.FreePlan {
		if err := s.store.Subscribe(ctx, u.ID, plan, "cus_test", time.Now().AddDate(0, 1, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if credits > 0 {
		if _, err := s.store.Grant(ctx, store.GrantInput{UserID: u.ID, Amount: credits, Source: "test",
			ValidFrom: time.Now().Add(-time.Minute), ValidUntil: time.Now().Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	token, err := s.issuer.Sign(oidc.Identity{Subject: u.CognitoSub, Email: u.Email, Name: u.Name}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return u, token
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (s *stack) do(t *testing.T, method, path, token string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.http.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	checkContract(t, req, resp.StatusCode, resp.Header, b, true)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// event is one SSE event as clients read it: the contract's type.
type event = apitypes.GenerationEvent

// events reads the job's SSE stream to its end.
func (s *stack) events(t *testing.T, id, token string) []event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.http.URL+"/v1/generations/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	checkContract(t, req, resp.StatusCode, resp.Header, nil, false)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("events: %d %s", resp.StatusCode, ct)
	}
	var out []event
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		checkEventData(t, []byte(data))
		var st event
		if err := json.Unmarshal([]byte(data), &st); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		out = append(out, st)
	}
	return out
}

// waitStatus polls the job until pred holds.
func (s *stack) waitGeneration(t *testing.T, id, token string, pred func(api.GenerationView) bool) api.GenerationView {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var g api.GenerationView
		r := s.do(t, http.MethodGet, "/v1/generations/"+id, token, nil)
		if r.status != http.StatusOK {
			t.Fatalf("get generation: %d %s", r.status, r.body)
		}
		r.decode(t, &g)
		if pred(g) {
			return g
		}
		if time.Now().After(deadline) {
			t.Fatalf("generation %s never reached the expected state; last %+v", id, g)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func terminal(g api.GenerationView) bool {
	return g.Status == catalog.JobCompleted || g.Status == catalog.JobFailed || g.Status == catalog.JobCanceled
}

type credits = apitypes.Credits

func (s *stack) credits(t *testing.T, token string) credits {
	t.Helper()
	var c credits
	r := s.do(t, http.MethodGet, "/v1/credits", token, nil)
	if r.status != http.StatusOK {
		t.Fatalf("credits: %d %s", r.status, r.body)
	}
	r.decode(t, &c)
	return c
}

// serverGC runs a benchmark with the garbage collector's settings of
// `easel api` and `easel dev` (internal/gctune), GOGC and GOMEMLIMIT from
// the environment included, so that GOGC=100 measures Go's default.
func serverGC(b *testing.B) {
	percent, limit := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(percent)
	gctune.Apply(slog.New(slog.DiscardHandler))
	b.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
}
