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
