package graphcheck

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/easel/easel/internal/pricing"
	"github.com/easel/easel/internal/testenv"
)

// tg builds test graphs the way the node editor writes them.
type tg struct {
	nodes map[string]map[string]any
	edges []map[string]any
}

func newTG() *tg { return &tg{nodes: map[string]map[string]any{}} }

// node adds a node; kv are field, value pairs.
func (g *tg) node(id, typ string, kv ...any) *tg {
	n := map[string]any{"id": id, "type": typ}
	for i := 0; i+1 < len(kv); i += 2 {
		n[kv[i].(string)] = kv[i+1]
	}
	g.nodes[id] = n
	return g
}

func (g *tg) link(src, srcField, dst, dstField string) *tg {
	g.edges = append(g.edges, map[string]any{"source": map[string]any{"node_id": src, "field": srcField},
		"destination": map[string]any{"node_id": dst, "field": dstField}})
	return g
}

func (g *tg) json() []byte {
	b, err := json.Marshal(map[string]any{"id": "g", "nodes": g.nodes, "edges": g.edges})
	if err != nil {
		panic(err) // test graphs are plain maps
	}
	return b
}

// sd15 is the SD-1.5 text-to-image graph: loader, prompts, noise (w x h),
// denoise_latents (steps), l2i.
func sd15(w, h, steps any) *tg {
	g := newTG().
		node("loader", "main_model_loader", "model", map[string]any{"key": "k", "hash": "h", "name": "sd15", "base": "sd-1", "type": "main"}).
		node("pos", "compel", "prompt", "a lighthouse").
		node("neg", "compel", "prompt", "").
		node("noise", "noise", "seed", 1, "width", w, "height", h).
		node("denoise", "denoise_latents", "steps", steps, "cfg_scale", 7.5, "scheduler", "euler").
		node("l2i", "l2i", "is_intermediate", false)
	return g.link("loader", "clip", "pos", "clip").link("loader", "clip", "neg", "clip").
		link("loader", "unet", "denoise", "unet").link("pos", "conditioning", "denoise", "positive_conditioning").
		link("neg", "conditioning", "denoise", "negative_conditioning").link("noise", "noise", "denoise", "noise").
		link("denoise", "latents", "l2i", "latents").link("loader", "vae", "l2i", "vae")
}

// flux is a FLUX text-to-image graph; fields are flux_denoise's.
func flux(kv ...any) *tg {
	return newTG().
		node("loader", "flux_model_loader", "model", map[string]any{"key": "k", "hash": "h", "name": "flux", "base": "flux", "type": "main"}).
		node("pos", "flux_text_encoder", "prompt", "a lighthouse").
		node("denoise", "flux_denoise", kv...).
		node("decode", "flux_vae_decode").
		link("loader", "clip", "pos", "clip").link("loader", "t5_encoder", "pos", "t5_encoder").
		link("loader", "transformer", "denoise", "transformer").
		link("pos", "conditioning", "denoise", "positive_text_conditioning").
		link("denoise", "latents", "decode", "latents").link("loader", "vae", "decode", "vae")
}

var pro = Limits{MaxSide: 2048, MaxSteps: 150}

