// Package invokeai is an engine.Engine that drives an InvokeAI server on the
// GPU host over its HTTP API: it builds a text-to-image, image-to-image or
// inpainting graph (uploading the init image and mask first), or takes the
// caller's raw graph, enqueues it as a one-run batch, follows the queue item
// over socket.io (falling back to HTTP polling), and downloads the PNG.
//
// It has been exercised only against a protocol test server that follows
// InvokeAI's OpenAPI document, not against a live InvokeAI.
package invokeai

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultQueueID            = "default"
	DefaultPollInterval       = time.Second
	DefaultSocketPollInterval = 5 * time.Second
	DefaultRequestTimeout     = 30 * time.Second
	DefaultCacheTTL           = time.Hour
	DefaultScheduler          = "dpmpp_2m_k"
	DefaultFluxScheduler      = "euler"
	// Default model names, as InvokeAI 6.x names them: a Hugging Face
	// diffusers install takes its repository's name
	// (stable-diffusion-v1-5/stable-diffusion-v1-5,
	// stabilityai/stable-diffusion-xl-base-1.0), a starter model its
	// starter name. When the model by that name is not installed the engine
	// falls back to the first installed model of the family (by name; for
	// FLUX never a Fill or Kontext model); a name set in Config.Models is
	// used strictly, with no fallback.
	DefaultSD15Model = "stable-diffusion-v1-5"
	DefaultSDXLModel = "stable-diffusion-xl-base-1.0"
	DefaultFluxModel = "FLUX.1 schnell (quantized)"
)

// Config says where InvokeAI is and how to use it. Only BaseURL is required.
type Config struct {
	// BaseURL is the InvokeAI server, e.g. http://127.0.0.1:9090.
	BaseURL string
	// HTTPClient makes every request, the websocket handshake included.
	// Nil means a client with no overall timeout: each call is bounded by
	// RequestTimeout instead, so long downloads are not cut short.
	HTTPClient *http.Client
	// Redis, when set, shares resolved model keys between workers of one
	// host (and survives restarts) under model_cache:{model_key}; nil keeps
	// the cache in memory only.
	Redis *redis.Client
	// PollInterval is how often the queue item is polled over HTTP while the
	// socket is down or unavailable.
	PollInterval time.Duration
	// SocketPollInterval is how often the item is polled while the socket is
	// up, as a safety net for missed events; each poll also repeats the last
	// progress so the caller's heartbeat keeps beating while the item waits.
	SocketPollInterval time.Duration
	// RequestTimeout bounds each HTTP call and the socket handshake.
	RequestTimeout time.Duration
	// QueueID is the InvokeAI session queue (default "default").
	QueueID string
	// Token is a bearer token for InvokeAI's multi-user mode (a JWT from
	// POST /api/v1/auth/login). Without Email and Password it cannot be
	// renewed: it works until its exp, and then every render fails with
	// ErrUnauthorized.
	Token string
	// Email and Password, for InvokeAI's multi-user mode, let the engine
	// log in itself and renew its token before it expires.
	Email, Password string
	// Models names the model to use per family and the FLUX submodels.
	Models ModelNames
	// Scheduler is the denoise_latents scheduler for SD1.5 and SDXL.
	Scheduler string
	// FluxScheduler is the flux_denoise scheduler.
	FluxScheduler string
	// CacheScope distinguishes InvokeAI installs in the shared cache: model
	// keys are random per install, so two hosts must never share entries.
	// Default: this host's name and BaseURL.
	CacheScope string
	// CacheTTL is how long a resolved model key is trusted (default 1 h).
	CacheTTL time.Duration
	// KeepImages leaves rendered images in InvokeAI's gallery; by default
	// they are deleted once downloaded so the GPU host's disk does not fill.
	KeepImages bool
	// DisableSocket follows items by HTTP polling only.
	DisableSocket bool
	// Logger receives warnings (socket fallback, cache errors); nil means
	// slog.Default().
	Logger *slog.Logger
}

