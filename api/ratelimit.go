package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-redis/redis_rate/v10"

	"github.com/easel/easel/internal/store"
)

// Rate limit classes: starting generations costs GPU time and is limited
// tighter than reading.
const (
	limitGenerate = "generate"
	limitRead     = "read"
)

// rateLimits are requests per minute per user, by plan and class.
var rateLimits = map[string]map[string]int{
	"free":       {limitGenerate: 10, limitRead: 120},
	"basic":      {limitGenerate: 30, limitRead: 300},
	"pro":        {limitGenerate: 120, limitRead: 1200},
	"enterprise": {limitGenerate: 600, limitRead: 6000},
}

// RateLimit returns the per-minute limit of a plan for a class (Free's for
// an unknown plan).
func RateLimit(plan, class string) int {
	if l, ok := rateLimits[plan]; ok {
		return l[class]
	}
	return rateLimits[store.FreePlan][class]
}

// rateLimit enforces the caller's plan limit for class with a GCRA limiter in
// Redis (redis_rate; key rate:ratelimit:{user_id}:{class}), its tokens taken
// a few at a time where the plan's rate allows (ratelease.go), answering 429 with
// Retry-After and RateLimit-* headers. A Redis outage lets requests through:
// the limit protects capacity, and the ledger, not the limiter, protects money.
func (s *Server) rateLimit(class string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.leases == nil {
			c.Next()
			return
		}
		u := user(c)
		plan, err := s.userPlan(c.Request.Context(), u.ID)
		if err != nil {
			unavailable(c, err)
			return
		}
		limit := RateLimit(plan.Slug, class)
		res, err := s.leases.Allow(c.Request.Context(), "ratelimit:"+u.ID+":"+class, redis_rate.PerMinute(limit))
		if err != nil {
			s.Log.WarnContext(c.Request.Context(), "rate limiter unavailable", "err", err)
			c.Next()
			return
		}
		c.Header("RateLimit-Limit", strconv.Itoa(limit))
		c.Header("RateLimit-Remaining", strconv.Itoa(res.Remaining))
		c.Header("RateLimit-Reset", strconv.Itoa(int(res.ResetAfter.Round(time.Second).Seconds())))
		if res.Allowed == 0 {
			retry := max(int(res.RetryAfter.Round(time.Second).Seconds()), 1)
			c.Header("Retry-After", strconv.Itoa(retry))
			problem(c, http.StatusTooManyRequests, "rate-limited", "Too many requests",
				"the "+plan.Name+" plan allows "+strconv.Itoa(limit)+" "+class+" requests a minute; retry in "+
					strconv.Itoa(retry)+" s", map[string]any{"limit": limit, "retry_after": retry})
			return
		}
		c.Next()
	}
}
