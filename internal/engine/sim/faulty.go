package sim

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/easel/easel/internal/engine"
)

// ErrInjected is the transient failure Faulty returns. It deliberately does
// not wrap engine.ErrInvalidRequest: callers should treat it as retryable,
// like a crashed or preempted GPU worker.
var ErrInjected = errors.New("sim: injected engine failure")

// Faulty wraps an engine and fails every FailEvery-th render (counting from
// the first call) without invoking it, so tests can exercise retry paths
// while the wrapped engine stays honest. FailEvery <= 0 never fails.
// A Faulty must not be copied after first use.
type Faulty struct {
	Engine    engine.Engine
	FailEvery int64

	calls atomic.Int64
}

var _ engine.Engine = (*Faulty)(nil)

// Name reports the wrapped engine's name, so the wrapper is invisible in logs.
func (f *Faulty) Name() string { return f.Engine.Name() }

// Render fails with ErrInjected on every FailEvery-th call and otherwise
// delegates to the wrapped engine.
func (f *Faulty) Render(ctx context.Context, req engine.Request, onProgress func(engine.Progress)) (engine.Image, error) {
	n := f.calls.Add(1)
	if f.FailEvery > 0 && n%f.FailEvery == 0 {
		return engine.Image{}, fmt.Errorf("render %d: %w", n, ErrInjected)
	}
	return f.Engine.Render(ctx, req, onProgress)
}
