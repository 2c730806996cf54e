package invokeai

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
)

// withModels replaces the fake's FLUX models (main and submodels) and
// keeps the others.
func withModels(flux ...fakeModel) func(*fakeInvoke) {
	return func(f *fakeInvoke) {
		f.models = slices.DeleteFunc(f.models, func(m fakeModel) bool {
			return m.Base == "flux" || m.Type == "t5_encoder" || m.Type == "clip_embed"
		})
		f.models = append(f.models, flux...)
	}
}

var (
	fluxT5    = fakeModel{"k-t5", "h-t5", "t5_bnb_int8_quantized_encoder", "any", "t5_encoder", "bnb_quantized_int8b", ""}
	fluxCLIPL = fakeModel{"k-clipl", "h-clipl", "clip-vit-large-patch14", "any", "clip_embed", "diffusers", "large"}
	fluxVAE   = fakeModel{"k-fluxvae", "h-fluxvae", "FLUX.1-schnell_ae", "flux", "vae", "checkpoint", ""}
)

func loaderModel(t *testing.T, f *fakeInvoke) map[string]any {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.graphs) == 0 {
		t.Fatal("nothing was enqueued")
	}
	return f.graphs[len(f.graphs)-1]["nodes"].(map[string]any)[nodeLoader].(map[string]any)
}

// Without the default FLUX model the fallback must be a text-to-image one:
// FLUX Fill (dev_fill) and Kontext sort first but need an input image.
func TestFluxFallbackSkipsFillAndKontext(t *testing.T) {
	t.Parallel()
	f := newFake(t, withModels(
		fakeModel{"k-fill", "h-fill", "FLUX.1 Fill dev", "flux", "main", "checkpoint", "dev_fill"},
		fakeModel{"k-kontext", "h-kontext", "FLUX.1 Kontext dev (quantized)", "flux", "main", "gguf_quantized", "dev"},
		fakeModel{"k-dev", "h-dev", "FLUX.1 dev (quantized)", "flux", "main", "bnb_quantized_nf4b", "dev"},
		fluxT5, fluxCLIPL, fluxVAE))
	e := newEngine(t, f, nil)
	if _, err := e.Render(context.Background(), request(catalog.ModelFlux), nil); err != nil {
		t.Fatalf("Render: %v", err)
	}
	if got := loaderModel(t, f)["model"].(map[string]any)["name"]; got != "FLUX.1 dev (quantized)" {
		t.Fatalf("FLUX fell back to %v, want FLUX.1 dev (quantized)", got)
	}
}

// A FLUX checkpoint without T5, CLIP-L and VAE installed is refused before
// anything is enqueued, naming what to install.
func TestFluxWithoutSubmodelsIsRefusedBeforeEnqueue(t *testing.T) {
	t.Parallel()
	f := newFake(t, withModels(
		fakeModel{"k-flux", "h-flux", "FLUX.1 schnell (quantized)", "flux", "main", "bnb_quantized_nf4b", "schnell"},
		fluxVAE))
	e := newEngine(t, f, nil)
	_, err := e.Render(context.Background(), request(catalog.ModelFlux), nil)
	if !errors.Is(err, engine.ErrInvalidRequest) {
		t.Fatalf("error %v, want ErrInvalidRequest (not retried)", err)
	}
	for _, want := range []string{"t5_bnb_int8_quantized_encoder", "clip-vit-large-patch14"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "FLUX.1-schnell_ae") {
		t.Errorf("error %q names the VAE, which is installed", err)
	}
	if n := f.callCount("POST /api/v1/queue/{queue}/enqueue_batch"); n != 0 {
		t.Errorf("enqueued %d items", n)
	}
}

// A diffusers FLUX pipeline bundles its encoders and VAE.
func TestFluxDiffusersPipelineNeedsNoSubmodels(t *testing.T) {
	t.Parallel()
	f := newFake(t, withModels(fakeModel{"k-fluxd", "h-fluxd", "FLUX.1-schnell", "flux", "main", "diffusers", "schnell"}))
	e := newEngine(t, f, nil)
	if _, err := e.Render(context.Background(), request(catalog.ModelFlux), nil); err != nil {
		t.Fatalf("Render: %v", err)
	}
	if _, ok := loaderModel(t, f)["t5_encoder_model"]; ok {
		t.Error("the loader names a T5 encoder that is not installed")
	}
}

// Models says what each family renders with, for the worker's start log.
func TestModelsReport(t *testing.T) {
	t.Parallel()
	f := newFake(t, withModels(fakeModel{"k-flux", "h-flux", "FLUX.1 schnell (quantized)", "flux", "main", "bnb_quantized_nf4b", "schnell"}))
	got := newEngine(t, f, func(c *Config) { c.Models.SD15 = "Dreamshaper 8" }).Models(context.Background())
	if !strings.Contains(got[catalog.ModelSDXL], `"stable-diffusion-xl-base-1.0"`) {
		t.Errorf("sdxl: %q, want the 6.x default name", got[catalog.ModelSDXL])
	}
	if !strings.HasPrefix(got[catalog.ModelSD15], "unavailable:") || !strings.Contains(got[catalog.ModelSD15], "Dreamshaper 8") {
		t.Errorf("sd-1.5 with a configured model that is not installed: %q", got[catalog.ModelSD15])
	}
	if !strings.HasPrefix(got[catalog.ModelFlux], "unavailable:") || !strings.Contains(got[catalog.ModelFlux], "t5_bnb_int8_quantized_encoder") {
		t.Errorf("flux without submodels: %q", got[catalog.ModelFlux])
	}
}

// Served, which GPU workers report to the API, names each family's main
// model where it renders and leaves the others with their reason, so the
// API refuses them at the door.
func TestServedNamesRenderableFamilies(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	served := newEngine(t, f, func(c *Config) { c.Models.SD15 = "Dreamshaper 8" }).Served(context.Background())
	if got := served.Families(); len(got) != 2 || got[0] != catalog.ModelFlux || got[1] != catalog.ModelSDXL {
		t.Fatalf("families served = %v (%+v), want flux and sdxl: sd-1.5's configured model is missing", got, served)
	}
	if m := served[catalog.ModelSDXL].Models; len(m) != 1 || m[0] != "stable-diffusion-xl-base-1.0" {
		t.Errorf("sdxl renders with %v", m)
	}
	if p := served[catalog.ModelSD15].Problem; !strings.Contains(p, "Dreamshaper 8") {
		t.Errorf("sd-1.5's problem %q does not name the configured model", p)
	}
}

// A lost attempt may have left its item on another GPU's server: a retry
// cancels it there too, wherever on this host the retry runs.
func TestLeftoversAreCanceledOnEveryServer(t *testing.T) {
	t.Parallel()
	a, b := newFake(t), newFake(t)
	leftover := b.addItem(map[string]any{"nodes": map[string]any{}}, "job-lost", true)
	<-b.started
	cfg := func(f *fakeInvoke) Config {
		return Config{BaseURL: f.srv.URL, PollInterval: 10 * time.Millisecond, Logger: testLogger(t), CacheScope: f.srv.URL}
	}
	per, err := NewPerDevice([]Config{cfg(a), cfg(b)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := engine.WithDevice(WithJobID(context.Background(), "job-lost"), engine.Device{Index: 0})
	if _, err := per.Render(ctx, request(catalog.ModelSD15), nil); err != nil {
		t.Fatalf("Render on GPU 0: %v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if leftover.status != "canceled" {
		t.Fatalf("the lost attempt's item on GPU 1's server is %s, want canceled", leftover.status)
	}
}
