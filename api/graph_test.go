package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
)

// sdGraph is an SD-1.5 text-to-image graph as InvokeAI's node editor
// writes it, rendering w x h at steps; extra nodes and edges are added.
func sdGraph(w, h, steps int, extraNodes map[string]any, extraEdges ...[4]string) map[string]any {
	nodes := map[string]any{
		"loader":  map[string]any{"id": "loader", "type": "main_model_loader", "model": map[string]any{"key": "k", "hash": "h", "name": "sd15", "base": "sd-1", "type": "main"}},
		"pos":     map[string]any{"id": "pos", "type": "compel", "prompt": "a lighthouse"},
		"neg":     map[string]any{"id": "neg", "type": "compel", "prompt": ""},
		"noise":   map[string]any{"id": "noise", "type": "noise", "seed": 7, "width": w, "height": h},
		"denoise": map[string]any{"id": "denoise", "type": "denoise_latents", "steps": steps, "cfg_scale": 7.5},
		"l2i":     map[string]any{"id": "l2i", "type": "l2i"},
	}
	for id, n := range extraNodes {
		nodes[id] = n
	}
	links := append([][4]string{{"loader", "clip", "pos", "clip"}, {"loader", "clip", "neg", "clip"},
		{"loader", "unet", "denoise", "unet"}, {"pos", "conditioning", "denoise", "positive_conditioning"},
		{"neg", "conditioning", "denoise", "negative_conditioning"}, {"noise", "noise", "denoise", "noise"},
		{"denoise", "latents", "l2i", "latents"}, {"loader", "vae", "l2i", "vae"}}, extraEdges...)
	edges := make([]any, len(links))
	for i, l := range links {
		edges[i] = map[string]any{"source": map[string]any{"node_id": l[0], "field": l[1]},
			"destination": map[string]any{"node_id": l[2], "field": l[3]}}
	}
	return map[string]any{"id": "g", "nodes": nodes, "edges": edges}
}

// fluxGraph is a FLUX text-to-image graph rendering w x h at steps.
func fluxGraph(w, h, steps int) map[string]any {
	return map[string]any{"nodes": map[string]any{
		"loader":  map[string]any{"id": "loader", "type": "flux_model_loader"},
		"pos":     map[string]any{"id": "pos", "type": "flux_text_encoder", "prompt": "x"},
		"denoise": map[string]any{"id": "denoise", "type": "flux_denoise", "width": w, "height": h, "num_steps": steps},
		"decode":  map[string]any{"id": "decode", "type": "flux_vae_decode"},
	}, "edges": []any{
		map[string]any{"source": map[string]any{"node_id": "loader", "field": "transformer"}, "destination": map[string]any{"node_id": "denoise", "field": "transformer"}},
		map[string]any{"source": map[string]any{"node_id": "pos", "field": "conditioning"}, "destination": map[string]any{"node_id": "denoise", "field": "positive_text_conditioning"}},
		map[string]any{"source": map[string]any{"node_id": "denoise", "field": "latents"}, "destination": map[string]any{"node_id": "decode", "field": "latents"}},
	}}
}

// expectFields checks a 400 problem+json naming every field given.
func expectFields(t *testing.T, r response, fields ...string) problemBody {
	t.Helper()
	p := expectProblem(t, r, http.StatusBadRequest)
	for _, f := range fields {
		found := false
		for _, e := range p.Errors {
			found = found || e.Field == f
		}
		if !found {
			t.Fatalf("problem does not name %q: %+v", f, p)
		}
	}
	return p
}

