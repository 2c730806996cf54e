package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/easel/easel/internal/config"
)

// The model names and the multi-user credentials reach every server's
// engine configuration.
func TestInvokeAIConfigsFromEnvironment(t *testing.T) {
	t.Setenv("INVOKEAI_SDXL_MODEL", "Juggernaut XL v9")
	t.Setenv("INVOKEAI_FLUX_MODEL", "FLUX.1 dev (quantized)")
	t.Setenv("INVOKEAI_FLUX_T5_MODEL", "t5_base_encoder")
	t.Setenv("INVOKEAI_TOKEN", "eyJ.token.sig")
	cfgs, err := invokeAIConfigs(config.Config{InvokeAIURL: "http://127.0.0.1:9090, http://127.0.0.1:9091"},
		&deps{log: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 2 || cfgs[1].BaseURL != "http://127.0.0.1:9091" {
		t.Fatalf("configs %+v: want one per server", cfgs)
	}
	for _, c := range cfgs {
		if c.Models.SDXL != "Juggernaut XL v9" || c.Models.Flux != "FLUX.1 dev (quantized)" ||
			c.Models.FluxT5Encoder != "t5_base_encoder" || c.Token != "eyJ.token.sig" {
			t.Errorf("server %s: models %+v token %q: the settings did not reach the engine", c.BaseURL, c.Models, c.Token)
		}
	}
}

// A GPU worker told to name its instance from a file that is missing or
// does not hold an instance id refuses to start, before it connects to
// anything, and says which setting to fix.
func TestGPUWorkerRefusesABadInstanceIDFile(t *testing.T) {
	garbled := filepath.Join(t.TempDir(), "instance-id")
	if err := os.WriteFile(garbled, []byte("<html>401</html>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{"missing": filepath.Join(t.TempDir(), "absent"), "garbled": garbled} {
		t.Setenv("GPU_INSTANCE_ID_FILE", path)
		t.Setenv("METRICS_ADDR", "127.0.0.1:0")
		cmd := workerCommand()
		cmd.SetArgs([]string{"--role", "gpu", "--tier", "t4"})
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second) // a worker that went on would wait for Temporal
		err := cmd.ExecuteContext(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "GPU_INSTANCE_ID_FILE") {
			t.Errorf("%s file: %v, want a configuration error naming GPU_INSTANCE_ID_FILE", name, err)
		}
	}
}
