package gpu

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The test binary stands in for easel-cudacheck when EASEL_FAKE_CUDACHECK
// is set: "exit" dies as gorgonia.org/cu's init does when cuInit fails;
// "report" prints a report in which GPU 1 fails.
func TestMain(m *testing.M) {
	switch os.Getenv("EASEL_FAKE_CUDACHECK") {
	case "exit":
		fmt.Fprintln(os.Stderr, "cuInit failed: CUDA_ERROR_NO_DEVICE")
		os.Exit(1)
	case "report":
		_ = json.NewEncoder(os.Stdout).Encode(CUDACheckReport{Devices: []CUDADevice{
			{UUID: "gpu-00000000", TotalBytes: 24 << 30, FreeBytes: 23 << 30},
			{UUID: "GPU-00000001", Error: "CUDA_ERROR_ECC_UNCORRECTABLE"}}})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestCUDACheckThatCannotStartTakesEveryGPUOut(t *testing.T) {
	t.Setenv("EASEL_FAKE_CUDACHECK", "exit")
	log, buf := bufferLog()
	h, err := Open(Options{Driver: newFakeDriver(2), Log: log, CUDACheck: CUDACheck(os.Args[0])})
	if err != nil {
		t.Fatalf("Open: %v; a host where CUDA cannot start must still start, report and drain", err)
	}
	select {
	case <-h.Exhausted():
	default:
		t.Fatal("CUDA cannot start, yet the host still has healthy GPUs")
	}
	if !h.HasNVML() || !strings.Contains(buf.String(), "CUDA_ERROR_NO_DEVICE") {
		t.Fatalf("want NVML kept for reporting and the child's error logged:\n%s", buf)
	}
}

func TestCUDACheckTakesOutTheDevicesItFails(t *testing.T) {
	t.Setenv("EASEL_FAKE_CUDACHECK", "report")
	log, buf := bufferLog()
	h, err := Open(Options{Driver: newFakeDriver(2), Log: log, CUDACheck: CUDACheck(os.Args[0])})
	if err != nil {
		t.Fatal(err)
	}
	if !h.pool.Healthy(0) || h.pool.Healthy(1) {
		t.Fatalf("healthy 0=%v 1=%v, want GPU 1 out (CUDA fails on it)\n%s", h.pool.Healthy(0), h.pool.Healthy(1), buf)
	}
}

// Whatever the build tags, the easel binary must not link gorgonia.org/cu
// (its init exits the process when cuInit fails); only easel-cudacheck does.
func TestOnlyTheCheckBinaryLinksCUDA(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	deps := func(pkg string) string {
		out, err := exec.Command(goBin, "list", "-deps", "-tags", "cuda", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		return string(out)
	}
	if strings.Contains(deps("github.com/easel/easel/cmd/easel"), "gorgonia.org/cu\n") {
		t.Error("cmd/easel built with -tags cuda links gorgonia.org/cu")
	}
	if !strings.Contains(deps("github.com/easel/easel/cmd/easel-cudacheck"), "gorgonia.org/cu\n") {
		t.Error("cmd/easel-cudacheck built with -tags cuda does not link gorgonia.org/cu")
	}
}
