//go:build !cuda

package main

import (
	"errors"

	"github.com/easel/easel/internal/gpu"
)

func probe() (gpu.CUDACheckReport, error) {
	return gpu.CUDACheckReport{}, errors.New("built without the cuda tag: rebuild with -tags cuda")
}