func TestInspectSummarizesWhatTheGraphRenders(t *testing.T) {
	fixture, err := os.ReadFile(filepath.Join("testdata", "sdxl_t2i_graph.json"))
	if err != nil {
		t.Fatal(err)
	}
	hires := sd15(512, 512, 30)
	hires.nodes["l2i"]["is_intermediate"] = true
	hires.node("resize", "img_resize", "width", 1024, "height", 1024).
		node("i2l", "i2l").
		node("denoise2", "denoise_latents", "steps", 15, "denoising_start", 0.5).
		node("out", "l2i").
		link("l2i", "image", "resize", "image").link("resize", "image", "i2l", "image").
		link("loader", "vae", "i2l", "vae").link("i2l", "latents", "denoise2", "latents").
		link("loader", "unet", "denoise2", "unet").link("pos", "conditioning", "denoise2", "positive_conditioning").
		link("neg", "conditioning", "denoise2", "negative_conditioning").
		link("denoise2", "latents", "out", "latents").link("loader", "vae", "out", "vae")
	// A pass fanned out three times that reaches no output is still paid.
	fanned := sd15(512, 512, 30).
		node("sizes", "range_of_size", "start", 0, "size", 3, "step", 1).
		node("it", "iterate").
		node("noise2", "noise", "width", 512, "height", 512).
		node("waste", "denoise_latents", "steps", 30).
		link("sizes", "collection", "it", "collection").link("it", "item", "noise2", "seed").
		link("noise2", "noise", "waste", "noise").link("loader", "unet", "waste", "unet")
	defaults := sd15(0, 0, 0)
	delete(defaults.nodes["noise"], "width")
	delete(defaults.nodes["noise"], "height")
	delete(defaults.nodes["denoise"], "steps")
	// A seed from an integer node, and a save_image after the decoder.
	saved := sd15(768, 512, 20).node("seed", "rand_int", "low", 0, "high", 100).
		node("save", "save_image").link("seed", "value", "noise", "seed").link("l2i", "image", "save", "image")
	cases := []struct {
		name    string
		graph   []byte
		model   string
		w, h    int
		steps   int
		passes  []pricing.Pass
		outputs []string
		price   int
	}{
		{"sd-1.5", sd15(512, 512, 30).json(), "sd-1.5", 512, 512, 30,
			[]pricing.Pass{{Model: "sd-1.5", Width: 512, Height: 512, Steps: 30, Count: 1}}, []string{"l2i"}, 1},
		{"sdxl fixture", fixture, "sdxl", 1024, 1024, 30,
			[]pricing.Pass{{Model: "sdxl", Width: 1024, Height: 1024, Steps: 30, Count: 1}}, []string{"l2i"}, 2},
		{"InvokeAI defaults: noise 512, 10 steps", defaults.json(), "sd-1.5", 512, 512, 10,
			[]pricing.Pass{{Model: "sd-1.5", Width: 512, Height: 512, Steps: 10, Count: 1}}, []string{"l2i"}, 1},
		{"flux defaults: 1024, 4 steps", flux().json(), "flux", 1024, 1024, 4,
			[]pricing.Pass{{Model: "flux", Width: 1024, Height: 1024, Steps: 4, Count: 1}}, []string{"decode"}, 1},
		{"flux 1024 x 30", flux("width", 1024, "height", 1024, "num_steps", 30).json(), "flux", 1024, 1024, 30,
			[]pricing.Pass{{Model: "flux", Width: 1024, Height: 1024, Steps: 30, Count: 1}}, []string{"decode"}, 6},
		{"hires fix: both passes at the larger size", hires.json(), "sd-1.5", 1024, 1024, 30,
			[]pricing.Pass{{Model: "sd-1.5", Width: 1024, Height: 1024, Steps: 30, Count: 1},
				{Model: "sd-1.5", Width: 1024, Height: 1024, Steps: 15, Count: 1}}, []string{"out"}, 6},
		{"fan-out counts", fanned.json(), "sd-1.5", 512, 512, 30,
			[]pricing.Pass{{Model: "sd-1.5", Width: 512, Height: 512, Steps: 30, Count: 1},
				{Model: "sd-1.5", Width: 512, Height: 512, Steps: 30, Count: 3}}, []string{"l2i"}, 4},
		{"save_image is the output", saved.json(), "sd-1.5", 768, 512, 20,
			[]pricing.Pass{{Model: "sd-1.5", Width: 768, Height: 512, Steps: 20, Count: 1}}, []string{"save"}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Inspect(c.graph, pro)
			if err != nil {
				t.Fatal(err)
			}
			if s.Model != c.model || s.Width != c.w || s.Height != c.h || s.Steps != c.steps || s.Images != 1 {
				t.Errorf("summary %+v, want %s %dx%d %d steps, 1 image", s, c.model, c.w, c.h, c.steps)
			}
			if !reflect.DeepEqual(s.Passes, c.passes) || !reflect.DeepEqual(s.Outputs, c.outputs) {
				t.Errorf("passes %+v outputs %v, want %+v %v", s.Passes, s.Outputs, c.passes, c.outputs)
			}
			q, err := pricing.Passes(s.Passes, 1)
			if err != nil || q.PerImage != c.price {
				t.Errorf("price %+v %v, want %d per image", q, err, c.price)
			}
		})
	}
}

