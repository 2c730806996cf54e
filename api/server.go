// Package api is Easel's HTTP front door: a gin router whose handlers
// authenticate the caller, validate and price requests, start generation
// workflows and read the user's jobs, images and credits. Errors are
// application/problem+json.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-redis/redis_rate/v10"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.temporal.io/sdk/client"

	"github.com/easel/easel/activities"
	"github.com/easel/easel/internal/authcache"
	"github.com/easel/easel/internal/objects"
	"github.com/easel/easel/internal/payments"
	"github.com/easel/easel/internal/progress"
	"github.com/easel/easel/internal/servedmodels"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/webhook"
)

// Server holds the API's dependencies.
type Server struct {
	Store    *store.Store
	Temporal client.Client
	Progress *progress.Hub
	Redis    *redis.Client
	// ServedModels is where GPU workers report the families they serve;
	// nil refuses no family for want of a worker.
	ServedModels *servedmodels.Registry
	Objects      *objects.Bucket
	Auth         Authenticator
	Log          *slog.Logger
	Version      string
	PresignTTL   time.Duration
	// Stopping is closed when the process begins to shut down: event
	// streams then end at once, so the HTTP server's drain need not wait
	// for them. Nil: they end with their requests.
	Stopping <-chan struct{}
	// MaxBodyBytes bounds request bodies (default 64 KiB).
	MaxBodyBytes int64
	// RenderHeartbeat is passed to new generation workflows (0: their default).
	RenderHeartbeat time.Duration
	// Limiter enforces per-plan request rates (nil: no limits), through
	// leases of its tokens (ratelease.go).
	Limiter  *redis_rate.Limiter
	leases   *leases
	renewals keyedLocks // admin renewals under way, one per subscription
	// ImageURLs, when set, signs image links on the CDN (CloudFront)
	// instead of presigning them on S3: links that show an object, and
	// links that save it as a file.
	ImageURLs interface {
		SignedURL(key string, ttl time.Duration) (string, error)
		SignedDownloadURL(key, filename string, ttl time.Duration) (string, error)
	}
	// Payments talks to Stripe for subscriptions: customers and saved cards
	// (nil: paid plans answer 503).
	Payments *payments.Gateway
	// Billing applies the refunds and disputes Stripe reports for a
	// subscription that has already ended, through the same idempotent
	// activities its workflow uses (nil: such events change nothing).
	Billing *activities.Billing
	// StripeWebhookSecret verifies POST /v1/webhooks/stripe ("" disables it).
	StripeWebhookSecret string
	// TrialDays is the free trial a new paid subscription gets (0: none).
	TrialDays int
	// AdmitTimeout bounds the wait for a generation's admission (default
	// 30 s); past it the request is answered 503 with Retry-After.
	AdmitTimeout time.Duration
	// ReadyChecks must all answer nil for GET /readyz to answer 200 (e.g.
	// the OIDC key set has loaded); the load balancer routes by it.
	ReadyChecks map[string]func() error
	// DevIssuer, when set, is served under /dev/oidc: the development OIDC
	// issuer (JWKS and a login endpoint). Never set in production.
	DevIssuer http.Handler
	// App, when set, is the web app served at / and its client-side paths.
	App *App
	// WebhookGuard checks the URLs of customers' webhooks (its zero value:
	// https and public addresses only).
	WebhookGuard webhook.Guard
	// WebhookFirstRetry is the first retry wait of the deliveries the API
	// starts (replays; 0: the default).
	WebhookFirstRetry time.Duration
	// AuthCache, when set, keeps whom a token authenticates and each
	// user's plan in memory for a few seconds; authcache.Listen must run on
	// it, or it caches nothing.
	AuthCache *authcache.Set
	users     *authcache.Cache[store.User]
	planCache *authcache.Cache[store.Plan]
}

const (
	ctxRequestID  = "request_id"
	ctxUser       = "user"
	ctxJobID      = "job_id"
	ctxWorkflowID = "workflow_id"
)

// logIDs puts the job and workflow a request concerns on its access log
// line ("" leaves one out).
func logIDs(c *gin.Context, jobID, workflowID string) {
	if jobID != "" {
		c.Set(ctxJobID, jobID)
	}
	if workflowID != "" {
		c.Set(ctxWorkflowID, workflowID)
	}
}

