package engine

import (
	"context"
	"slices"
)

// Served says which model families an engine can render now: for each
// family, the main models it renders with, or why it cannot.
type Served map[string]Family

// Family is one model family's state on an engine.
type Family struct {
	Models  []string `json:"models,omitempty"`
	Problem string   `json:"problem,omitempty"` // why it cannot render; "" when it can
}

// Families lists the families the engine can render.
func (s Served) Families() []string {
	var out []string
	for name, f := range s {
		if f.Problem == "" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// ModelLister is an engine that can say what it serves. GPU workers report
// it, so the API refuses a family no worker of the tier can render.
type ModelLister interface {
	Served(ctx context.Context) Served
}

// Served is what every device's engine serves: a job may land on any of
// them, so a family counts only where all of them render it. Engines that
// cannot list their models are left out.
func (p PerDevice) Served(ctx context.Context) Served {
	var out Served
	for _, e := range p {
		l, ok := e.(ModelLister)
		if !ok {
			continue
		}
		s := l.Served(ctx)
		if out == nil {
			out = s
			continue
		}
		for name, f := range out {
			if g, ok := s[name]; !ok || g.Problem != "" {
				if !ok {
					g.Problem = "not served on every GPU"
				}
				out[name] = Family{Models: f.Models, Problem: g.Problem}
			}
		}
	}
	return out
}
