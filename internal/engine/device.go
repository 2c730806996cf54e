package engine

import (
	"context"
	"errors"
)

// Device names the GPU a render is pinned to. Index is the NVML index (the
// order nvidia-smi shows, by PCI bus); CUDA may number devices differently
// unless CUDA_DEVICE_ORDER=PCI_BUS_ID, so an engine that starts CUDA work
// should select the device by UUID when it has one.
type Device struct {
	Index int
	UUID  string // empty when the host has no NVML (sim engine, tests)
}

type deviceKey struct{}

// WithDevice pins the renders made with ctx to d. The GPU worker's device
// pool sets it; engines read it with DeviceFrom.
func WithDevice(ctx context.Context, d Device) context.Context {
	return context.WithValue(ctx, deviceKey{}, d)
}

// DeviceFrom returns the device ctx is pinned to, if any.
func DeviceFrom(ctx context.Context) (Device, bool) {
	d, ok := ctx.Value(deviceKey{}).(Device)
	return d, ok
}

// VRAM errors, shared by the GPU worker's admission check and by engines
// that detect out-of-memory themselves.
var (
	// ErrTooLarge marks a render that needs more memory than the device has
	// at all: no GPU of this tier can ever run it.
	ErrTooLarge = errors.New("engine: render too large for this GPU")
	// ErrDeviceBusy marks a render that does not fit in the device's memory
	// free right now; it may fit later or on another GPU.
	ErrDeviceBusy = errors.New("engine: not enough free GPU memory")
)

type (
	jobIDKey   struct{}
	attemptKey struct{}
)

// WithAttempt tells the engine which attempt of the job a render is (1 for
// the first), so a retry can reach what a lost attempt still renders.
func WithAttempt(ctx context.Context, attempt int) context.Context {
	return context.WithValue(ctx, attemptKey{}, attempt)
}

// Attempt returns the attempt WithAttempt stored in ctx, or 0.
func Attempt(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}

// WithJobID tells the engine which job a render belongs to, so an engine
// with a queue of its own (InvokeAI) can tag the work with it and cancel
// what an earlier, lost attempt of the same job left behind.
func WithJobID(ctx context.Context, jobID string) context.Context {
	return context.WithValue(ctx, jobIDKey{}, jobID)
}

// JobID returns the job id WithJobID stored in ctx, or "".
func JobID(ctx context.Context) string {
	id, _ := ctx.Value(jobIDKey{}).(string)
	return id
}
