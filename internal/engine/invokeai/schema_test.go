package invokeai

// Checks of everything the protocol test server receives and sends against
// InvokeAI's OpenAPI 3.1 document. Schemas are JSON Schema 2020-12 (the OAS
// 3.1 default dialect), validated by santhosh-tekuri/jsonschema; matching a
// request to its operation and the graph-level checks between nodes are
// OpenAPI and InvokeAI rules rather than JSON Schema, so they are here.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/easel/easel/internal/testenv"
)

// specURL names openapi.json as one schema resource: components are
// compiled as fragments of it, so their "#/components/schemas/X" $refs
// resolve within it.
const specURL = "file:///invokeai/openapi.json"

// openAPI is the loaded document with its routes compiled.
type openAPI struct {
	schemas map[string]any
	routes  []route
	// invocations maps a node type ("denoise_latents") to its schema name.
	invocations map[string]string

	mu       sync.Mutex // guards compiler and compiled: the fake serves concurrently
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema // by JSON pointer into the document
}

type route struct {
	method   string
	template string
	re       *regexp.Regexp
	names    []string // path parameter names, in order
	op       map[string]any
	ptr      string // JSON pointer to the operation
}

var (
	specOnce sync.Once
	spec     *openAPI
	specErr  error
)

// loadSpec reads shared/invokeai/openapi.json beside the repository (or
// EASEL_INVOKEAI_OPENAPI); without it the protocol tests cannot run.
func loadSpec(t testing.TB) *openAPI {
	t.Helper()
	path := os.Getenv("EASEL_INVOKEAI_OPENAPI")
	if path == "" {
		path = filepath.Join(testenv.RepoRoot(t), "..", "shared", "invokeai", "openapi.json")
	}
	if _, err := os.Stat(path); err != nil {
		testenv.Unavailable(t, "InvokeAI's openapi.json: %v", err)
	}
	specOnce.Do(func() { spec, specErr = parseSpec(path) })
	if specErr != nil {
		t.Fatalf("load %s: %v", path, specErr)
	}
	return spec
}

func parseSpec(path string) (*openAPI, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	dedupeRequired(doc)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(specURL, doc); err != nil {
		return nil, fmt.Errorf("add openapi.json as a schema resource: %w", err)
	}
	top, _ := doc.(map[string]any)
	components, _ := top["components"].(map[string]any)
	schemas, _ := components["schemas"].(map[string]any)
	a := &openAPI{schemas: schemas, invocations: map[string]string{}, compiler: c, compiled: map[string]*jsonschema.Schema{}}
	for name, s := range a.schemas {
		m, _ := s.(map[string]any)
		if m["class"] == "invocation" {
			a.invocations[typeConst(m)] = name
		}
	}
	paths, _ := top["paths"].(map[string]any)
	for tmpl, ops := range paths {
		for method, op := range ops.(map[string]any) {
			a.routes = append(a.routes, newRoute(method, tmpl, op.(map[string]any)))
		}
	}
	// Static segments win over parameters: /models/i/bulk_delete is not
	// /models/i/{key}.
	sort.Slice(a.routes, func(i, j int) bool { return len(a.routes[i].names) < len(a.routes[j].names) })
	return a, nil
}

// dedupeRequired drops repeated names from every "required" list in v.
// InvokeAI's invocation outputs list "type" twice, which the 2020-12
// metaschema (uniqueItems) refuses; the set of required names is the same.
func dedupeRequired(v any) {
	switch x := v.(type) {
	case map[string]any:
		if names, ok := x["required"].([]any); ok {
			seen := map[any]bool{}
			x["required"] = slices.DeleteFunc(names, func(n any) bool {
				dup := seen[n]
				seen[n] = true
				return dup
			})
		}
		for _, sub := range x {
			dedupeRequired(sub)
		}
	case []any:
		for _, sub := range x {
			dedupeRequired(sub)
		}
	}
}

var paramRE = regexp.MustCompile(`\{([^}]+)\}`)

