package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/pricing"
	"github.com/easel/easel/internal/servedmodels"
	"github.com/easel/easel/internal/store"
)

// ModelsView answers GET /v1/models: the model families as the caller's
// plan may use them.
type ModelsView struct {
	Plan   string      `json:"plan"`
	Tier   string      `json:"tier"`
	Models []ModelView `json:"models"`
}

// ModelView is one model family on the caller's plan and GPU tier.
type ModelView struct {
	Family string `json:"family"`
	// Available says whether a request at the defaults would be accepted;
	// Reason says why not.
	Available bool   `json:"available"`
	Reason    string `json:"unavailable_reason,omitempty"`
	// Served is what the tier's GPU workers last reported: true or false,
	// or null when none has reported lately (the tier may be scaled to
	// zero; requests are then accepted and wait for a worker).
	Served *bool `json:"served"`
	// Models are the checkpoints the tier's workers render the family with.
	Models   []string      `json:"models"`
	Defaults ModelDefaults `json:"defaults"`
	// DefaultPrice is one image at the defaults, in credits.
	DefaultPrice int         `json:"default_price"`
	Limits       ModelLimits `json:"limits"`
}

// ModelDefaults are the values a request that leaves them out gets.
type ModelDefaults struct {
	Width    int     `json:"width"`
	Height   int     `json:"height"`
	Steps    int     `json:"steps"`
	CFGScale float64 `json:"cfg_scale"`
}

// ModelLimits bound a request for the family on the caller's plan.
type ModelLimits struct {
	MinSide int `json:"min_side"`
	// MaxSide is the plan's largest width or height.
	MaxSide int `json:"max_side"`
	// MaxSquareSide is the largest square image whose render fits the
	// tier's GPU memory (at most MaxSide); 0 when none does.
	MaxSquareSide int `json:"max_square_side"`
	MaxSteps      int `json:"max_steps"`
	MaxBatchSize  int `json:"max_batch_size"`
}

// listModels answers GET /v1/models.
func (s *Server) listModels(c *gin.Context) {
	ctx := c.Request.Context()
	plan, err := s.userPlan(ctx, user(c).ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	served := s.served(ctx, plan.GPUTier)
	out := ModelsView{Plan: plan.Slug, Tier: plan.GPUTier, Models: make([]ModelView, 0, len(catalog.Models))}
	for _, m := range catalog.Models {
		out.Models = append(out.Models, modelView(m, plan, served))
	}
	c.JSON(http.StatusOK, out)
}

func modelView(m catalog.Model, plan store.Plan, served map[string]servedmodels.Family) ModelView {
	side := roundDown8(min(m.DefaultSide, plan.MaxResolution))
	v := ModelView{Family: m.Family, Models: []string{},
		Defaults: ModelDefaults{Width: side, Height: side, Steps: defaultSteps, CFGScale: defaultCFG},
		Limits: ModelLimits{MinSide: minSide, MaxSide: plan.MaxResolution, MaxSquareSide: maxSquareSide(plan, m.Family),
			MaxSteps: maxSteps, MaxBatchSize: plan.MaxBatchSize}}
	if q, err := pricing.Price(pricing.Request{Model: m.Family, Width: side, Height: side, Steps: defaultSteps, BatchSize: 1}); err == nil {
		v.DefaultPrice = q.PerImage
	}
	if len(served) > 0 {
		f, ok := served[m.Family]
		v.Served = &ok
		if ok {
			v.Models = f.Models
		}
	}
	switch {
	case v.Served != nil && !*v.Served:
		v.Reason = fmt.Sprintf("no %s GPU worker serves %s right now", strings.ToUpper(plan.GPUTier), m.Family)
	case v.Limits.MaxSquareSide < side:
		v.Reason = fmt.Sprintf("%s at %dx%d does not fit the %s plan's %s GPUs", m.Family, side, side,
			plan.Name, strings.ToUpper(plan.GPUTier))
	default:
		v.Available = true
	}
	return v
}

// maxSquareSide is the largest square side (a multiple of 8, at most the
// plan's resolution) whose render fits the plan's tier.
func maxSquareSide(plan store.Plan, family string) int {
	for side := roundDown8(plan.MaxResolution); side >= minSide; side -= 8 {
		if fits, _, _ := catalog.FitsTier(plan.GPUTier, family, side, side); fits {
			return side
		}
	}
	return 0
}

func roundDown8(n int) int { return n / 8 * 8 }

// served reads what the tier's GPU workers serve. Without a registry, or when
// it fails, nothing is known and nothing is refused for it: a Redis
// failure must not stop generations.
func (s *Server) served(ctx context.Context, tier string) map[string]servedmodels.Family {
	if s.ServedModels == nil {
		return nil
	}
	served, err := s.ServedModels.Read(ctx, tier, time.Now())
	if err != nil {
		s.Log.WarnContext(ctx, "read served models", "tier", tier, "err", err)
		return nil
	}
	return served
}

// servedModel refuses a family the plan's tier has workers for but none of
// them serves, so the request fails here and not on the GPU.
func (s *Server) servedModel(ctx context.Context, plan store.Plan, family string) []FieldError {
	served := s.served(ctx, plan.GPUTier)
	if len(served) == 0 {
		return nil
	}
	if _, ok := served[family]; ok {
		return nil
	}
	names := make([]string, 0, len(served))
	for name := range served {
		names = append(names, name)
	}
	slices.Sort(names)
	return []FieldError{{Field: "model", Message: fmt.Sprintf("%s is not served on the %s GPUs of the %s plan right now; served: %s",
		family, strings.ToUpper(plan.GPUTier), plan.Name, strings.Join(names, ", "))}}
}
