package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/easel/easel/store"
)

// PlanView is a plan with its request limits.
type PlanView struct {
	store.Plan
	RateLimits map[string]int `json:"rate_limits_per_minute"`
}

func planView(p store.Plan) PlanView {
	return PlanView{Plan: p, RateLimits: map[string]int{
		limitGenerate: RateLimit(p.Slug, limitGenerate), limitRead: RateLimit(p.Slug, limitRead)}}
}

func (s *Server) plans(c *gin.Context) {
	plans, err := s.Store.Plans(c.Request.Context())
	if err != nil {
		unavailable(c, err)
		return
	}
	views := make([]PlanView, 0, len(plans))
	for _, p := range plans {
		views = append(views, planView(p))
	}
	c.JSON(http.StatusOK, gin.H{"plans": views})
}

// me answers who the caller is: account, plan and limits, balance, usage
// this calendar month (UTC) and storage used against the plan's quota.
func (s *Server) me(c *gin.Context) {
	ctx := c.Request.Context()
	u := user(c)
	plan, err := s.Store.UserPlan(ctx, u.ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	bal, err := s.balance(ctx, u.ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	now := time.Now().UTC()
	since := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	usage, err := s.Store.UsageSince(ctx, u.ID, since)
	if err != nil {
		unavailable(c, err)
		return
	}
	used, err := s.Store.StorageUsed(ctx, u.ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"user":    gin.H{"id": u.ID, "email": u.Email, "name": u.Name, "role": u.Role},
		"plan":    planView(plan),
		"credits": gin.H{"available": bal.Available, "held": bal.Held, "granted": bal.Granted},
		"usage":   gin.H{"since": since, "generations": usage.Generations, "images": usage.Images, "credits": usage.Credits, "compute_seconds": usage.ComputeSeconds},
		"storage": gin.H{"used_bytes": used, "quota_bytes": int64(plan.MaxStorageGB) << 30},
	})
}