func newRoute(method, tmpl string, op map[string]any) route {
	r := route{method: strings.ToUpper(method), template: tmpl, op: op, ptr: pointer("paths", tmpl, method)}
	pattern := regexp.QuoteMeta(tmpl)
	for _, m := range paramRE.FindAllStringSubmatch(tmpl, -1) {
		r.names = append(r.names, m[1])
		pattern = strings.Replace(pattern, regexp.QuoteMeta(m[0]), `([^/]+)`, 1)
	}
	r.re = regexp.MustCompile("^" + pattern + "$")
	return r
}

// pointer builds a JSON pointer from unescaped tokens.
func pointer(tokens ...string) string {
	esc := strings.NewReplacer("~", "~0", "/", "~1")
	var b strings.Builder
	for _, t := range tokens {
		b.WriteString("/" + esc.Replace(t))
	}
	return b.String()
}

// component is the pointer to a named component schema.
func component(name string) string { return pointer("components", "schemas", name) }

func typeConst(s map[string]any) string {
	props, _ := s["properties"].(map[string]any)
	tp, _ := props["type"].(map[string]any)
	c, _ := tp["const"].(string)
	return c
}

func (a *openAPI) resolve(ref string) any {
	return a.schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
}

// compile returns the schema at ptr, compiling it on first use.
func (a *openAPI) compile(ptr string) (*jsonschema.Schema, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.compiled[ptr]; ok {
		return s, nil
	}
	s, err := a.compiler.Compile(specURL + "#" + (&url.URL{Fragment: ptr}).EscapedFragment())
	if err != nil {
		return nil, fmt.Errorf("compile openapi.json#%s: %w", ptr, err)
	}
	a.compiled[ptr] = s
	return s, nil
}

// validate checks v (decoded with encoding/json into any) against the
// schema at ptr; the error names each offending location in v.
func (a *openAPI) validate(ptr string, v any) error {
	s, err := a.compile(ptr)
	if err != nil {
		return err
	}
	err = s.Validate(v)
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		narrow(ve)
	}
	return err
}

// narrow drops, from every failed oneOf under e, the branches whose
// "type" const the value does not match. InvokeAI's nodes and outputs are
// oneOfs over hundreds of schemas told apart by "type" (most without a
// discriminator); the branch for the value's own type is the one whose
// errors say what is wrong. Validity is the library's; this only trims
// the report.
func narrow(e *jsonschema.ValidationError) {
	if _, ok := e.ErrorKind.(*kind.OneOf); ok && len(e.Causes) > 1 {
		e.Causes = slices.DeleteFunc(e.Causes, func(c *jsonschema.ValidationError) bool {
			return wrongType(c, len(e.InstanceLocation))
		})
	}
	for _, c := range e.Causes {
		narrow(c)
	}
}

// wrongType reports whether e refuses the value at depth for its "type"
// property's const.
func wrongType(e *jsonschema.ValidationError, depth int) bool {
	if _, ok := e.ErrorKind.(*kind.Const); ok && len(e.InstanceLocation) == depth+1 && e.InstanceLocation[depth] == "type" {
		return true
	}
	return slices.ContainsFunc(e.Causes, func(c *jsonschema.ValidationError) bool { return wrongType(c, depth) })
}

// checkRequest validates a request against its operation: the route
// exists, path and query parameters match their schemas (no undeclared
// query parameters), and the JSON body matches the request body schema.
func (a *openAPI) checkRequest(r *http.Request, body []byte) []string {
	rt, values := a.match(r.Method, r.URL.Path)
	if rt == nil {
		return []string{fmt.Sprintf("%s %s: no such operation in openapi.json", r.Method, r.URL.Path)}
	}
	errs := a.checkParams(rt, values, r)
	if mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "multipart/form-data" {
		return append(errs, a.checkForm(rt, body, params["boundary"])...)
	}
	return append(errs, a.checkBody(rt, body)...)
}

