package invokeai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/engine/invokeai/graphcheck"
)

// MaxSide bounds width and height: larger requests are mistakes that would
// only end in an out-of-memory failure on the GPU.
const MaxSide = 4096

// Node ids of the graphs this package builds.
const (
	nodeLoader   = "model_loader"
	nodeDenoise  = "denoise"
	nodeOutput   = "l2i"
	nodeMetadata = "metadata"
)

// plan is everything an attempt needs: the graph to enqueue and how to read
// progress and the result back.
type plan struct {
	graph json.RawMessage
	// outputNode is the source node whose image is the result; empty (raw
	// graphs) means the last image the session produced.
	outputNode string
	// progressNode is the node whose progress counts; empty means any.
	progressNode string
	steps        int
	raw          bool
	jobID        string
	queries      []modelQuery
	cached       bool // some model key came from a cache
}

// validate rejects what InvokeAI could never render, before any request.
func validate(req engine.Request) error {
	if err := validateSources(req); err != nil {
		return err
	}
	if len(req.Graph) > 0 {
		if req.Steps < 0 {
			return fmt.Errorf("%w: steps %d must not be negative", engine.ErrInvalidRequest, req.Steps)
		}
		return nil
	}
	mult := 8 // noise and latents work in 8-pixel cells
	switch req.Model {
	case catalog.ModelSD15, catalog.ModelSDXL:
	case catalog.ModelFlux:
		mult = 16 // flux_denoise packs latents in 2x2 patches
	default:
		return fmt.Errorf("%w: unknown model %q", engine.ErrInvalidRequest, req.Model)
	}
	switch {
	case req.Width <= 0 || req.Width > MaxSide || req.Width%mult != 0:
		return fmt.Errorf("%w: width %d must be a multiple of %d in %d..%d", engine.ErrInvalidRequest, req.Width, mult, mult, MaxSide)
	case req.Height <= 0 || req.Height > MaxSide || req.Height%mult != 0:
		return fmt.Errorf("%w: height %d must be a multiple of %d in %d..%d", engine.ErrInvalidRequest, req.Height, mult, mult, MaxSide)
	case req.Steps <= 0:
		return fmt.Errorf("%w: steps %d must be positive", engine.ErrInvalidRequest, req.Steps)
	case req.CFGScale < 0:
		return fmt.Errorf("%w: cfg scale %g must not be negative", engine.ErrInvalidRequest, req.CFGScale)
	}
	return nil
}

// validateSources checks an image-to-image or inpainting request's
// fields: the pictures themselves are checked by InvokeAI on upload.
func validateSources(req engine.Request) error {
	switch {
	case len(req.Mask) > 0 && len(req.InitImage) == 0:
		return fmt.Errorf("%w: a mask needs an init image", engine.ErrInvalidRequest)
	case len(req.InitImage) == 0:
		return nil
	case len(req.Graph) > 0:
		return fmt.Errorf("%w: a raw graph takes no init image", engine.ErrInvalidRequest)
	case !(req.Strength >= 0 && req.Strength <= 1):
		return fmt.Errorf("%w: strength %g outside 0..1", engine.ErrInvalidRequest, req.Strength)
	}
	return nil
}

// plan resolves the models and builds the graph for req, whose init image
// and mask (if any) are already in InvokeAI under the names src gives.
func (e *Engine) plan(ctx context.Context, req engine.Request, src sources, fresh bool) (*plan, error) {
	p := &plan{steps: req.DenoiseSteps(), jobID: JobID(ctx)}
	if len(req.Graph) > 0 {
		return p, p.useRaw(req.Graph)
	}
	p.queries = e.queries(req.Model)
	models, cached, err := e.resolveModels(ctx, req.Model, p.queries, fresh)
	if err != nil {
		return nil, err
	}
	p.cached = cached
	g := newGraph("easel_t2i_" + p.jobID)
	switch req.Model {
	case catalog.ModelSD15:
		sd15Graph(g, req, models[0], e.cfg.Scheduler)
	case catalog.ModelSDXL:
		sdxlGraph(g, req, models[0], e.cfg.Scheduler)
	case catalog.ModelFlux:
		fluxGraph(g, req, models, e.cfg.FluxScheduler)
	}
	output := nodeOutput
	if src.init != "" {
		output = addSources(g, req, src)
	}
	raw, err := json.Marshal(g)
	if err != nil {
		return nil, fmt.Errorf("invokeai: encode graph: %w", err)
	}
	p.graph, p.outputNode, p.progressNode = raw, output, nodeDenoise
	return p, nil
}

