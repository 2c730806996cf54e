// Package graphcheck inspects a raw InvokeAI graph before Easel accepts it:
// it refuses nodes outside an allowlist and references to images or boards,
// and works out what the graph renders (model family, size, denoise passes
// and their steps, images saved per run, iterate fan-out), so that price,
// plan limits and GPU admission follow the graph instead of the request's
// other fields. Node type and field names are InvokeAI 6.x's (see
// shared/invokeai/openapi.json). It is pure: no I/O, no InvokeAI.
package graphcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/pricing"
)

// MaxFanOut bounds how many times iterate nodes may run any node.
const MaxFanOut = 1000

// Limits are the bounds a graph's literal values must respect.
type Limits struct {
	MaxSide  int // largest width or height of any sized node (the plan's max_resolution)
	MaxSteps int // most steps of one denoise pass
}

// Summary is what a graph renders, per run.
type Summary struct {
	// Model is the heaviest model family the graph loads (flux > sdxl >
	// sd-1.5), for GPU memory admission.
	Model string
	// Width and Height are the largest any node of the graph produces.
	Width, Height int
	// Steps is the most steps of any one denoise pass.
	Steps int
	// Passes are the denoise passes of one run, for pricing.
	Passes []pricing.Pass
	// Outputs are the nodes whose images are the run's result (image nodes
	// nothing else consumes); Images counts them with their fan-out.
	Outputs []string
	Images  int
}

// FieldError names what is wrong and where: Field is "graph",
// "graph.nodes.<id>" or "graph.nodes.<id>.<field>".
type FieldError struct {
	Field   string
	Message string
}

// Error lists every problem found in a graph.
type Error struct{ Problems []FieldError }

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Message
	}
	return "graph refused: " + strings.Join(parts, "; ")
}

// Inspect checks raw against the allowlist and lim, and summarizes what it
// renders. A refusal is an *Error.
func Inspect(raw []byte, lim Limits) (Summary, error) {
	c := &checker{lim: lim, out: map[string][]Edge{}, in: map[string][]Edge{}}
	if !c.parse(raw) {
		return Summary{}, c.err()
	}
	c.checkNodes()
	c.checkEdges()
	if len(c.problems) > 0 {
		return Summary{}, c.err()
	}
	order, ok := c.topoOrder()
	if !ok {
		return Summary{}, c.err()
	}
	mult := c.fanOut(order)
	s := c.summarize(mult)
	if len(c.problems) > 0 {
		return Summary{}, c.err()
	}
	return s, nil
}

type node struct {
	typ    string
	spec   spec
	fields map[string]json.RawMessage
}

// Edge connects one node's output field to another node's input field, as
// InvokeAI's graph JSON spells it.
type Edge struct {
	Source      Endpoint `json:"source"`
	Destination Endpoint `json:"destination"`
}

// Endpoint is one end of an Edge.
type Endpoint struct {
	NodeID string `json:"node_id"`
	Field  string `json:"field"`
}

type checker struct {
	lim      Limits
	nodes    map[string]*node
	ids      []string // sorted, so that errors come in a stable order
	out, in  map[string][]Edge
	problems []FieldError
}

func (c *checker) add(field, format string, args ...any) {
	c.problems = append(c.problems, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error { return &Error{Problems: c.problems} }

func nodeField(id, field string) string { return "graph.nodes." + id + "." + field }

// parse reads the graph's structure: {"id"?, "nodes": {...}, "edges": [...]}.
// addDecodeError says why a graph did not decode, in JSON's terms: the
// field of the wrong type and the kind it must be, never Go's types.
func (c *checker) addDecodeError(err error) {
	const shape = `must be an InvokeAI graph object {"nodes": {...}, "edges": [...]}`
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ) && typ.Field != "":
		c.add("graph."+typ.Field, "must be %s", jsonKind(typ.Type))
	case errors.As(err, &typ):
		c.add("graph", shape)
	default:
		c.add("graph", "%s: %s", shape, strings.TrimPrefix(err.Error(), "json: "))
	}
}

// jsonKind names, with its article, the JSON value a Go type takes.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	}
	return "a number"
}

