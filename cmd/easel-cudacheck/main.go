// Command easel-cudacheck checks that CUDA can use this host's GPUs, prints
// a gpu.CUDACheckReport as JSON and exits, releasing every CUDA context it
// made. The GPU worker runs it as a short-lived child at start (see
// gpu.CUDACheck), so the worker itself never loads CUDA: gorgonia.org/cu
// needs libcuda just to load and exits its process when cuInit fails.
//
// Build it with the cuda tag (cgo, cuda.h and libcuda or its stub):
//
//	go build -tags cuda -o easel-cudacheck ./cmd/easel-cudacheck
//
// Without the tag it only says so and exits 2. When CUDA cannot start at
// all it exits 1 before main (gorgonia.org/cu's init), which the worker
// reads as "no usable GPU".
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	rep, err := probe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "easel-cudacheck:", err)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		fmt.Fprintln(os.Stderr, "easel-cudacheck: write report:", err)
		os.Exit(2)
	}
}
