package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/easel/easel/internal/store"
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

// AccountView is a user's standing: plan and limits, balance, usage this
// calendar month (UTC) and storage used against the plan's quota. /v1/me and
// the admin user detail both answer with it.
type AccountView struct {
	Plan    PlanView       `json:"plan"`
	Credits map[string]any `json:"credits"`
	Usage   map[string]any `json:"usage"`
	Storage map[string]any `json:"storage"`
}

func (s *Server) account(ctx context.Context, userID string) (AccountView, error) {
	plan, err := s.userPlan(ctx, userID)
	if err != nil {
		return AccountView{}, err
	}
	bal, err := s.balance(ctx, userID)
	if err != nil {
		return AccountView{}, err
	}
	now := time.Now().UTC()
	since := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	usage, err := s.Store.UsageSince(ctx, userID, since) // storage included
	if err != nil {
		return AccountView{}, err
	}
	return AccountView{
		Plan:    planView(plan),
		Credits: map[string]any{"available": bal.Available, "held": bal.Held, "granted": bal.Granted},
		Usage: map[string]any{"since": since, "generations": usage.Generations, "images": usage.Images,
			"credits": usage.Credits, "compute_seconds": usage.ComputeSeconds},
		Storage: map[string]any{"used_bytes": usage.StorageBytes, "quota_bytes": int64(plan.MaxStorageGB) << 30},
	}, nil
}

// me answers who the caller is and where their account stands.
func (s *Server) me(c *gin.Context) {
	u := user(c)
	a, err := s.account(c.Request.Context(), u.ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"user": gin.H{"id": u.ID, "email": u.Email, "name": u.Name, "role": u.Role},
		"plan": a.Plan, "credits": a.Credits, "usage": a.Usage, "storage": a.Storage,
	})
}
