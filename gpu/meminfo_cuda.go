//go:build cuda

package gpu

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"gorgonia.org/cu"
)

// In a build with the cuda tag, admission reads free and total VRAM from
// the CUDA driver (cuMemGetInfo) instead of NVML. gorgonia.org/cu calls
// cuInit in its package init and exits the process when that fails, so this
// file only goes into GPU images, never into the default build.
func (h *Host) memReader() (memReader, error) {
	c, err := openCUDA(h.infos)
	if err != nil {
		return nil, err
	}
	h.closers = append(h.closers, c.close)
	return c, nil
}

// cudaMem holds one context per device: the device's primary context,
// which costs no extra VRAM when something else in the process already
// uses the device, unlike a context created for the purpose.
type cudaMem struct {
	mu   sync.Mutex // cuMemGetInfo reads the calling thread's current context
	ctxs map[int]cu.CUContext
	devs map[int]cu.Device
}

// openCUDA discovers the CUDA devices and matches them to NVML's by UUID,
// because CUDA numbers devices fastest first unless CUDA_DEVICE_ORDER says
// otherwise, while NVML numbers them by PCI bus.
func openCUDA(infos map[int]Info) (*cudaMem, error) {
	byUUID, err := cudaDevices()
	if err != nil {
		return nil, err
	}
	c := &cudaMem{ctxs: map[int]cu.CUContext{}, devs: map[int]cu.Device{}}
	for idx, info := range infos {
		d, ok := byUUID[strings.ToLower(info.UUID)]
		if !ok {
			_ = c.close()
			return nil, fmt.Errorf("cuda: no device with NVML GPU %d's UUID %s", idx, info.UUID)
		}
		ctx, err := d.RetainPrimaryCtx()
		if err != nil {
			_ = c.close()
			return nil, fmt.Errorf("cuda: retain context of GPU %d: %w", idx, err)
		}
		c.ctxs[idx], c.devs[idx] = ctx, d
	}
	return c, nil
}

// cudaDevices maps "GPU-<uuid>" (NVML's spelling) to CUDA devices.
func cudaDevices() (map[string]cu.Device, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: count devices: %w", err)
	}
	out := make(map[string]cu.Device, n)
	for i := range n {
		d, err := cu.GetDevice(i)
		if err != nil {
			return nil, fmt.Errorf("cuda: device %d: %w", i, err)
		}
		u, err := d.UUID()
		if err != nil {
			return nil, fmt.Errorf("cuda: uuid of device %d: %w", i, err)
		}
		out["gpu-"+strings.ToLower(u.String())] = d
	}
	return out, nil
}

func (c *cudaMem) Memory(device int) (free, total uint64, err error) {
	ctx, ok := c.ctxs[device]
	if !ok {
		return 0, 0, fmt.Errorf("cuda: GPU %d is not this host's", device)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// The current context belongs to the OS thread; keep this goroutine on
	// one thread between setting it and reading through it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(ctx); err != nil {
		return 0, 0, fmt.Errorf("cuda: select GPU %d: %w", device, err)
	}
	f, t, err := cu.MemInfo()
	if err != nil {
		return 0, 0, fmt.Errorf("cuda: memory of GPU %d: %w", device, err)
	}
	return uint64(f), uint64(t), nil
}

func (c *cudaMem) close() error {
	var errs []error
	for idx, d := range c.devs {
		if err := d.ReleasePrimaryCtx(); err != nil {
			errs = append(errs, fmt.Errorf("cuda: release context of GPU %d: %w", idx, err))
		}
	}
	return errors.Join(errs...)
}