// testRawGraphs: a raw graph is priced, limited and admitted by what it
// renders, never by the request's other fields.
func testRawGraphs(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 1000)
	post := func(body map[string]any) response {
		return s.do(t, http.MethodPost, "/v1/generations", token, body)
	}
	t.Run("the decoy beyond the plan is refused by its graph", func(t *testing.T) {
		expectFields(t, post(map[string]any{"prompt": "x", "width": 64, "height": 64, "steps": 1,
			"graph": sdGraph(4096, 4096, 10000, nil)}),
			"graph.nodes.noise.width", "graph.nodes.noise.height", "graph.nodes.denoise.steps")
	})
	t.Run("fields that contradict the graph are refused", func(t *testing.T) {
		expectFields(t, post(map[string]any{"prompt": "x", "model": "sdxl", "width": 64, "height": 64, "steps": 1,
			"graph": sdGraph(1024, 1024, 30, nil)}), "model", "width", "height", "steps")
	})
	t.Run("held and settled for what the graph renders", func(t *testing.T) {
		// SD-1.5 at 1024x1024 and 30 steps: 4 credits per image, not the
		// 1 of the default fields.
		r := post(map[string]any{"prompt": "x", "batch_size": 2, "graph": sdGraph(1024, 1024, 30, nil)})
		if r.status != http.StatusAccepted {
			t.Fatalf("graph job: %d %s", r.status, r.body)
		}
		var g api.GenerationView
		r.decode(t, &g)
		if g.CreditsHeld != 8 || g.Price.PerImage != 4 || g.Price.Total != 8 {
			t.Fatalf("held %d at %+v, want 8 at 4 per image", g.CreditsHeld, g.Price)
		}
		if !strings.Contains(string(g.Params), `"Width":1024`) && !strings.Contains(string(g.Params), `"width":1024`) {
			t.Fatalf("params do not say what the graph renders: %s", g.Params)
		}
		done := s.waitGeneration(t, g.ID, token, terminal)
		if done.Status != catalog.JobCompleted || done.ImagesProduced != 2 || done.CreditsSettled == nil || *done.CreditsSettled != 8 {
			t.Fatalf("finished %+v, want 2 images settled at 8", done)
		}
		for _, img := range done.Images {
			if img.Width != 1024 || img.Height != 1024 {
				t.Fatalf("image %dx%d, want the graph's 1024x1024", img.Width, img.Height)
			}
		}
		if c := s.credits(t, token); c.Available != 1000-8 || c.Held != 0 {
			t.Fatalf("credits %+v, want 992 available", c)
		}
	})
	t.Run("the fields may repeat what the graph says", func(t *testing.T) {
		r := post(map[string]any{"prompt": "x", "model": "sd-1.5", "width": 512, "height": 768, "steps": 30,
			"graph": sdGraph(512, 768, 30, nil)})
		if r.status != http.StatusAccepted {
			t.Fatalf("agreeing fields: %d %s", r.status, r.body)
		}
		var g api.GenerationView
		r.decode(t, &g)
		s.waitGeneration(t, g.ID, token, terminal)
	})
	t.Run("another user's board or image is refused", func(t *testing.T) {
		board := sdGraph(512, 512, 30, map[string]any{"l2i": map[string]any{"id": "l2i", "type": "l2i",
			"board": map[string]any{"board_id": "another-users-board"}}})
		expectFields(t, post(map[string]any{"prompt": "x", "graph": board}), "graph.nodes.l2i.board")
		image := sdGraph(512, 512, 30, map[string]any{"i2l": map[string]any{"id": "i2l", "type": "i2l",
			"image": map[string]any{"image_name": "another-users-image.png"}}})
		expectFields(t, post(map[string]any{"prompt": "x", "graph": image}), "graph.nodes.i2l.image")
		loader := sdGraph(512, 512, 30, map[string]any{"img": map[string]any{"id": "img", "type": "image"}})
		expectFields(t, post(map[string]any{"prompt": "x", "graph": loader}), "graph.nodes.img.type")
		external := sdGraph(512, 512, 30, map[string]any{"ext": map[string]any{"id": "ext", "type": "openai_image_generation"}})
		expectFields(t, post(map[string]any{"prompt": "x", "graph": external}), "graph.nodes.ext.type")
		workflow := sdGraph(512, 512, 30, map[string]any{"wf": map[string]any{"id": "wf", "type": "call_saved_workflow"}})
		expectFields(t, post(map[string]any{"prompt": "x", "graph": workflow}), "graph.nodes.wf.type")
	})
	t.Run("outputs above the plan's batch are refused", func(t *testing.T) {
		// Pro's batch is 8: nine seeds fan out into nine images per run.
		fan := sdGraph(512, 512, 30, map[string]any{
			"seeds": map[string]any{"id": "seeds", "type": "range_of_size", "start": 0, "size": 9, "step": 1},
			"it":    map[string]any{"id": "it", "type": "iterate"},
		}, [4]string{"seeds", "collection", "it", "collection"}, [4]string{"it", "item", "noise", "seed"})
		p := expectFields(t, post(map[string]any{"prompt": "x", "graph": fan}), "graph.nodes.l2i")
		if !strings.Contains(p.Errors[0].Message, "9 images") {
			t.Fatalf("fan-out not counted: %+v", p)
		}
		two := sdGraph(512, 512, 30, map[string]any{"extra": map[string]any{"id": "extra", "type": "l2i"}},
			[4]string{"denoise", "latents", "extra", "latents"})
		expectFields(t, post(map[string]any{"prompt": "x", "graph": two}), "graph.nodes.extra", "graph.nodes.l2i")
	})
	t.Run("GPU memory admission reads the graph", func(t *testing.T) {
		// FLUX at 4096x4096 is within Enterprise's resolution but not its
		// A100's memory; the default fields (SD-1.5 at 512) would fit.
		_, ent := s.newUser(t, "enterprise", 1000)
		r := s.do(t, http.MethodPost, "/v1/generations", ent, map[string]any{"prompt": "x", "graph": fluxGraph(4096, 4096, 30)})
		expectFields(t, r, "width")
		if !strings.Contains(string(r.body), "flux at 4096x4096") {
			t.Fatalf("admission did not read the graph: %s", r.body)
		}
		if c := s.credits(t, ent); c.Available != 1000 || c.Held != 0 {
			t.Fatalf("a refused graph held credits: %+v", c)
		}
	})
	var list struct{ Generations []api.GenerationView }
	s.do(t, http.MethodGet, "/v1/generations", token, nil).decode(t, &list)
	if len(list.Generations) != 2 {
		t.Fatalf("refused graphs left traces: %d generations, want the 2 accepted", len(list.Generations))
	}
}
