//go:build !cuda

package gpu

// memReader reads VRAM through NVML. A build with the cuda tag reads it
// through the CUDA driver API instead (meminfo_cuda.go).
func (h *Host) memReader() (memReader, error) { return h.driver, nil }
