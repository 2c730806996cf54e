package gpu

import (
	"fmt"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
)

const gib = 1 << 30

// admit compares a render's estimate with a device's memory: more than the
// device has at all is ErrTooLarge (no GPU of this tier will ever run it);
// more than the renders can use now (usable: what is free plus what
// InvokeAI holds, i.e. all but other processes) is ErrDeviceBusy (it may fit
// later or elsewhere).
func admit(device int, model string, width, height, batch int, usable, total uint64) error {
	need, ok := catalog.Estimate(model, width, height, batch)
	if !ok {
		return nil // unknown family: the engine rejects it as invalid
	}
	shape := fmt.Sprintf("%s %dx%d x%d needs about %s of GPU memory", model, width, height, batch, gibString(need))
	if need > total {
		return fmt.Errorf("%w: %s; GPU %d has %s in all", engine.ErrTooLarge, shape, device, gibString(total))
	}
	if need > usable {
		return fmt.Errorf("%w: %s; GPU %d has %s for renders (other processes hold the rest)",
			engine.ErrDeviceBusy, shape, device, gibString(usable))
	}
	return nil
}

func gibString(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/gib) }
