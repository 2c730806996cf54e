package graphcheck

import (
	"slices"

	"github.com/easel/easel/internal/catalog"
)

// spec is what the inspector knows of an allowed node type.
type spec struct {
	loader       string      // model family this node loads ("": not a main-model loader)
	base         string      // the model base a loader takes
	image        bool        // outputs an ImageOutput
	sizes        []sizeField // literal width/height fields
	steps        string      // the denoise pass's steps field ("": not a denoise pass)
	stepsDefault int
	collection   bool     // makes a collection whose size is known
	literals     []string // other fields that must be literal values
}

// sizeField is a width or height with InvokeAI's default and constraints.
type sizeField struct {
	name     string
	def      int
	nullable bool // null or absent means "not set" (lresize)
	min      int
	multiple int
}

// literal reports whether field sets the price (a size, steps, or a
// collection's size) and so may not be connected from another node.
func (s spec) literal(field string) bool {
	if field == s.steps || slices.Contains(s.literals, field) {
		return true
	}
	for _, f := range s.sizes {
		if f.name == field {
			return true
		}
	}
	return false
}

func sized(def, min, multiple int, nullable bool) []sizeField {
	return []sizeField{{"width", def, nullable, min, multiple}, {"height", def, nullable, min, multiple}}
}

// allowlist holds the node types a raw graph may use: text-to-image for
// SD-1.5, SDXL (with refiner) and FLUX.1 with LoRAs, second passes, image
// resizing, iteration and plain values. Everything else is refused: nodes
// that load stored images or boards, call external services or saved
// workflows, read files, or whose cost the inspector cannot bound (upscalers,
// video, other model families). Defaults are InvokeAI 6.14's.
var allowlist = map[string]spec{
	// Model loaders and model patches.
	"main_model_loader":         {loader: catalog.ModelSD15, base: "sd-1"},
	"sdxl_model_loader":         {loader: catalog.ModelSDXL, base: "sdxl"},
	"sdxl_refiner_model_loader": {loader: catalog.ModelSDXL, base: "sdxl-refiner"},
	"flux_model_loader":         {loader: catalog.ModelFlux, base: "flux"},
	"vae_loader":                {},
	"lora_loader":               {},
	"sdxl_lora_loader":          {},
	"flux_lora_loader":          {},
	"clip_skip":                 {},
	"seamless":                  {},
	"freeu":                     {},
	// Prompts.
	"compel":                     {},
	"sdxl_compel_prompt":         {},
	"sdxl_refiner_compel_prompt": {},
	"flux_text_encoder":          {},
	// Latents and denoising.
	"noise":           {sizes: sized(512, 64, 8, false)},
	"denoise_latents": {steps: "steps", stepsDefault: 10},
	"flux_denoise":    {sizes: sized(1024, 64, 16, false), steps: "num_steps", stepsDefault: 4},
	"lresize":         {sizes: sized(0, 64, 8, true)},
	"i2l":             {},
	"flux_vae_encode": {},
	// Images.
	"l2i":             {image: true},
	"flux_vae_decode": {image: true},
	"save_image":      {image: true},
	"img_resize":      {image: true, sizes: sized(512, 64, 8, false)},
	// Iteration.
	"iterate":            {},
	"collect":            {collection: true},
	"range":              {collection: true, literals: []string{"start", "stop", "step"}},
	"range_of_size":      {collection: true, literals: []string{"size"}},
	"random_range":       {collection: true, literals: []string{"size"}},
	"integer_collection": {collection: true, literals: []string{"collection"}},
	"float_collection":   {collection: true, literals: []string{"collection"}},
	"string_collection":  {collection: true, literals: []string{"collection"}},
	// Values, math and metadata.
	"integer":           {},
	"float":             {},
	"string":            {},
	"boolean":           {},
	"rand_int":          {},
	"rand_float":        {},
	"add":               {},
	"sub":               {},
	"mul":               {},
	"div":               {},
	"integer_math":      {},
	"float_math":        {},
	"round_float":       {},
	"float_to_int":      {},
	"string_join":       {},
	"string_join_three": {},
	"string_replace":    {},
	"scheduler":         {},
	"core_metadata":     {},
}

// AllowedTypes lists the allowed node types, sorted.
func AllowedTypes() []string {
	out := make([]string, 0, len(allowlist))
	for t := range allowlist {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
