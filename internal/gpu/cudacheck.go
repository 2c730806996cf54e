package gpu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// CUDACheckReport is what the easel-cudacheck binary prints on stdout: one
// entry per CUDA device, with the error CUDA gave for it, if any.
type CUDACheckReport struct {
	Devices []CUDADevice `json:"devices"`
}

// CUDADevice is one device as CUDA sees it. UUID is spelled as NVML spells
// it ("GPU-<uuid>"), so the two can be matched whatever CUDA_DEVICE_ORDER is.
type CUDADevice struct {
	UUID       string `json:"uuid"`
	TotalBytes uint64 `json:"total_bytes,omitempty"`
	FreeBytes  uint64 `json:"free_bytes,omitempty"`
	Error      string `json:"error,omitempty"`
}

// CUDACheckTimeout bounds one run of the check binary.
const CUDACheckTimeout = 60 * time.Second

// ErrCUDAUnusable means CUDA could not start on this host at all.
var ErrCUDAUnusable = errors.New("gpu: CUDA cannot start on this host")

// CUDACheck returns an Options.CUDACheck that runs the binary at path
// (easel-cudacheck, built with the cuda tag) as a short-lived child process.
// CUDA is loaded only there: gorgonia.org/cu exits its process when cuInit
// fails and needs libcuda just to load, and a CUDA context holds device
// memory InvokeAI could use. The child exits, and its contexts go with it.
func CUDACheck(path string) func(ctx context.Context, uuids []string) (map[string]error, error) {
	return func(ctx context.Context, uuids []string) (map[string]error, error) {
		rep, err := runCUDACheck(ctx, path)
		if err != nil {
			return nil, err
		}
		return matchCUDA(rep, uuids), nil
	}
}

func runCUDACheck(ctx context.Context, path string) (CUDACheckReport, error) {
	ctx, cancel := context.WithTimeout(ctx, CUDACheckTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return CUDACheckReport{}, fmt.Errorf("%w: %s: %w: %s", ErrCUDAUnusable, path, err, tail(stderr.String()))
	}
	var rep CUDACheckReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return CUDACheckReport{}, fmt.Errorf("%w: %s printed no report: %w: %s", ErrCUDAUnusable, path, err, tail(stdout.String()))
	}
	return rep, nil
}

// matchCUDA gives every NVML device its CUDA verdict: nil when CUDA used
// it, an error when CUDA failed on it or does not see it.
func matchCUDA(rep CUDACheckReport, uuids []string) map[string]error {
	seen := make(map[string]CUDADevice, len(rep.Devices))
	for _, d := range rep.Devices {
		seen[strings.ToLower(d.UUID)] = d
	}
	out := make(map[string]error, len(uuids))
	for _, u := range uuids {
		d, ok := seen[strings.ToLower(u)]
		switch {
		case !ok:
			out[u] = fmt.Errorf("CUDA does not see GPU %s", u)
		case d.Error != "":
			out[u] = fmt.Errorf("CUDA fails on GPU %s: %s", u, d.Error)
		default:
			out[u] = nil
		}
	}
	return out
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 500 {
		s = "..." + s[len(s)-500:]
	}
	return s
}

// checkCUDA runs the CUDA check once and takes out of service what it
// finds unusable: every device when CUDA cannot start at all.
func (h *Host) checkCUDA(check func(context.Context, []string) (map[string]error, error)) {
	if check == nil {
		return
	}
	uuids := make([]string, 0, len(h.order))
	for _, i := range h.order {
		uuids = append(uuids, h.infos[i].UUID)
	}
	verdicts, err := check(context.Background(), uuids)
	if err != nil {
		for _, i := range h.order {
			h.fault(i, "CUDA check: "+err.Error())
		}
		return
	}
	for _, i := range h.order {
		if err := verdicts[h.infos[i].UUID]; err != nil {
			h.fault(i, "CUDA check: "+err.Error())
		}
	}
	h.log.Info("CUDA check done", "devices", len(uuids))
}