func TestInspectRefuses(t *testing.T) {
	withNode := func(id, typ string, kv ...any) []byte { return sd15(512, 512, 30).node(id, typ, kv...).json() }
	edit := func(f func(g *tg)) []byte { g := sd15(512, 512, 30); f(g); return g.json() }
	fanOut := func(n int) []byte {
		return sd15(512, 512, 30).node("seeds", "range_of_size", "size", n).node("it", "iterate").
			link("seeds", "collection", "it", "collection").link("it", "item", "noise", "seed").json()
	}
	cases := []struct {
		name, field, says string
		graph             []byte
	}{
		{"the decoy: 4096x4096", "graph.nodes.noise.width", "between 64 and 2048", sd15(4096, 4096, 30).json()},
		{"the decoy: 10,000 steps", "graph.nodes.denoise.steps", "between 1 and 150", sd15(512, 512, 10000).json()},
		{"size as a string", "graph.nodes.noise.width", "integer", sd15("4096", 512, 30).json()},
		{"size as a float", "graph.nodes.noise.height", "integer", sd15(512, 512.0001, 30).json()},
		{"size null", "graph.nodes.noise.width", "integer", sd15(nil, 512, 30).json()},
		{"size not a multiple of 8", "graph.nodes.noise.width", "multiple of 8", sd15(516, 512, 30).json()},
		{"flux size not a multiple of 16", "graph.nodes.denoise.width", "multiple of 16", flux("width", 1000).json()},
		{"flux steps", "graph.nodes.denoise.num_steps", "between 1 and 150", flux("num_steps", 151).json()},
		{"size connected from a node", "graph.nodes.noise.width", "literal value",
			sd15(512, 512, 30).node("big", "integer", "value", 4096).link("big", "value", "noise", "width").json()},
		{"steps connected from a node", "graph.nodes.denoise.steps", "literal value",
			sd15(512, 512, 30).node("many", "integer", "value", 10000).link("many", "value", "denoise", "steps").json()},
		{"another user's board", "graph.nodes.l2i.board", "board_id",
			edit(func(g *tg) { g.nodes["l2i"]["board"] = map[string]any{"board_id": "someone-elses-board"} })},
		{"another user's image", "graph.nodes.i2l.image", "image_name",
			withNode("i2l", "i2l", "image", map[string]any{"image_name": "someone-elses.png"})},
		{"an image buried in metadata", "graph.nodes.l2i.metadata", "image_name",
			edit(func(g *tg) {
				g.nodes["l2i"]["metadata"] = map[string]any{"x": []any{map[string]any{"image_name": "a.png"}}}
			})},
		{"image loader", "graph.nodes.img.type", "stored images", withNode("img", "image")},
		{"external API", "graph.nodes.ext.type", "external services", withNode("ext", "openai_image_generation")},
		{"workflow library", "graph.nodes.wf.type", "saved workflows", withNode("wf", "call_saved_workflow")},
		{"file writer", "graph.nodes.f.type", "not allowed", withNode("f", "save_image_to_file")},
		{"upscaler", "graph.nodes.up.type", "not allowed", withNode("up", "esrgan")},
		{"missing type", "graph.nodes.x.type", "node type", withNode("x", "")},
		{"id differs from key", "graph.nodes.n.id", "must equal", edit(func(g *tg) { g.nodes["n"] = map[string]any{"id": "m", "type": "integer"} })},
		{"loader with another base", "graph.nodes.loader.model", `"sd-1" models, not "sdxl"`,
			edit(func(g *tg) { g.nodes["loader"]["model"] = map[string]any{"key": "k", "base": "sdxl"} })},
		{"two outputs", "graph.nodes.extra", "one of 2 images",
			sd15(512, 512, 30).node("extra", "l2i").link("denoise", "latents", "extra", "latents").json()},
		{"fan-out above the batch", "graph.nodes.l2i", "one of 9 images", fanOut(9)},
		{"fan-out of two", "graph.nodes.l2i", "one of 2 images", fanOut(2)},
		{"fan-out beyond bounds", "graph.nodes.it", "more than 1000", fanOut(5000)},
		{"range fan-out", "graph.nodes.l2i", "one of 5 images",
			sd15(512, 512, 30).node("r", "range", "start", 0, "stop", 10, "step", 2).node("it", "iterate").
				link("r", "collection", "it", "collection").link("it", "item", "noise", "seed").json()},
		{"collect fan-out", "graph.nodes.l2i", "one of 3 images",
			sd15(512, 512, 30).node("a", "integer", "value", 1).node("b", "integer", "value", 2).
				node("c", "collect", "collection", []any{7}).node("it", "iterate").
				link("a", "value", "c", "item").link("b", "value", "c", "item").
				link("c", "collection", "it", "collection").link("it", "item", "noise", "seed").json()},
		{"iterate over an unknown size", "graph.nodes.it.collection", "size is known",
			sd15(512, 512, 30).node("s", "string", "value", "x").node("it", "iterate").
				link("s", "value", "it", "collection").json()},
		{"collection size connected", "graph.nodes.seeds.size", "literal value",
			sd15(512, 512, 30).node("n", "integer", "value", 100).node("seeds", "range_of_size").
				link("n", "value", "seeds", "size").json()},
		{"no output", "graph", "saves no image",
			edit(func(g *tg) { g.nodes["l2i"] = map[string]any{"id": "l2i", "type": "integer"} })},
		{"no denoise", "graph", "renders nothing", newTG().node("n", "noise").node("i", "integer").json()},
		{"edge from nowhere", "graph.nodes.l2i.latents", "not in the graph",
			sd15(512, 512, 30).link("ghost", "latents", "l2i", "latents").json()},
		{"edge to nowhere", "graph.edges", "not in the graph", sd15(512, 512, 30).link("l2i", "image", "ghost", "image").json()},
		{"cycle", "graph.nodes.", "cycle",
			sd15(512, 512, 30).node("a", "add").node("b", "add").link("a", "value", "b", "a").link("b", "value", "a", "a").json()},
		{"bad edge", "graph.edges[0]", "destination", []byte(`{"nodes":{"n":{"id":"n","type":"integer"}},"edges":[{"source":{"node_id":"n"}}]}`)},
		{"unknown top-level field", "graph", "unknown field", []byte(`{"nodes":{"n":{"id":"n","type":"integer"}},"edges":[],"data":[]}`)},
		{"no nodes", "graph", "at least one node", []byte(`{"nodes":{},"edges":[]}`)},
		{"not an object", "graph", "graph object", []byte(`[1]`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Inspect(c.graph, pro)
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("accepted (%+v) or wrong error %v", s, err)
			}
			for _, p := range ge.Problems {
				if strings.HasPrefix(p.Field, c.field) && strings.Contains(p.Message, c.says) {
					return
				}
			}
			t.Fatalf("no problem at %s saying %q: %v", c.field, c.says, err)
		})
	}
}