// ModelNames are InvokeAI model names (as shown in its model manager). Empty
// fields use the defaults described at DefaultSD15Model.
type ModelNames struct {
	SD15 string
	SDXL string
	Flux string
	// FLUX submodels; empty means the first installed one of that kind, or
	// none when none is installed (diffusers FLUX models bundle their own).
	FluxT5Encoder string
	FluxCLIPEmbed string
	FluxVAE       string
}

// Engine renders through InvokeAI. It is safe for concurrent use.
type Engine struct {
	cfg Config
	api *apiClient
	// peers are the other InvokeAI servers of this host (NewPerDevice),
	// where a lost attempt of a job may have left items.
	peers  []*apiClient
	models *resolver
	log    *slog.Logger
	// renders is shared by the engines of a host (see ListenRetries).
	renders *renders
}

var _ engine.Engine = (*Engine)(nil)

// New validates cfg, fills in defaults and returns an engine. It does not
// contact the server: a GPU worker may start before InvokeAI is ready.
func New(cfg Config) (*Engine, error) {
	base, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	cfg.setDefaults()
	api := &apiClient{base: base, http: cfg.HTTPClient, auth: newAuth(cfg.Token, cfg.Email, cfg.Password),
		timeout: cfg.RequestTimeout}
	res := &resolver{api: api, redis: cfg.Redis, scope: cfg.CacheScope, ttl: cfg.CacheTTL,
		log: cfg.Logger, mem: map[string]memEntry{}}
	return &Engine{cfg: cfg, api: api, models: res, log: cfg.Logger, renders: newRenders()}, nil
}

// NewPerDevice builds one engine per InvokeAI server of the host, in GPU
// (NVML index) order: each render goes to the server of its device, and
// each engine cancels a job's leftover items on all of the servers.
func NewPerDevice(cfgs []Config) (engine.PerDevice, error) {
	engines := make([]*Engine, 0, len(cfgs))
	for i, cfg := range cfgs {
		e, err := New(cfg)
		if err != nil {
			return nil, fmt.Errorf("server %d: %w", i, err)
		}
		engines = append(engines, e)
	}
	per := make(engine.PerDevice, 0, len(engines))
	host := newRenders()
	for i, e := range engines {
		e.renders = host
		for j, other := range engines {
			if j != i {
				e.peers = append(e.peers, other.api)
			}
		}
		per = append(per, e)
	}
	return per, nil
}

