package main

import (
	"log/slog"
	"testing"

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
