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
	Credits CreditsView    `json:"credits"`
	Usage   MonthUsageView `json:"usage"`
	Storage StorageView    `json:"storage"`
}

// CreditsView is the balance: credits available to spend, held by jobs
// in flight, and granted (available + held).
type CreditsView struct {
	Available int `json:"available"`
	Held      int `json:"held"`
	Granted   int `json:"granted"`
}

// MonthUsageView totals the usage records since the start of the month.
type MonthUsageView struct {
	Since          time.Time `json:"since"`
	Generations    int       `json:"generations"`
	Images         int       `json:"images"`
	Credits        int       `json:"credits"`
	ComputeSeconds float64   `json:"compute_seconds"`
}

// StorageView is the bytes stored against the plan's quota.
type StorageView struct {
	UsedBytes  int64 `json:"used_bytes"`
	QuotaBytes int64 `json:"quota_bytes"`
}

// MeView is GET /v1/me's answer: who the caller is, and their account.
type MeView struct {
	User MeUser `json:"user"`
	AccountView
}

// MeUser is the caller as /v1/me shows them.
type MeUser struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
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
		Credits: CreditsView{Available: bal.Available, Held: bal.Held, Granted: bal.Granted},
		Usage: MonthUsageView{Since: since, Generations: usage.Generations, Images: usage.Images,
			Credits: usage.Credits, ComputeSeconds: usage.ComputeSeconds},
		Storage: StorageView{UsedBytes: usage.StorageBytes, QuotaBytes: int64(plan.MaxStorageGB) << 30},
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
	c.JSON(http.StatusOK, MeView{User: MeUser{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role}, AccountView: a})
}
