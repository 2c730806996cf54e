// Package servedmodels is where GPU workers report which model families
// their engines can render, per tier, and where the API reads it: a Redis
// hash per tier, one field per family, each stamped with when a worker last
// reported it. Keys are scoped (the Temporal namespace in production), so
// deployments or test stacks sharing one Redis do not see each other's
// workers. A family no worker of the tier has reported within Fresh is
// not served; a tier with no fresh report at all is unknown (its workers
// may be scaled to zero), and the API then admits as before.
package servedmodels

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/easel/easel/internal/engine"
)

// Timing: workers report every ReportEvery; a report counts for Fresh.
const (
	ReportEvery = time.Minute
	Fresh       = 3 * ReportEvery
)

// Family is one family as a tier's workers last reported it.
type Family struct {
	Models     []string  `json:"models"`
	ReportedAt time.Time `json:"reported_at"`
}

// Registry reads and writes the reports of one scope.
type Registry struct {
	Redis *redis.Client
	Scope string
}

func (r *Registry) key(tier string) string { return "easel:served-models:" + r.Scope + ":" + tier }

// Report records the families the engine serves on tier now. Families
// it cannot render are not written: another worker of the tier may serve
// them, and an entry nobody refreshes ages out.
func (r *Registry) Report(ctx context.Context, tier string, served engine.Served, now time.Time) error {
	fields := map[string]any{}
	for _, name := range served.Families() {
		b, err := json.Marshal(Family{Models: served[name].Models, ReportedAt: now.UTC()})
		if err != nil {
			return fmt.Errorf("encode %s report: %w", name, err)
		}
		fields[name] = string(b)
	}
	pipe := r.Redis.TxPipeline()
	if len(fields) > 0 {
		pipe.HSet(ctx, r.key(tier), fields)
	}
	pipe.Expire(ctx, r.key(tier), Fresh)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("report served models of %s: %w", tier, err)
	}
	return nil
}

// Read returns the families the tier's workers reported within Fresh of
// now; an empty map means no fresh report.
func (r *Registry) Read(ctx context.Context, tier string, now time.Time) (map[string]Family, error) {
	raw, err := r.Redis.HGetAll(ctx, r.key(tier)).Result()
	if err != nil {
		return nil, fmt.Errorf("read served models of %s: %w", tier, err)
	}
	out := make(map[string]Family, len(raw))
	for name, v := range raw {
		var f Family
		if json.Unmarshal([]byte(v), &f) != nil || now.Sub(f.ReportedAt) > Fresh {
			continue
		}
		out[name] = f
	}
	return out, nil
}

// Clear forgets every report of the tier, so only workers reporting from
// now on count: after a model is removed from every host, or in tests.
func (r *Registry) Clear(ctx context.Context, tier string) error {
	if err := r.Redis.Del(ctx, r.key(tier)).Err(); err != nil {
		return fmt.Errorf("clear served models of %s: %w", tier, err)
	}
	return nil
}

// Run reports the engine's families on tier now and every ReportEvery
// until ctx ends. Failures are logged by the caller's log function and
// retried at the next tick: a missed report only ages out.
func (r *Registry) Run(ctx context.Context, tier string, l engine.ModelLister, logErr func(error)) {
	t := time.NewTicker(ReportEvery)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := r.Report(rctx, tier, l.Served(rctx), time.Now())
		cancel()
		if err != nil && ctx.Err() == nil {
			logErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
