//go:build cuda

package main

import (
	"fmt"
	"runtime"
	"strings"

	"gorgonia.org/cu"

	"github.com/easel/easel/internal/gpu"
)

// probe visits every CUDA device: it retains the device's primary context,
// reads its memory through it (which needs a working device), and releases
// the context again. A device that fails gets its error in the report.
func probe() (gpu.CUDACheckReport, error) {
	// The current context belongs to the OS thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n, err := cu.NumDevices()
	if err != nil {
		return gpu.CUDACheckReport{}, fmt.Errorf("count CUDA devices: %w", err)
	}
	rep := gpu.CUDACheckReport{Devices: make([]gpu.CUDADevice, 0, n)}
	for i := range n {
		rep.Devices = append(rep.Devices, device(i))
	}
	return rep, nil
}

func device(i int) (out gpu.CUDADevice) {
	d, err := cu.GetDevice(i)
	if err != nil {
		return gpu.CUDADevice{UUID: fmt.Sprintf("cuda-device-%d", i), Error: err.Error()}
	}
	u, err := d.UUID()
	if err != nil {
		return gpu.CUDADevice{UUID: fmt.Sprintf("cuda-device-%d", i), Error: "uuid: " + err.Error()}
	}
	// NVML spells UUIDs "GPU-<uuid>".
	out = gpu.CUDADevice{UUID: "GPU-" + strings.ToLower(u.String())}
	ctx, err := d.RetainPrimaryCtx()
	if err != nil {
		out.Error = "retain context: " + err.Error()
		return out
	}
	defer func() {
		if err := d.ReleasePrimaryCtx(); err != nil && out.Error == "" {
			out.Error = "release context: " + err.Error()
		}
	}()
	if err := cu.SetCurrentContext(ctx); err != nil {
		out.Error = "select context: " + err.Error()
		return out
	}
	free, total, err := cu.MemInfo()
	if err != nil {
		out.Error = "memory info: " + err.Error()
		return out
	}
	out.FreeBytes, out.TotalBytes = uint64(free), uint64(total)
	return out
}
