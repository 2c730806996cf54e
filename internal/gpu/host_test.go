package gpu

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
)

func bufferLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func TestOpenWithoutDriverLogsOnceAndRunsPlainSlots(t *testing.T) {
	t.Parallel()
	f := newFakeDriver(2)
	f.initErr = errNoDriver
	log, buf := bufferLog()
	h, err := Open(Options{Driver: f, Tier: "t4", NoDriverSlots: 3, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if h.HasNVML() || h.Slots() != 3 {
		t.Fatalf("HasNVML=%v Slots=%d, want false and GPU_SLOTS (3)", h.HasNVML(), h.Slots())
	}
	if n := strings.Count(buf.String(), "no NVIDIA driver found"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, buf)
	}
	dev, err := h.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Admit(dev, engine.Request{Model: catalog.ModelFlux, Width: 8192, Height: 8192}); err != nil {
		t.Fatalf("without NVML every render is admitted, got %v", err)
	}
	stop := h.Meter(dev)
	time.Sleep(20 * time.Millisecond)
	if secs := stop(); secs < 0.02 {
		t.Fatalf("GPU seconds %.3f, want the wall clock (>= 0.02)", secs)
	}
	h.Release(dev)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.Run(ctx) // returns at once: nothing to watch
	if f.shutdowns != 0 {
		t.Fatal("shut down a driver that never started")
	}
}

func TestOpenDiscoversDevices(t *testing.T) {
	t.Parallel()
	f := newFakeDriver(2)
	log, _ := bufferLog()
	h, err := Open(Options{Driver: f, Tier: "a10g", NoDriverSlots: 5, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if !h.HasNVML() || h.Slots() != 2 {
		t.Fatalf("HasNVML=%v Slots=%d, want true and one slot per GPU (2)", h.HasNVML(), h.Slots())
	}
	a, _ := h.Acquire(context.Background())
	b, _ := h.Acquire(context.Background())
	if a.Index != 0 || a.UUID != "GPU-00000000" || b.Index != 1 || b.UUID != "GPU-00000001" {
		t.Fatalf("devices %+v %+v, want 0 and 1 with their UUIDs", a, b)
	}
	if err := h.Close(); err != nil || f.shutdowns != 1 {
		t.Fatalf("Close: %v, shutdowns %d", err, f.shutdowns)
	}
}

func TestOpenSlots(t *testing.T) {
	t.Parallel()
	log, _ := bufferLog()
	h, err := Open(Options{Driver: newFakeDriver(4), Slots: 2, Log: log})
	if err != nil || h.Slots() != 2 {
		t.Fatalf("Slots 2 of 4 GPUs: %v, %d slots", err, h.Slots())
	}
	if _, err := Open(Options{Driver: newFakeDriver(1), Slots: 2, Log: log}); err == nil {
		t.Fatal("2 slots on a 1-GPU host: want an error (one slot per GPU)")
	}
	h, err = Open(Options{Driver: newFakeDriver(0), NoDriverSlots: 2, Log: log})
	if err != nil || h.HasNVML() || h.Slots() != 2 {
		t.Fatalf("a driver without GPUs: %v, NVML %v, %d slots; want plain GPU_SLOTS", err, h.HasNVML(), h.Slots())
	}
}

func TestAdmitUsesDeviceMemory(t *testing.T) {
	t.Parallel()
	f := newFakeDriver(1)
	log, _ := bufferLog()
	h, err := Open(Options{Driver: f, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := h.Acquire(context.Background())
	sdxl := engine.Request{Model: catalog.ModelSDXL, Width: 1024, Height: 1024}
	if err := h.Admit(dev, sdxl); err != nil {
		t.Fatalf("SDXL 1024 on a free 24 GiB GPU: %v", err)
	}
	f.free[0] = 4 * gib
	if err := h.Admit(dev, sdxl); !errors.Is(err, engine.ErrDeviceBusy) {
		t.Fatalf("4 GiB free: got %v, want ErrDeviceBusy", err)
	}
	huge := engine.Request{Model: catalog.ModelFlux, Width: 4096, Height: 4096}
	if err := h.Admit(dev, huge); !errors.Is(err, engine.ErrTooLarge) {
		t.Fatalf("FLUX 4096 on 24 GiB: got %v, want ErrTooLarge", err)
	}
}

// InvokeAI keeps models resident: after one SDXL render on a T4 only about
// 6 GiB are free, yet the next render fits, because InvokeAI evicts its own
// cache to make room. Only memory of other processes is out of reach.
func TestAdmitCountsInvokeAIMemoryAsUsable(t *testing.T) {
	t.Parallel()
	f := newFakeDriver(1)
	f.set(0, func(s *Sample) { s.MemoryTotal = 15 * gib })
	f.free[0] = 6 * gib
	const invokeAI, other = 100, 200
	f.procs[0] = []Process{{PID: invokeAI, UsedBytes: 8 * gib}, {PID: other, UsedBytes: gib / 2}}
	log, _ := bufferLog()
	h, err := Open(Options{Driver: f, Log: log, Foreign: func(pid uint32) bool { return pid != invokeAI }})
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := h.Acquire(context.Background())
	sdxl := engine.Request{Model: catalog.ModelSDXL, Width: 1024, Height: 1024}
	if err := h.Admit(dev, sdxl); err != nil {
		t.Fatalf("SDXL 1024 with 6 GiB free and 8 GiB in InvokeAI's cache: %v, want admitted", err)
	}
	// The same memory held by another process is not the renders' to use.
	f.procs[0] = []Process{{PID: invokeAI, UsedBytes: gib / 2}, {PID: other, UsedBytes: 8 * gib}}
	if err := h.Admit(dev, sdxl); !errors.Is(err, engine.ErrDeviceBusy) {
		t.Fatalf("8 GiB held by another process: got %v, want ErrDeviceBusy", err)
	}
}

func TestInvokeAIProcessesByCommandLine(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for pid, cmdline := range map[string]string{"10": "/opt/venv/bin/python3\x00/opt/venv/bin/invokeai-web\x00",
		"11": "python\x00train.py\x00", "12": ""} {
		if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, pid, "cmdline"), []byte(cmdline), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	foreign := InvokeAIProcesses(root)
	for pid, want := range map[uint32]bool{10: false, 11: true, 12: false, 13: false} {
		if got := foreign(pid); got != want {
			t.Errorf("pid %d: foreign=%v, want %v", pid, got, want)
		}
	}
}

// Close must not unload NVML while the event watcher is inside a call.
func TestCloseWaitsForTheEventWatcher(t *testing.T) {
	t.Parallel()
	h, f := openFake(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go h.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		waiting := f.waiting
		f.mu.Unlock()
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the event watcher never waited for events")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shutdownMidWait || f.waiting != 0 {
		t.Fatalf("NVML shut down while an event wait was in progress (waiting %d)", f.waiting)
	}
}