// Router builds the HTTP handler.
func (s *Server) Router() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(s.requestID, s.measure, s.accessLog, s.recover, s.guardInput)
	// The web app is served by the fallback, not by registered routes: its
	// paths are the app's own (client-side routing), not the API's.
	r.NoRoute(func(c *gin.Context) {
		if !s.App.serve(c) {
			notFound(c, "route")
		}
	})
	r.NoMethod(func(c *gin.Context) {
		// gin lists the registered methods; HEAD is answered wherever GET
		// is (headAsGet), so it is allowed there too.
		if allow := c.Writer.Header().Get("Allow"); slices.Contains(strings.Split(allow, ", "), http.MethodGet) {
			c.Header("Allow", allow+", "+http.MethodHead)
		}
		problem(c, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", c.Request.Method+" is not allowed here", nil)
	})

	r.GET("/api/v1/app/version", s.version)
	r.GET("/healthz", s.health)
	r.GET("/readyz", s.ready)
	r.GET("/metrics", metricsHandler())
	if s.DevIssuer != nil {
		r.Any("/dev/oidc/*path", gin.WrapH(http.StripPrefix("/dev/oidc", s.DevIssuer)))
	}

	if s.Limiter != nil && s.leases == nil {
		s.leases = newLeases(s.Limiter)
	}
	s.Auth = WithAPIKeys(s.Auth, s.Store)
	if s.AuthCache != nil && s.users == nil {
		s.users = authcache.New[store.User](s.AuthCache)
		s.planCache = authcache.New[store.Plan](s.AuthCache)
		s.Auth = cachedAuth{next: s.Auth, users: s.users}
	}
	r.GET("/v1/plans", s.plans)
	r.GET("/v1/openapi.json", s.serveContract(false))
	r.GET("/v1/docs", s.serveContract(true))
	r.POST("/v1/webhooks/stripe", s.stripeWebhook)
	auth := r.Group("/v1", s.authenticate, s.requireScope)
	auth.POST("/generations", s.rateLimit(limitGenerate), s.createGeneration)
	v1 := auth.Group("", s.rateLimit(limitRead))
	s.RegisterAPIKeyRoutes(v1)
	s.RegisterUsageRoutes(v1)
	s.RegisterAdminRoutes(v1)
	s.RegisterSubscriptionRoutes(v1)
	s.RegisterWebhookRoutes(v1)
	v1.GET("/generations", s.listGenerations)
	v1.GET("/generations/:id", s.getGeneration)
	v1.GET("/generations/:id/events", s.generationEvents)
	v1.DELETE("/generations/:id", s.cancelGeneration)
	v1.GET("/images", s.listImages)
	v1.GET("/images/:name", s.getImage)
	v1.PATCH("/images/:name", s.starImage)
	v1.DELETE("/images/:name", s.deleteImage)
	v1.POST("/images/bulk-delete", s.bulkDeleteImages)
	v1.POST("/uploads", s.createUpload)
	v1.GET("/uploads", s.listUploads)
	v1.GET("/uploads/:id", s.getUpload)
	v1.DELETE("/uploads/:id", s.deleteUpload)
	v1.GET("/credits", s.credits)
	v1.GET("/models", s.listModels)
	v1.POST("/quote", s.quote)
	v1.GET("/me", s.me)
	return r
}

func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if id == "" || len(id) > 128 {
		id = uuid.NewString()
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-Id", id)
	c.Next()
}

func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	attrs := []any{"request_id", c.GetString(ctxRequestID), "method", c.Request.Method,
		"route", c.FullPath(), "status", c.Writer.Status(), "duration_ms", time.Since(start).Milliseconds()}
	if u, ok := c.Get(ctxUser); ok {
		attrs = append(attrs, "user_id", u.(store.User).ID)
	}
	for _, k := range []string{ctxJobID, ctxWorkflowID} {
		if v := c.GetString(k); v != "" {
			attrs = append(attrs, k, v)
		}
	}
	if len(c.Errors) > 0 {
		attrs = append(attrs, "err", c.Errors.String())
	}
	level := slog.LevelInfo
	if c.Writer.Status() >= 500 {
		level = slog.LevelError
	}
	s.Log.Log(c.Request.Context(), level, "http request", attrs...)
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			s.Log.ErrorContext(c.Request.Context(), "handler panic", "request_id", c.GetString(ctxRequestID), "panic", p)
			if !c.Writer.Written() {
				problem(c, http.StatusInternalServerError, "internal", "Internal error", "", nil)
			}
		}
	}()
	c.Next()
	// A success whose body could not be encoded (gin records the error and
	// writes nothing) would otherwise go out as an empty 200.
	if st := c.Writer.Status(); !c.Writer.Written() && len(c.Errors) > 0 && st < http.StatusBadRequest && st != http.StatusNoContent && st != http.StatusNotModified {
		c.Writer.Header().Del("Content-Type") // the failed render's
		problem(c, http.StatusInternalServerError, "internal", "Internal error", "the answer could not be written", nil)
	}
}

func (s *Server) version(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"version": s.Version})
}

func user(c *gin.Context) store.User { return c.MustGet(ctxUser).(store.User) }

// detached keeps request values but not the request's cancellation, for work
// that must finish even if the client goes away.
func detached(c *gin.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(c.Request.Context()), d)
}
