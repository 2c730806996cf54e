// Package gpu runs a GPU host for Easel's render workers: it discovers the
// devices through NVML, pins each render to one device, refuses renders the
// device's memory cannot hold, measures GPU seconds per render, exports
// per-GPU Prometheus metrics, takes unhealthy GPUs out of service, and
// drains the worker on SIGTERM or an EC2 spot interruption notice.
//
// Every NVML call goes through the Driver interface: the real one (NewNVML)
// needs cgo and an NVIDIA driver at run time; tests use a fake.
package gpu

import (
	"errors"
	"time"
)

// Driver is the part of NVML this package uses, in plain Go types, so that
// the logic above it is tested without a GPU.
type Driver interface {
	// Init loads the driver library; it fails on hosts without an NVIDIA driver.
	Init() error
	Shutdown() error
	Count() (int, error)
	Info(device int) (Info, error)
	// Memory is the device's free and total VRAM in bytes.
	Memory(device int) (free, total uint64, err error)
	Sample(device int) (Sample, error)
	Accounting(device int) (Accounting, error)
	// Processes lists the compute processes holding memory on the device.
	Processes(device int) ([]Process, error)
	// Events subscribes to XID and double-bit ECC events of the devices.
	Events(devices []int) (Events, error)
}

// Info describes a device once, at discovery.
type Info struct {
	Name string
	UUID string
	// SlowdownC is the temperature at which the driver starts throttling the
	// device; 0 when the driver does not say.
	SlowdownC float64
}

// Sample is one reading of a device. A float that the device does not
// report is NaN; ECC is nil on devices without ECC (or with it disabled).
type Sample struct {
	Utilization  float64 // 0..1, share of the last sample period a kernel ran
	MemoryUsed   uint64
	MemoryTotal  uint64
	TemperatureC float64
	PowerW       float64
	ECC          *ECCCounts
}

// ECCCounts are the device's ECC errors since the driver loaded (volatile).
type ECCCounts struct {
	Corrected   uint64
	Uncorrected uint64
}

// Accounting is NVML process accounting of one device. For each process the
// driver counts utilization samples and their sum; the difference between
// two readings gives the process's GPU utilization over that window.
type Accounting struct {
	Enabled bool
	Procs   map[uint32]ProcUsage
}

// ProcUsage is one process's accounting counters.
type ProcUsage struct {
	Samples uint64 // utilization samples taken since the process started
	SumUtil uint64 // their sum, in hundredths of a percent
}

// Process is one compute process on a device and the device memory it
// holds. PID is as the driver reports it: the host's PID namespace.
type Process struct {
	PID       uint32
	UsedBytes uint64
}

// EventKind tells a device event's type.
type EventKind int

// Device event kinds.
const (
	EventXID       EventKind = iota // an XID error; Event.XID holds its code
	EventDoubleBit                  // an uncorrectable (double-bit) ECC error
)

// Event is one device event.
type Event struct {
	Device int
	Kind   EventKind
	XID    uint64
}

// Events is a subscription to device events.
type Events interface {
	// Wait blocks up to timeout for the next event; ok is false on timeout.
	Wait(timeout time.Duration) (ev Event, ok bool, err error)
	Close() error
}

// ErrGPULost marks a driver error for a device that stopped answering
// (fallen off the bus); the health monitor takes it out of service.
var ErrGPULost = errors.New("gpu: device lost")

// ErrNoDevice means the host has no healthy GPU left to render on.
var ErrNoDevice = errors.New("gpu: no healthy GPU on this host")