func (c *Config) validate() (*url.URL, error) {
	if c.BaseURL == "" {
		return nil, errors.New("invokeai: BaseURL is required (e.g. http://127.0.0.1:9090)")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("invokeai: BaseURL %q: %w", c.BaseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invokeai: BaseURL %q must be an http(s) URL with a host", c.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("invokeai: BaseURL %q must not have a query or fragment", c.BaseURL)
	}
	if (c.Email == "") != (c.Password == "") {
		return nil, errors.New("invokeai: Email and Password go together (multi-user mode login)")
	}
	for name, d := range map[string]time.Duration{"PollInterval": c.PollInterval,
		"SocketPollInterval": c.SocketPollInterval, "RequestTimeout": c.RequestTimeout, "CacheTTL": c.CacheTTL} {
		if d < 0 {
			return nil, fmt.Errorf("invokeai: %s must not be negative (got %s)", name, d)
		}
	}
	return u, nil
}

func (c *Config) setDefaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.SocketPollInterval, DefaultSocketPollInterval)
	def(&c.RequestTimeout, DefaultRequestTimeout)
	def(&c.CacheTTL, DefaultCacheTTL)
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.QueueID == "" {
		c.QueueID = DefaultQueueID
	}
	if c.Scheduler == "" {
		c.Scheduler = DefaultScheduler
	}
	if c.FluxScheduler == "" {
		c.FluxScheduler = DefaultFluxScheduler
	}
	if c.CacheScope == "" {
		host, _ := os.Hostname()
		c.CacheScope = host + "|" + c.BaseURL
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Models resolves every family's models now, as a render would (without
// the cache), and says what each family renders with: the model names, or
// why the family cannot render. The worker logs it at start.
func (e *Engine) Models(ctx context.Context) map[string]string {
	out := make(map[string]string, len(catalog.ModelFamilies()))
	for _, family := range catalog.ModelFamilies() {
		qs, models, err := e.resolveFamily(ctx, family)
		if err != nil {
			out[family] = "unavailable: " + err.Error()
			continue
		}
		names := make([]string, 0, len(models))
		for i, m := range models {
			if m.Key != "" {
				names = append(names, qs[i].Type+" "+strconv.Quote(m.Name))
			}
		}
		out[family] = strings.Join(names, ", ")
	}
	return out
}

// Served is engine.ModelLister: each family's main model, resolved now as
// a render would, or why the family cannot render.
func (e *Engine) Served(ctx context.Context) engine.Served {
	out := make(engine.Served, len(catalog.ModelFamilies()))
	for _, family := range catalog.ModelFamilies() {
		_, models, err := e.resolveFamily(ctx, family)
		if err != nil {
			out[family] = engine.Family{Problem: err.Error()}
			continue
		}
		out[family] = engine.Family{Models: []string{models[0].Name}}
	}
	return out
}

// resolveFamily resolves a family's queries, the main model first.
func (e *Engine) resolveFamily(ctx context.Context, family string) ([]modelQuery, []modelID, error) {
	qs := e.queries(family)
	models, _, err := e.resolveModels(ctx, family, qs, true)
	return qs, models, err
}

// Name identifies the engine in logs and metrics.
func (e *Engine) Name() string { return "invokeai" }

// WithJobID is engine.WithJobID: Render puts the job id in the batch's
// destination, so an operator can find a job's queue items in InvokeAI and a
// retry can cancel what an earlier, lost attempt left queued.
func WithJobID(ctx context.Context, jobID string) context.Context {
	return engine.WithJobID(ctx, jobID)
}

// JobID returns the job id of ctx (engine.JobID).
func JobID(ctx context.Context) string { return engine.JobID(ctx) }

// Render renders one image. Errors wrap engine.ErrInvalidRequest when the
// request can never succeed; ErrUnavailable, ErrOutOfMemory or
// ErrRenderFailed when another attempt may; and the context's error when
// ctx ends (after the queue item has been cancelled).
func (e *Engine) Render(ctx context.Context, req engine.Request, onProgress func(engine.Progress)) (engine.Image, error) {
	if onProgress == nil {
		onProgress = func(engine.Progress) {}
	}
	if err := validate(req); err != nil {
		return engine.Image{}, err
	}
	if jobID := JobID(ctx); jobID != "" {
		defer e.renders.begin(jobID, attemptOf(ctx))()
	}
	src, cleanup, err := e.uploadSources(ctx, req)
	defer cleanup()
	if err != nil {
		return engine.Image{}, err
	}
	img, err := e.attempt(ctx, req, src, onProgress, false)
	if errors.Is(err, errStaleModel) {
		// A cached model key no longer exists (the model was reinstalled):
		// look the models up afresh and run once more.
		e.log.WarnContext(ctx, "invokeai: cached model key is stale; resolving again", "err", err)
		img, err = e.attempt(ctx, req, src, onProgress, true)
	}
	return img, err
}

// attempt resolves models, enqueues and follows one queue item to its image.
func (e *Engine) attempt(ctx context.Context, req engine.Request, src sources, onProgress func(engine.Progress), fresh bool) (engine.Image, error) {
	p, err := e.plan(ctx, req, src, fresh)
	if err != nil {
		return engine.Image{}, err
	}
	sock := e.openSocket(ctx)
	defer sock.Close()
	itemID, err := e.enqueue(ctx, p)
	if err != nil {
		return engine.Image{}, err
	}
	item, err := e.follow(ctx, sock, itemID, p, onProgress)
	if err != nil {
		return engine.Image{}, e.itemFailure(ctx, p, err)
	}
	return e.fetchOutput(ctx, p, item)
}

// itemFailure turns a failure that names a missing model into errStaleModel
// when the model keys came from the cache, after dropping those entries.
func (e *Engine) itemFailure(ctx context.Context, p *plan, err error) error {
	if !errors.Is(err, errUnknownModel) {
		return err
	}
	if p.cached {
		e.models.forget(ctx, p.queries...)
		return fmt.Errorf("%w: %w", errStaleModel, err)
	}
	return fmt.Errorf("%w: %w", engine.ErrInvalidRequest, err)
}