func (c *checker) parse(raw []byte) bool {
	var g struct {
		ID    *string                               `json:"id"`
		Nodes map[string]map[string]json.RawMessage `json:"nodes"`
		Edges []json.RawMessage                     `json:"edges"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		c.addDecodeError(err)
		return false
	}
	if len(g.Nodes) == 0 {
		c.add("graph", "must have at least one node")
		return false
	}
	c.nodes = make(map[string]*node, len(g.Nodes))
	for id, fields := range g.Nodes {
		if fields == nil {
			c.add("graph.nodes."+id, "must be a node object")
			continue
		}
		c.nodes[id] = &node{fields: fields}
		c.ids = append(c.ids, id)
	}
	sort.Strings(c.ids)
	for i, raw := range g.Edges {
		var e Edge
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || e.Source.NodeID == "" || e.Source.Field == "" ||
			e.Destination.NodeID == "" || e.Destination.Field == "" {
			c.add(fmt.Sprintf("graph.edges[%d]", i), "must be {\"source\": {\"node_id\", \"field\"}, \"destination\": {\"node_id\", \"field\"}}")
			continue
		}
		c.out[e.Source.NodeID] = append(c.out[e.Source.NodeID], e)
		c.in[e.Destination.NodeID] = append(c.in[e.Destination.NodeID], e)
	}
	return len(c.problems) == 0
}

// checkNodes applies the allowlist, the id rule and the reference rule to
// every node, and reads its literal values.
func (c *checker) checkNodes() {
	for _, id := range c.ids {
		n := c.nodes[id]
		if err := json.Unmarshal(n.fields["type"], &n.typ); err != nil || n.typ == "" {
			c.add(nodeField(id, "type"), "must be a node type string")
			continue
		}
		sp, ok := allowlist[n.typ]
		if !ok {
			c.add(nodeField(id, "type"), "node type %q is not allowed; %s", n.typ, refusedReason(n.typ))
			continue
		}
		n.spec = sp
		if raw, ok := n.fields["id"]; ok {
			var got string
			if json.Unmarshal(raw, &got) != nil || got != id {
				c.add(nodeField(id, "id"), "must equal the node's key %q", id)
			}
		}
		c.checkReferences(id, n)
		c.checkLiterals(id, n)
	}
}

// refusedReason says why a known kind of node is refused.
func refusedReason(typ string) string {
	switch {
	case typ == "image" || strings.HasPrefix(typ, "image_") || strings.Contains(typ, "metadata_from_image"):
		return "a graph may not load stored images (it may use only the images it makes itself)"
	case strings.HasSuffix(typ, "_image_generation") || strings.HasPrefix(typ, "external") || typ == "text_llm":
		return "nodes that call external services are not allowed"
	case strings.Contains(typ, "workflow"):
		return "saved workflows cannot be called from a graph"
	}
	return "see the allowlist in docs/invokeai.md"
}

// forbiddenKeys mark a reference to something stored in InvokeAI: an image
// (ImageField) or a board (BoardField). Easel has no uploads, so nothing
// stored there belongs to the caller.
var forbiddenKeys = []string{"image_name", "board_id"}

func (c *checker) checkReferences(id string, n *node) {
	for field, raw := range n.fields {
		if field == "id" || field == "type" {
			continue
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			c.add(nodeField(id, field), "is not valid JSON: %v", err)
			continue
		}
		if key := findKey(v); key != "" {
			c.add(nodeField(id, field), "names a stored image or board (%s); a graph may use only the images it makes itself", key)
		}
	}
}

// findKey returns the first forbidden key anywhere in v.
func findKey(v any) string {
	switch t := v.(type) {
	case map[string]any:
		for _, k := range forbiddenKeys {
			if _, ok := t[k]; ok {
				return k
			}
		}
		for _, x := range t {
			if k := findKey(x); k != "" {
				return k
			}
		}
	case []any:
		for _, x := range t {
			if k := findKey(x); k != "" {
				return k
			}
		}
	}
	return ""
}

// checkLiterals validates the values that set the price, and a loader's
// model base.
func (c *checker) checkLiterals(id string, n *node) {
	for _, f := range n.spec.sizes {
		v, set := c.intField(id, n, f.name, f.def, f.nullable)
		if !set {
			continue
		}
		switch {
		case v < f.min || v > c.lim.MaxSide:
			c.add(nodeField(id, f.name), "must be between %d and %d on your plan", f.min, c.lim.MaxSide)
		case f.multiple > 1 && v%f.multiple != 0:
			c.add(nodeField(id, f.name), "must be a multiple of %d", f.multiple)
		}
	}
	if n.spec.steps != "" {
		if v, _ := c.intField(id, n, n.spec.steps, n.spec.stepsDefault, false); v < 1 || v > c.lim.MaxSteps {
			c.add(nodeField(id, n.spec.steps), "must be between 1 and %d", c.lim.MaxSteps)
		}
	}
	if n.spec.base != "" {
		var m struct {
			Base *string `json:"base"`
		}
		if raw, ok := n.fields["model"]; ok && json.Unmarshal(raw, &m) == nil && m.Base != nil && *m.Base != n.spec.base {
			c.add(nodeField(id, "model"), "%s loads %q models, not %q", n.typ, n.spec.base, *m.Base)
		}
	}
}

// intField reads an integer literal, or def when absent. A nullable field
// that is null or absent with no default reports set false. Anything but a
// plain JSON integer is refused: InvokeAI would coerce "4096" or 4096.0.
func (c *checker) intField(id string, n *node, field string, def int, nullable bool) (v int, set bool) {
	raw, ok := n.fields[field]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		if nullable {
			return 0, false
		}
		if ok {
			c.add(nodeField(id, field), "must be an integer")
			return def, false
		}
		return def, true
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		c.add(nodeField(id, field), "must be an integer")
		return def, false
	}
	return v, true
}

// checkEdges requires edges between existing nodes, literal values where
// they set the price, and known collection sizes.
func (c *checker) checkEdges() {
	for _, id := range c.ids {
		for _, e := range c.in[id] {
			src, ok := c.nodes[e.Source.NodeID]
			if !ok {
				c.add(nodeField(id, e.Destination.Field), "is connected from node %q, which is not in the graph", e.Source.NodeID)
				continue
			}
			dst := c.nodes[id]
			if dst.spec.literal(e.Destination.Field) {
				c.add(nodeField(id, e.Destination.Field), "sets the price, so it must be a literal value, not connected from node %q", e.Source.NodeID)
			}
			if e.Destination.Field == "collection" && (dst.typ == "iterate" || dst.typ == "collect") && !src.spec.collection {
				c.add(nodeField(id, "collection"), "must come from collect, range, range_of_size, random_range or a *_collection node (so its size is known), not %s", src.typ)
			}
		}
	}
	for dst, edges := range c.in {
		if _, ok := c.nodes[dst]; !ok {
			c.add("graph.edges", "an Edge from node %q ends at node %q, which is not in the graph", edges[0].Source.NodeID, dst)
		}
	}
}

// topoOrder sorts the nodes so every edge's source comes first; a cycle is
// refused.
func (c *checker) topoOrder() ([]string, bool) {
	indeg := make(map[string]int, len(c.nodes))
	for _, id := range c.ids {
		indeg[id] = len(c.in[id])
	}
	var ready, order []string
	for _, id := range c.ids {
		if indeg[id] == 0 {
			ready = append(ready, id)
		}
	}
	for len(ready) > 0 {
		id := ready[0]
		ready = ready[1:]
		order = append(order, id)
		for _, e := range c.out[id] {
			if indeg[e.Destination.NodeID]--; indeg[e.Destination.NodeID] == 0 {
				ready = append(ready, e.Destination.NodeID)
			}
		}
	}
	if len(order) == len(c.nodes) {
		return order, true
	}
	for _, id := range c.ids {
		if indeg[id] > 0 {
			c.add("graph.nodes."+id, "is on a cycle of edges")
			break
		}
	}
	return nil, false
}

// fanOut counts how many times each node runs per graph run. A node runs as
// often as its most repeated input; iterate multiplies by the size of its
// collection. Collect is not taken to undo an iterate (a node after it is
// counted as often as the items collected): that over-counts only graphs
// that iterate again after collecting, and never under-counts.
func (c *checker) fanOut(order []string) map[string]int {
	mult := make(map[string]int, len(order))
	size := make(map[string]int) // collection sizes
	for _, id := range order {
		n := c.nodes[id]
		m := 1
		for _, e := range c.in[id] {
			m = max(m, mult[e.Source.NodeID])
		}
		switch n.typ {
		case "iterate":
			m = c.literalLen(id, n)
			for _, e := range c.in[id] {
				if e.Destination.Field == "collection" {
					m = mult[e.Source.NodeID] * size[e.Source.NodeID]
				}
			}
		case "collect":
			total := c.literalLen(id, n)
			for _, e := range c.in[id] {
				if e.Destination.Field == "collection" {
					total += mult[e.Source.NodeID] * size[e.Source.NodeID]
				} else {
					total += mult[e.Source.NodeID]
				}
			}
			size[id] = total
		default:
			if n.spec.collection {
				size[id] = c.collectionSize(id, n)
			}
		}
		if m > MaxFanOut || size[id] > MaxFanOut {
			c.add("graph.nodes."+id, "fans out to more than %d runs", MaxFanOut)
			m, size[id] = MaxFanOut, min(size[id], MaxFanOut)
		}
		mult[id] = m
	}
	return mult
}

// literalLen is the length of a node's literal "collection" list.
func (c *checker) literalLen(id string, n *node) int {
	raw, ok := n.fields["collection"]
	if !ok {
		return 0
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		c.add(nodeField(id, "collection"), "must be a list")
	}
	return len(list)
}

// collectionSize is the number of items a range or collection node makes.
func (c *checker) collectionSize(id string, n *node) int {
	switch n.typ {
	case "range":
		start, _ := c.intField(id, n, "start", 0, false)
		stop, _ := c.intField(id, n, "stop", 10, false)
		step, _ := c.intField(id, n, "step", 1, false)
		return rangeLen(start, stop, step)
	case "range_of_size", "random_range":
		v, _ := c.intField(id, n, "size", 1, false)
		return max(v, 0)
	}
	return c.literalLen(id, n)
}

// rangeLen is len(range(start, stop, step)) in Python.
func rangeLen(start, stop, step int) int {
	switch {
	case step > 0 && stop > start:
		return (stop - start + step - 1) / step
	case step < 0 && start > stop:
		return (start - stop - step - 1) / -step
	}
	return 0
}

// summarize derives what one run renders from the checked graph.
func (c *checker) summarize(mult map[string]int) Summary {
	s := Summary{Model: catalog.ModelSD15}
	families := map[string]bool{}
	hasEncode := false
	for _, id := range c.ids {
		n := c.nodes[id]
		if n.spec.loader != "" {
			families[n.spec.loader] = true
		}
		if n.typ == "flux_denoise" {
			families[catalog.ModelFlux] = true
		}
		hasEncode = hasEncode || n.typ == "i2l" || n.typ == "flux_vae_encode"
	}
	for _, f := range []string{catalog.ModelSDXL, catalog.ModelFlux} {
		if families[f] {
			s.Model = f
		}
	}
	passW, passH := 0, 0
	for _, id := range c.ids {
		n := c.nodes[id]
		for _, f := range n.spec.sizes {
			v, set := c.intField(id, n, f.name, f.def, f.nullable)
			if !set {
				continue
			}
			// An image resize sizes the passes only when images turn back
			// into latents; otherwise it costs no denoising.
			latent := n.typ != "img_resize" || hasEncode
			if f.name == "width" {
				s.Width = max(s.Width, v)
				if latent {
					passW = max(passW, v)
				}
			} else {
				s.Height = max(s.Height, v)
				if latent {
					passH = max(passH, v)
				}
			}
		}
	}
	c.passes(&s, mult, families, passW, passH)
	c.outputs(&s, mult)
	return s
}

// passes lists the denoise passes, each priced at the graph's largest
// latent size: tracing each pass's own size through resizes is not worth
// the risk of getting it wrong in the caller's favour.
func (c *checker) passes(s *Summary, mult map[string]int, families map[string]bool, w, h int) {
	unet := catalog.ModelSD15 // the dearer per pixel of the two UNet families
	if families[catalog.ModelSDXL] && !families[catalog.ModelSD15] {
		unet = catalog.ModelSDXL
	}
	for _, id := range c.ids {
		n := c.nodes[id]
		if n.spec.steps == "" || mult[id] == 0 {
			continue
		}
		steps, _ := c.intField(id, n, n.spec.steps, n.spec.stepsDefault, false)
		family := unet
		if n.typ == "flux_denoise" {
			family = catalog.ModelFlux
		}
		s.Passes = append(s.Passes, pricing.Pass{Model: family, Width: w, Height: h, Steps: steps, Count: mult[id]})
		s.Steps = max(s.Steps, steps)
	}
	switch {
	case len(s.Passes) == 0:
		c.add("graph", "renders nothing: it needs a denoise_latents or flux_denoise node that runs")
	case w == 0 || h == 0:
		c.add("graph", "has no noise, flux_denoise or lresize node with a size, so its image size is unknown")
	}
}

// outputs finds the run's result images. Easel keeps one image per run of a
// graph (the engine takes the last image the session made), so a graph must
// save exactly one; more images come from batch_size.
func (c *checker) outputs(s *Summary, mult map[string]int) {
	for _, id := range c.ids {
		if c.nodes[id].spec.image && len(c.out[id]) == 0 {
			s.Outputs = append(s.Outputs, id)
			s.Images += mult[id]
		}
	}
	switch {
	case s.Images == 0:
		c.add("graph", "saves no image: end it with an l2i, flux_vae_decode, save_image or img_resize node")
	case s.Images > 1:
		for _, id := range s.Outputs {
			c.add("graph.nodes."+id, "is one of %d images a run of the graph would save (fan-out included); "+
				"Easel keeps one image per run: keep one output and ask for more with batch_size", s.Images)
		}
	}
}
