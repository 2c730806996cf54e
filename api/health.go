package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// health checks every backing service in parallel and answers 503 naming
// the ones that failed.
func (s *Server) health(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]func(context.Context) error{
		"postgres": func(ctx context.Context) error { return s.Store.Pool().Ping(ctx) },
		"redis":    func(ctx context.Context) error { return s.Redis.Ping(ctx).Err() },
		"temporal": func(ctx context.Context) error { _, err := s.Temporal.CheckHealth(ctx, nil); return err },
		"s3":       s.Objects.Ping,
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	results := make(map[string]string, len(checks))
	healthy := true
	for name, check := range checks {
		wg.Go(func() {
			err := check(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				healthy = false
				results[name] = "error: " + err.Error()
				return
			}
			results[name] = "ok"
		})
	}
	wg.Wait()
	status := http.StatusOK
	if !healthy {
		status = http.StatusServiceUnavailable
	}
	c.JSON(status, gin.H{"status": map[bool]string{true: "ok", false: "degraded"}[healthy], "checks": results})
}

// ready is the load balancer's readiness check: 200 once every ReadyChecks
// entry passes (the OIDC key set has loaded, so tokens can be verified),
// else 503 naming what is missing. It calls no backing service, so a brief
// database hiccup does not pull every API process out of the load balancer
// at once; /healthz is the deep check.
func (s *Server) ready(c *gin.Context) {
	results := make(map[string]string, len(s.ReadyChecks))
	ready := true
	for name, check := range s.ReadyChecks {
		if err := check(); err != nil {
			ready = false
			results[name] = "waiting: " + err.Error()
			continue
		}
		results[name] = "ok"
	}
	if !ready {
		c.Header("Retry-After", "2")
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "not ready", "checks": results})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "checks": results})
}