// checkForm validates a multipart/form-data body against the operation's
// form schema: each part becomes a string property (files included, as
// OpenAPI 3.1 describes binary content), and each file must have an image
// content type, as InvokeAI's upload requires.
func (a *openAPI) checkForm(rt *route, body []byte, boundary string) []string {
	rb, _ := rt.op["requestBody"].(map[string]any)
	content, _ := rb["content"].(map[string]any)
	if content["multipart/form-data"] == nil {
		return []string{fmt.Sprintf("%s %s takes no multipart/form-data body", rt.method, rt.template)}
	}
	form := map[string]any{}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return []string{"body is not multipart/form-data: " + err.Error()}
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return []string{"body is not multipart/form-data: " + err.Error()}
		}
		if part.FileName() != "" && !strings.HasPrefix(part.Header.Get("Content-Type"), "image/") {
			return []string{fmt.Sprintf("file part %q has content type %q; InvokeAI refuses anything but image/*",
				part.FormName(), part.Header.Get("Content-Type"))}
		}
		form[part.FormName()] = string(data)
	}
	if err := a.validate(rt.ptr+pointer("requestBody", "content", "multipart/form-data", "schema"), form); err != nil {
		return []string{"form: " + err.Error()}
	}
	return nil
}

func (a *openAPI) match(method, path string) (*route, map[string]string) {
	for i := range a.routes {
		rt := &a.routes[i]
		if rt.method != method {
			continue
		}
		if m := rt.re.FindStringSubmatch(path); m != nil {
			values := map[string]string{}
			for j, name := range rt.names {
				values[name] = m[j+1]
			}
			return rt, values
		}
	}
	return nil, nil
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func (a *openAPI) checkParams(rt *route, pathValues map[string]string, r *http.Request) []string {
	var errs []string
	query := r.URL.Query()
	declared := map[string]bool{}
	for i, p := range asList(rt.op["parameters"]) {
		pm := p.(map[string]any)
		name, in := pm["name"].(string), pm["in"].(string)
		var vals []string
		switch in {
		case "path":
			vals = []string{pathValues[name]}
		case "query":
			declared[name] = true
			vals = query[name]
		default:
			continue
		}
		if len(vals) == 0 {
			if req, _ := pm["required"].(bool); req {
				errs = append(errs, fmt.Sprintf("%s parameter %q is required", in, name))
			}
			continue
		}
		if err := a.checkParam(rt.ptr+pointer("parameters", strconv.Itoa(i), "schema"), vals); err != nil {
			errs = append(errs, fmt.Sprintf("%s parameter %q: %v", in, name, err))
		}
	}
	for name := range query {
		if !declared[name] {
			errs = append(errs, fmt.Sprintf("query parameter %q is not declared for %s %s", name, rt.method, rt.template))
		}
	}
	return errs
}

// checkParam accepts raw string values if any reading of them (as a list,
// a string, a number or a boolean) satisfies the schema at ptr, as a
// FastAPI server coerces them.
func (a *openAPI) checkParam(ptr string, vals []string) error {
	list := make([]any, len(vals))
	for i, v := range vals {
		list[i] = v
	}
	candidates := []any{list, vals[0]}
	if f, err := strconv.ParseFloat(vals[0], 64); err == nil {
		candidates = append(candidates, f)
	}
	if b, err := strconv.ParseBool(vals[0]); err == nil {
		candidates = append(candidates, b)
	}
	var first error
	for _, c := range candidates {
		err := a.validate(ptr, c)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func (a *openAPI) checkBody(rt *route, body []byte) []string {
	rb, _ := rt.op["requestBody"].(map[string]any)
	if rb == nil {
		if len(body) > 0 {
			return []string{fmt.Sprintf("%s %s takes no body, got %d bytes", rt.method, rt.template, len(body))}
		}
		return nil
	}
	content, _ := rb["content"].(map[string]any)
	if content["application/json"] == nil {
		return []string{fmt.Sprintf("%s %s takes no JSON body", rt.method, rt.template)}
	}
	if len(body) == 0 {
		if req, _ := rb["required"].(bool); req {
			return []string{"request body is required"}
		}
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return []string{"body is not JSON: " + err.Error()}
	}
	if err := a.validate(rt.ptr+pointer("requestBody", "content", "application/json", "schema"), v); err != nil {
		return []string{"body: " + err.Error()}
	}
	return nil
}

// checkGraph adds what the Graph schema cannot say: node ids match their
// keys, nodes use only declared fields, use_cache is false everywhere,
// edges join an existing output field to a connectable input of a matching
// type, and every input the node needs at run time is set or connected.
func (a *openAPI) checkGraph(g map[string]any) []string {
	nodes, _ := g["nodes"].(map[string]any)
	var errs []string
	connected := map[string]bool{}
	for i, e := range asList(g["edges"]) {
		errs = append(errs, a.checkEdge(nodes, e.(map[string]any), fmt.Sprintf("edges[%d]", i), connected)...)
	}
	for id, n := range nodes {
		errs = append(errs, a.checkNode(id, n.(map[string]any), connected)...)
	}
	return errs
}

func (a *openAPI) nodeSchema(n map[string]any) map[string]any {
	t, _ := n["type"].(string)
	s, _ := a.schemas[a.invocations[t]].(map[string]any)
	return s
}

func (a *openAPI) checkNode(id string, n map[string]any, connected map[string]bool) []string {
	var errs []string
	at := "nodes." + id
	if n["id"] != id {
		errs = append(errs, fmt.Sprintf("%s: id %v differs from its key", at, n["id"]))
	}
	if n["use_cache"] != false {
		errs = append(errs, fmt.Sprintf("%s: use_cache must be false (billed jobs must not hit the invocation cache), got %v", at, n["use_cache"]))
	}
	s := a.nodeSchema(n)
	if s == nil {
		return append(errs, fmt.Sprintf("%s: unknown node type %v", at, n["type"]))
	}
	props, _ := s["properties"].(map[string]any)
	for k := range n {
		if _, ok := props[k]; !ok && s["additionalProperties"] != true {
			errs = append(errs, fmt.Sprintf("%s: field %q is not in %s", at, k, a.invocations[n["type"].(string)]))
		}
	}
	for name, p := range props {
		pm := p.(map[string]any)
		_, hasDefault := pm["orig_default"]
		needed := pm["orig_required"] == true && pm["field_kind"] == "input" && !hasDefault
		if needed && n[name] == nil && !connected[id+"."+name] {
			errs = append(errs, fmt.Sprintf("%s: input %q is required at run time but neither set nor connected", at, name))
		}
	}
	return errs
}

func (a *openAPI) checkEdge(nodes map[string]any, e map[string]any, at string, connected map[string]bool) []string {
	src, dst := e["source"].(map[string]any), e["destination"].(map[string]any)
	sn, _ := nodes[fmt.Sprint(src["node_id"])].(map[string]any)
	dn, _ := nodes[fmt.Sprint(dst["node_id"])].(map[string]any)
	if sn == nil || dn == nil {
		return []string{fmt.Sprintf("%s: joins missing nodes %v -> %v", at, src["node_id"], dst["node_id"])}
	}
	outRef, _ := a.nodeSchema(sn)["output"].(map[string]any)
	outSchema, _ := a.resolve(fmt.Sprint(outRef["$ref"])).(map[string]any)
	outProps, _ := outSchema["properties"].(map[string]any)
	inProps, _ := a.nodeSchema(dn)["properties"].(map[string]any)
	sf, df := fmt.Sprint(src["field"]), fmt.Sprint(dst["field"])
	out, _ := outProps[sf].(map[string]any)
	in, _ := inProps[df].(map[string]any)
	switch {
	case out == nil:
		return []string{fmt.Sprintf("%s: %v has no output field %q", at, sn["type"], sf)}
	case in == nil:
		return []string{fmt.Sprintf("%s: %v has no input field %q", at, dn["type"], df)}
	case in["input"] == "direct":
		return []string{fmt.Sprintf("%s: %v.%s cannot take a connection", at, dn["type"], df)}
	}
	connected[fmt.Sprint(dst["node_id"])+"."+df] = true
	if !a.compatible(out, in) {
		return []string{fmt.Sprintf("%s: %v.%s does not fit %v.%s", at, sn["type"], sf, dn["type"], df)}
	}
	return nil
}

// compatible is a coarse type check for an edge: an output of a named
// field type ($ref) needs an input that accepts that type; a plain output
// type needs an input that accepts that JSON type.
func (a *openAPI) compatible(out, in map[string]any) bool {
	refs, types := shapes(out)
	inRefs, inTypes := shapes(in)
	for r := range refs {
		if inRefs[r] {
			return true
		}
	}
	for t := range types {
		if inTypes[t] || (t == "integer" && inTypes["number"]) {
			return true
		}
	}
	return len(refs) == 0 && len(types) == 0
}

// shapes collects the $refs and types a schema accepts, through anyOf and
// array items.
func shapes(s map[string]any) (map[string]bool, map[string]bool) {
	refs, types := map[string]bool{}, map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if r, ok := m["$ref"].(string); ok {
			refs[r] = true
		}
		if t, ok := m["type"].(string); ok && t != "null" && t != "array" {
			types[t] = true
		}
		for _, b := range asList(m["anyOf"]) {
			walk(b)
		}
		walk(m["items"])
	}
	walk(s)
	return refs, types
}

// TestValidatorCatchesMistakes shows the validator is not a yes-machine:
// each broken variant of a valid node is reported, at the offending field.
func TestValidatorCatchesMistakes(t *testing.T) {
	t.Parallel()
	a := loadSpec(t)
	node := func() map[string]any {
		return map[string]any{"id": "n", "type": "noise", "use_cache": false, "seed": 1.0, "width": 512.0, "height": 512.0}
	}
	graphNodes := component("Graph") + "/properties/nodes/additionalProperties"
	if err := a.validate(graphNodes, node()); err != nil {
		t.Fatalf("valid noise node rejected: %v", err)
	}
	for name, c := range map[string]struct {
		mutate func(map[string]any)
		at     string // in the error
	}{
		"width not a multiple of 8": {func(n map[string]any) { n["width"] = 500.0 }, "'/width'"},
		"seed too large":            {func(n map[string]any) { n["seed"] = float64(1 << 33) }, "'/seed'"},
		"seed not an integer":       {func(n map[string]any) { n["seed"] = 1.5 }, "'/seed'"},
		"unknown node type":         {func(n map[string]any) { n["type"] = "no_such_node" }, "oneOf"},
		"noise_type not in enum":    {func(n map[string]any) { n["noise_type"] = "SD9" }, "'/noise_type'"},
		"missing id":                {func(n map[string]any) { delete(n, "id") }, "'id'"},
		"use_cache not boolean":     {func(n map[string]any) { n["use_cache"] = "no" }, "'/use_cache'"},
	} {
		n := node()
		c.mutate(n)
		err := a.validate(graphNodes, n)
		if err == nil {
			t.Errorf("%s: not reported", name)
		} else if !strings.Contains(err.Error(), c.at) {
			t.Errorf("%s: error does not name %s: %v", name, c.at, err)
		}
	}
	g := map[string]any{"nodes": map[string]any{"n": node(), "d": map[string]any{"id": "d", "type": "denoise_latents",
		"use_cache": true, "stepz": 3.0}}, "edges": []any{map[string]any{
		"source":      map[string]any{"node_id": "n", "field": "noise"},
		"destination": map[string]any{"node_id": "d", "field": "unet"}}}}
	errs := strings.Join(a.checkGraph(g), "\n")
	for _, want := range []string{"use_cache must be false", `field "stepz"`, "does not fit", `input "positive_conditioning" is required`} {
		if !strings.Contains(errs, want) {
			t.Errorf("checkGraph did not report %q; got:\n%s", want, errs)
		}
	}
}
