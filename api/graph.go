package api

import (
	"errors"
	"fmt"

	"github.com/easel/easel/internal/engine/invokeai/graphcheck"
	"github.com/easel/easel/internal/pricing"
	"github.com/easel/easel/internal/store"
)

// applyGraph makes a request with a raw InvokeAI graph describe what the
// graph renders, since that, not the request's other fields, is what the
// GPU runs: the graph is inspected (allowlist, no stored images or boards,
// literal sizes and steps within the plan, one image per run), and its
// model family, largest width and height, and longest pass's steps become
// the request's. model, width, height and steps may be left out; sent, they
// must agree with the graph, so a request never says one thing and renders
// another. The graph's denoise passes are kept for pricing.
func (r *GenerationRequest) applyGraph(plan store.Plan) []FieldError {
	if len(r.Graph) > maxGraphBytes {
		return []FieldError{{Field: "graph", Message: fmt.Sprintf("must be at most %d bytes", maxGraphBytes)}}
	}
	s, err := graphcheck.Inspect(r.Graph, graphcheck.Limits{MaxSide: plan.MaxResolution, MaxSteps: maxSteps})
	if err != nil {
		return graphErrors(err)
	}
	var errs []FieldError
	disagree := func(field string, sent, derived any, what string) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(
			"is %v but the graph %s %v: leave it out or send %v", sent, what, derived, derived)})
	}
	if r.Model != "" && r.Model != s.Model {
		disagree("model", r.Model, s.Model, "loads a model of family")
	}
	if r.Width != 0 && r.Width != s.Width {
		disagree("width", r.Width, s.Width, "renders images up to a width of")
	}
	if r.Height != 0 && r.Height != s.Height {
		disagree("height", r.Height, s.Height, "renders images up to a height of")
	}
	if r.Steps != 0 && r.Steps != s.Steps {
		disagree("steps", r.Steps, s.Steps, "runs denoise passes of up to this many steps:")
	}
	if len(errs) > 0 {
		return errs
	}
	r.Model, r.Width, r.Height, r.Steps, r.passes = s.Model, s.Width, s.Height, s.Steps, s.Passes
	return nil
}

func graphErrors(err error) []FieldError {
	var ge *graphcheck.Error
	if !errors.As(err, &ge) {
		return []FieldError{{Field: "graph", Message: err.Error()}}
	}
	out := make([]FieldError, len(ge.Problems))
	for i, p := range ge.Problems {
		out[i] = FieldError{Field: p.Field, Message: p.Message}
	}
	return out
}

// quote prices the request: a graph by its denoise passes, anything else
// by its fields.
func (r *GenerationRequest) quote() (pricing.Quote, error) {
	if len(r.passes) > 0 {
		return pricing.Passes(r.passes, r.BatchSize)
	}
	req := pricing.Request{Model: r.Model, Width: r.Width, Height: r.Height, Steps: r.Steps, BatchSize: r.BatchSize}
	if r.InitImage != "" && r.Strength != nil {
		req.InitImage, req.Strength = true, *r.Strength
	}
	return pricing.Price(req)
}