// resolveModels looks up the models of qs (see queries) and checks that a
// FLUX main model has what it needs. Formats are dropped from the result:
// they are not part of a graph's model identifiers.
func (e *Engine) resolveModels(ctx context.Context, family string, qs []modelQuery, fresh bool) ([]modelID, bool, error) {
	models := make([]modelID, len(qs))
	anyCached := false
	for i, q := range qs {
		id, cached, err := e.models.resolve(ctx, q, fresh)
		if err != nil {
			return nil, false, err
		}
		models[i], anyCached = id, anyCached || cached
	}
	if family == catalog.ModelFlux {
		if err := fluxComplete(models); err != nil {
			return nil, false, err
		}
	}
	for i := range models {
		models[i].Format = ""
	}
	return models, anyCached, nil
}

// fluxSubmodels name what a FLUX graph loads besides the transformer, with
// the InvokeAI starter model that provides each.
var fluxSubmodels = []struct{ what, starter string }{
	{"a T5 encoder (model type t5_encoder)", "t5_bnb_int8_quantized_encoder"},
	{"a CLIP-L text encoder (model type clip_embed, variant large)", "clip-vit-large-patch14"},
	{"a FLUX VAE (base flux, model type vae)", "FLUX.1-schnell_ae"},
}

// fluxComplete refuses a FLUX main model that is not a diffusers pipeline
// (which bundles its own) when its T5, CLIP-L or VAE is not installed:
// InvokeAI would accept the graph and fail it at run time with a ValueError
// that looks retryable. models is main, T5, CLIP-L, VAE.
func fluxComplete(models []modelID) error {
	if models[0].Format == "diffusers" {
		return nil
	}
	var missing []string
	for i, sub := range fluxSubmodels {
		if models[i+1].Key == "" {
			missing = append(missing, fmt.Sprintf("%s, e.g. the starter model %q", sub.what, sub.starter))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: FLUX model %q (format %s) needs its text encoders and VAE installed in InvokeAI; install %s",
		engine.ErrInvalidRequest, models[0].Name, models[0].Format, strings.Join(missing, "; "))
}

// queries lists the models a family's graph loads; for FLUX the main model
// comes first, then T5, CLIP-L and VAE.
func (e *Engine) queries(family string) []modelQuery {
	m := e.cfg.Models
	main := func(base, name, def string) modelQuery {
		q := modelQuery{Base: base, Type: "main", Name: name, Strict: name != ""}
		if name == "" {
			q.Name = def
		}
		return q
	}
	switch family {
	case catalog.ModelSD15:
		q := main("sd-1", m.SD15, DefaultSD15Model)
		q.Variant = "normal"
		return []modelQuery{q}
	case catalog.ModelSDXL:
		q := main("sdxl", m.SDXL, DefaultSDXLModel)
		q.Variant = "normal"
		return []modelQuery{q}
	}
	sub := func(base, typ, name, variant string) modelQuery {
		return modelQuery{Base: base, Type: typ, Name: name, Strict: name != "", Optional: true, Variant: variant}
	}
	return []modelQuery{main("flux", m.Flux, DefaultFluxModel),
		sub("any", "t5_encoder", m.FluxT5Encoder, ""),
		sub("any", "clip_embed", m.FluxCLIPEmbed, "large"),
		sub("flux", "vae", m.FluxVAE, "")}
}

// graph is InvokeAI's Graph: nodes keyed by id, and edges between fields.
type graph struct {
	ID    string                    `json:"id"`
	Nodes map[string]map[string]any `json:"nodes"`
	Edges []graphcheck.Edge         `json:"edges"`
}

func newGraph(id string) *graph {
	return &graph{ID: id, Nodes: map[string]map[string]any{}}
}

// node adds a node. use_cache is always false: InvokeAI would otherwise
// answer an identical graph from its invocation cache with no GPU work,
// and a billed job must really render.
func (g *graph) node(id, typ string, fields map[string]any) {
	n := map[string]any{"id": id, "type": typ, "use_cache": false}
	for k, v := range fields {
		n[k] = v
	}
	g.Nodes[id] = n
}

// link connects an output field of one node to an input field of another.
func (g *graph) link(from, fromField, to, toField string) {
	g.Edges = append(g.Edges, graphcheck.Edge{Source: graphcheck.Endpoint{NodeID: from, Field: fromField},
		Destination: graphcheck.Endpoint{NodeID: to, Field: toField}})
}

// cfgOr returns the request's CFG scale, or def when it was left at zero.
func cfgOr(req engine.Request, def float64) float64 {
	if req.CFGScale > 0 {
		return req.CFGScale
	}
	return def
}

// sd15Graph: main_model_loader -> clip_skip -> compel (x2), noise,
// denoise_latents, l2i, with core_metadata on the image.
func sd15Graph(g *graph, req engine.Request, model modelID, scheduler string) {
	cfg := cfgOr(req, 7.5)
	g.node(nodeLoader, "main_model_loader", map[string]any{"model": model})
	g.node("clip_skip", "clip_skip", map[string]any{"skipped_layers": 0})
	g.node("pos_cond", "compel", map[string]any{"prompt": req.Prompt})
	g.node("neg_cond", "compel", map[string]any{"prompt": req.NegativePrompt})
	addSDCommon(g, req, cfg, scheduler, false)
	g.node(nodeMetadata, "core_metadata", metadata(req, model, "txt2img", cfg, scheduler))
	g.link(nodeLoader, "clip", "clip_skip", "clip")
	g.link("clip_skip", "clip", "pos_cond", "clip")
	g.link("clip_skip", "clip", "neg_cond", "clip")
}

// sdxlGraph: sdxl_model_loader -> sdxl_compel_prompt (x2, both CLIPs),
// noise, denoise_latents, l2i (fp32: the stock SDXL VAE overflows in fp16).
func sdxlGraph(g *graph, req engine.Request, model modelID, scheduler string) {
	cfg := cfgOr(req, 7.5)
	g.node(nodeLoader, "sdxl_model_loader", map[string]any{"model": model})
	for _, c := range [][2]string{{"pos_cond", req.Prompt}, {"neg_cond", req.NegativePrompt}} {
		id, prompt := c[0], c[1]
		g.node(id, "sdxl_compel_prompt", map[string]any{"prompt": prompt, "style": prompt,
			"original_width": req.Width, "original_height": req.Height, "target_width": req.Width,
			"target_height": req.Height, "crop_top": 0, "crop_left": 0})
		g.link(nodeLoader, "clip", id, "clip")
		g.link(nodeLoader, "clip2", id, "clip2")
	}
	addSDCommon(g, req, cfg, scheduler, true)
	md := metadata(req, model, "sdxl_txt2img", cfg, scheduler)
	md["positive_style_prompt"], md["negative_style_prompt"] = req.Prompt, req.NegativePrompt
	g.node(nodeMetadata, "core_metadata", md)
}

// addSDCommon adds the noise -> denoise_latents -> l2i tail shared by SD1.5
// and SDXL; the loader and the pos_cond/neg_cond nodes must exist.
func addSDCommon(g *graph, req engine.Request, cfg float64, scheduler string, fp32 bool) {
	g.node("noise", "noise", map[string]any{"seed": req.Seed, "width": req.Width, "height": req.Height,
		"use_cpu": true}) // CPU noise: the same seed gives the same image on any GPU
	g.node(nodeDenoise, "denoise_latents", map[string]any{"steps": req.Steps, "cfg_scale": cfg,
		"scheduler": scheduler, "denoising_start": 0, "denoising_end": 1})
	g.node(nodeOutput, "l2i", map[string]any{"fp32": fp32, "is_intermediate": false})
	g.link(nodeLoader, "unet", nodeDenoise, "unet")
	g.link("pos_cond", "conditioning", nodeDenoise, "positive_conditioning")
	g.link("neg_cond", "conditioning", nodeDenoise, "negative_conditioning")
	g.link("noise", "noise", nodeDenoise, "noise")
	g.link(nodeDenoise, "latents", nodeOutput, "latents")
	g.link(nodeLoader, "vae", nodeOutput, "vae")
	g.link(nodeMetadata, "metadata", nodeOutput, "metadata")
}

// fluxGraph: flux_model_loader -> flux_text_encoder -> flux_denoise ->
// flux_vae_decode. FLUX is guidance-distilled: the request's CFG scale
// becomes the guidance value, true CFG stays off (cfg_scale 1) and the
// negative prompt is not used. models is main, T5, CLIP-L, VAE.
func fluxGraph(g *graph, req engine.Request, models []modelID, scheduler string) {
	guidance := cfgOr(req, 3.5)
	loader := map[string]any{"model": models[0]}
	for i, field := range []string{"t5_encoder_model", "clip_embed_model", "vae_model"} {
		if models[i+1].Key != "" { // absent: the main model bundles its own
			loader[field] = models[i+1]
		}
	}
	g.node(nodeLoader, "flux_model_loader", loader)
	g.node("pos_cond", "flux_text_encoder", map[string]any{"prompt": req.Prompt})
	g.node(nodeDenoise, "flux_denoise", map[string]any{"width": req.Width, "height": req.Height,
		"num_steps": req.Steps, "guidance": guidance, "cfg_scale": 1.0, "seed": req.Seed,
		"scheduler": scheduler, "denoising_start": 0, "denoising_end": 1})
	g.node(nodeOutput, "flux_vae_decode", map[string]any{"is_intermediate": false})
	md := metadata(req, models[0], "flux_txt2img", guidance, scheduler)
	delete(md, "negative_prompt")
	delete(md, "cfg_scale")
	md["guidance"] = guidance // core_metadata takes extra fields
	g.node(nodeMetadata, "core_metadata", md)
	g.link(nodeLoader, "clip", "pos_cond", "clip")
	g.link(nodeLoader, "t5_encoder", "pos_cond", "t5_encoder")
	g.link(nodeLoader, "max_seq_len", "pos_cond", "t5_max_seq_len")
	g.link(nodeLoader, "transformer", nodeDenoise, "transformer")
	g.link("pos_cond", "conditioning", nodeDenoise, "positive_text_conditioning")
	g.link(nodeDenoise, "latents", nodeOutput, "latents")
	g.link(nodeLoader, "vae", nodeOutput, "vae")
	g.link(nodeMetadata, "metadata", nodeOutput, "metadata")
}

// metadata is the core_metadata InvokeAI embeds in the PNG, so an image
// downloaded later still says how it was made.
func metadata(req engine.Request, model modelID, mode string, cfg float64, scheduler string) map[string]any {
	return map[string]any{"generation_mode": mode, "positive_prompt": req.Prompt,
		"negative_prompt": req.NegativePrompt, "width": req.Width, "height": req.Height,
		"seed": req.Seed, "steps": req.Steps, "cfg_scale": cfg, "scheduler": scheduler, "model": model}
}

// useRaw takes the caller's graph as is, except that every node gets
// use_cache false (see graph.node). Progress follows the graph's only
// denoise node when it has exactly one.
func (p *plan) useRaw(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep 64-bit seeds exact through the round trip
	var g map[string]any
	if err := dec.Decode(&g); err != nil {
		return fmt.Errorf("%w: graph is not a JSON object: %v", engine.ErrInvalidRequest, err)
	}
	nodes, _ := g["nodes"].(map[string]any)
	if len(nodes) == 0 {
		return fmt.Errorf("%w: graph has no nodes", engine.ErrInvalidRequest)
	}
	var denoise []string
	for id, v := range nodes {
		n, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: graph node %q is not an object", engine.ErrInvalidRequest, id)
		}
		n["use_cache"] = false
		if t, _ := n["type"].(string); strings.HasSuffix(t, "denoise") || t == "denoise_latents" {
			denoise = append(denoise, id)
		}
	}
	if _, ok := g["id"]; !ok {
		g["id"] = "easel_graph_" + p.jobID
	}
	out, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("invokeai: encode graph: %w", err)
	}
	p.graph, p.raw = out, true
	if len(denoise) == 1 {
		p.progressNode = denoise[0]
	}
	return nil
}