func TestRangeLenIsPythons(t *testing.T) {
	for _, c := range [][4]int{{0, 10, 1, 10}, {0, 10, 3, 4}, {10, 0, -3, 4}, {0, 0, 1, 0}, {5, 0, 1, 0}, {0, 5, -1, 0}, {0, 5, 0, 0}} {
		if got := rangeLen(c[0], c[1], c[2]); got != c[3] {
			t.Errorf("len(range(%d, %d, %d)) = %d, want %d", c[0], c[1], c[2], got, c[3])
		}
	}
}

// TestAllowlistMatchesInvokeAI checks every allowed node type and every
// field the inspector reads against InvokeAI's OpenAPI document: the names,
// the defaults it assumes, and which nodes output an image.
func TestAllowlistMatchesInvokeAI(t *testing.T) {
	schemas := loadSchemas(t)
	for _, typ := range AllowedTypes() {
		sp := allowlist[typ]
		s, ok := schemas[typ]
		if !ok {
			t.Errorf("%s: not an InvokeAI node type", typ)
			continue
		}
		props, _ := s["properties"].(map[string]any)
		prop := func(field string) map[string]any {
			p, ok := props[field].(map[string]any)
			if !ok {
				t.Errorf("%s has no field %q", typ, field)
			}
			return p
		}
		for _, f := range sp.sizes {
			p := prop(f.name)
			if want := p["default"]; f.def != 0 && want != float64(f.def) {
				t.Errorf("%s.%s: default %v in InvokeAI, %d here", typ, f.name, want, f.def)
			}
		}
		if sp.steps != "" {
			if want := prop(sp.steps)["default"]; want != float64(sp.stepsDefault) {
				t.Errorf("%s.%s: default %v in InvokeAI, %d here", typ, sp.steps, want, sp.stepsDefault)
			}
		}
		for _, f := range sp.literals {
			prop(f)
		}
		if sp.base != "" {
			prop("model")
		}
		out, _ := s["output"].(map[string]any)
		if isImage := out["$ref"] == "#/components/schemas/ImageOutput"; isImage != sp.image {
			t.Errorf("%s: outputs %v; image output here: %v", typ, out["$ref"], sp.image)
		}
	}
	for _, f := range []string{"start", "stop", "step"} {
		if d := schemas["range"]["properties"].(map[string]any)[f].(map[string]any)["default"]; d != map[string]float64{"start": 0, "stop": 10, "step": 1}[f] {
			t.Errorf("range.%s default %v", f, d)
		}
	}
}

// loadSchemas maps node types to their schemas in shared/invokeai/openapi.json
// (or EASEL_INVOKEAI_OPENAPI).
func loadSchemas(t *testing.T) map[string]map[string]any {
	path := os.Getenv("EASEL_INVOKEAI_OPENAPI")
	if path == "" {
		path = filepath.Join(testenv.RepoRoot(t), "..", "shared", "invokeai", "openapi.json")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("InvokeAI's openapi.json: %v", err)
		}
		t.Skipf("InvokeAI's openapi.json (set EASEL_INVOKEAI_OPENAPI): %v", err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for name, s := range doc.Components.Schemas {
		props, _ := s["properties"].(map[string]any)
		typ, _ := props["type"].(map[string]any)
		if d, ok := typ["default"].(string); ok && strings.HasSuffix(name, "Invocation") {
			out[d] = s
		}
	}
	return out
}
