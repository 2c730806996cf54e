package api

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/easel/easel/internal/pricing"
)

// QuoteView answers POST /v1/quote: what the generation in the body would
// cost and where it would run, checked as a submission is, with nothing
// held.
type QuoteView struct {
	Price pricing.Quote `json:"price"`
	Plan  string        `json:"plan"`
	Tier  string        `json:"tier"`
	// Request is the body as a submission would run it, defaults filled in.
	Request QuotedRequest `json:"request"`
	// AvailableCredits is the caller's balance now.
	AvailableCredits int `json:"available_credits"`
	// Refusals are what a submission would be refused for now although the
	// body is valid (credits, storage); Submittable is true when none.
	Refusals    []Refusal `json:"refusals"`
	Submittable bool      `json:"submittable"`
}

// QuotedRequest is a generation request with its defaults applied.
type QuotedRequest struct {
	Model     string `json:"model"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	Steps     int    `json:"steps"`
	BatchSize int    `json:"batch_size"`
}

// Refusal is a reason a submission would be refused, with the problem type
// and status POST /v1/generations would answer.
type Refusal struct {
	Type   string         `json:"type"`
	Status int            `json:"status"`
	Detail string         `json:"detail"`
	Extra  map[string]any `json:"extra,omitempty"`
}

// quote answers POST /v1/quote. An invalid body gets the same 400 (or 403
// for a plan gate) as a submission; a valid one gets 200 with the price,
// even when the caller could not afford it now.
func (s *Server) quote(c *gin.Context) {
	u := user(c)
	req, plan, price, ok := s.prepareGeneration(c, u, false)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	bal, err := s.balance(ctx, u.ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	full, err := s.storageFull(ctx, u.ID, plan, 0)
	if err != nil {
		unavailable(c, err)
		return
	}
	refusals := []Refusal{}
	if bal.Available < price.Total {
		refusals = append(refusals, insufficientCredits(price.Total, bal.Available))
	}
	if full != nil {
		refusals = append(refusals, *full)
	}
	c.JSON(http.StatusOK, QuoteView{Price: price, Plan: plan.Slug, Tier: plan.GPUTier,
		Request:          QuotedRequest{Model: req.Model, Width: req.Width, Height: req.Height, Steps: req.Steps, BatchSize: req.BatchSize},
		AvailableCredits: bal.Available, Refusals: refusals, Submittable: len(refusals) == 0})
}

// insufficientCredits is the refusal of a job needing more credits than
// are available.
func insufficientCredits(needed, available int) Refusal {
	return Refusal{Type: "insufficient-credits", Status: http.StatusPaymentRequired,
		Detail: fmt.Sprintf("this generation needs %s and %s available; credits come with your plan each month, "+
			"and a higher plan grants more", creditCount(needed), availableCount(available)),
		Extra: map[string]any{"credits_needed": needed, "credits_available": available}}
}

// creditCount is "1 credit" or "n credits".
func creditCount(n int) string {
	if n == 1 {
		return "1 credit"
	}
	return fmt.Sprintf("%d credits", n)
}

// availableCount is "1 is" or "n are".
func availableCount(n int) string {
	if n == 1 {
		return "1 is"
	}
	return fmt.Sprintf("%d are", n)
}
