package invokeai

// A JSON Schema validator for the subset InvokeAI's OpenAPI 3.1 document
// uses (its dialect is the OAS 3.1 default, JSON Schema 2020-12), and the
// request checks the protocol test server applies to everything the engine
// sends. Written here rather than taken from a library so that it can also
// dispatch Graph.nodes' discriminator-less oneOf by each node's "type", and
// fail loudly on any schema keyword it does not implement.

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/easel/easel/internal/testenv"
)

// openAPI is the loaded document with its routes compiled.
type openAPI struct {
	schemas map[string]any
	routes  []route
	// invocations maps a node type ("denoise_latents") to its schema name.
	invocations map[string]string
}

type route struct {
	method   string
	template string
	re       *regexp.Regexp
	names    []string // path parameter names, in order
	op       map[string]any
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
	var doc struct {
		Paths      map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	a := &openAPI{schemas: doc.Components.Schemas, invocations: map[string]string{}}
	for name, s := range a.schemas {
		m, _ := s.(map[string]any)
		if m["class"] == "invocation" {
			a.invocations[typeConst(m)] = name
		}
	}
	for tmpl, ops := range doc.Paths {
		for method, op := range ops {
			a.routes = append(a.routes, newRoute(strings.ToUpper(method), tmpl, op.(map[string]any)))
		}
	}
	// Static segments win over parameters: /models/i/bulk_delete is not
	// /models/i/{key}.
	sort.Slice(a.routes, func(i, j int) bool { return len(a.routes[i].names) < len(a.routes[j].names) })
	return a, nil
}

var paramRE = regexp.MustCompile(`\{([^}]+)\}`)

func newRoute(method, tmpl string, op map[string]any) route {
	r := route{method: method, template: tmpl, op: op}
	pattern := regexp.QuoteMeta(tmpl)
	for _, m := range paramRE.FindAllStringSubmatch(tmpl, -1) {
		r.names = append(r.names, m[1])
		pattern = strings.Replace(pattern, regexp.QuoteMeta(m[0]), `([^/]+)`, 1)
	}
	r.re = regexp.MustCompile("^" + pattern + "$")
	return r
}

func typeConst(s map[string]any) string {
	props, _ := s["properties"].(map[string]any)
	tp, _ := props["type"].(map[string]any)
	c, _ := tp["const"].(string)
	return c
}

func (a *openAPI) resolve(ref string) any {
	return a.schemas[strings.TrimPrefix(ref, "#/components/schemas/")]
}

// schema returns a component by name, failing the test if it is absent.
func (a *openAPI) schema(t testing.TB, name string) any {
	t.Helper()
	s, ok := a.schemas[name]
	if !ok {
		t.Fatalf("openapi.json has no schema %q", name)
	}
	return s
}

// Keywords the validator implements, and annotations it may ignore (JSON
// Schema 2020-12 ignores unknown keywords; "ge"/"le" are pydantic leftovers,
// "discriminator" is OAS's and is honoured by oneOf dispatch).
var (
	validationKeywords = set("$ref", "type", "const", "enum", "properties", "required", "additionalProperties",
		"propertyNames", "items", "minItems", "maxItems", "uniqueItems", "anyOf", "oneOf", "allOf", "minimum",
		"maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern")
	annotationKeywords = set("title", "description", "default", "examples", "format", "deprecated", "readOnly",
		"writeOnly", "contentMediaType", "discriminator", "field_kind", "input", "orig_required", "orig_default",
		"class", "classification", "node_pack", "version", "output", "category", "tags", "ge", "le")
)

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// validate checks v (decoded with encoding/json into any) against schema
// and returns one message per violation, prefixed by where it is.
func (a *openAPI) validate(schema, v any, at string) []string {
	s, ok := schema.(map[string]any)
	if !ok {
		if b, isBool := schema.(bool); isBool && !b {
			return []string{at + ": no value is allowed here"}
		}
		return nil
	}
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	for k := range s {
		if !validationKeywords[k] && !annotationKeywords[k] && !strings.HasPrefix(k, "ui_") {
			add("validator does not implement schema keyword %q", k)
		}
	}
	if ref, ok := s["$ref"].(string); ok {
		target := a.resolve(ref)
		if target == nil {
			add("unresolvable $ref %s", ref)
		}
		errs = append(errs, a.validate(target, v, at)...)
	}
	if t, ok := s["type"]; ok && !typeMatches(t, v) {
		add("want type %v, got %s", t, kind(v))
		return errs
	}
	if c, ok := s["const"]; ok && !equalJSON(c, v) {
		add("want %v, got %v", c, v)
	}
	if e, ok := s["enum"].([]any); ok && !slicesContain(e, v) {
		add("%v is not one of %v", v, e)
	}
	switch x := v.(type) {
	case float64:
		errs = append(errs, checkNumber(s, x, at)...)
	case string:
		errs = append(errs, checkString(s, x, at)...)
	case []any:
		errs = append(errs, a.checkArray(s, x, at)...)
	case map[string]any:
		errs = append(errs, a.checkObject(s, x, at)...)
	}
	return append(errs, a.checkCombinators(s, v, at)...)
}

func typeMatches(t, v any) bool {
	switch t := t.(type) {
	case string:
		return typeIs(t, v)
	case []any:
		for _, one := range t {
			if s, _ := one.(string); typeIs(s, v) {
				return true
			}
		}
	}
	return false
}

func typeIs(t string, v any) bool {
	switch t {
	case "null":
		return v == nil
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

func kind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case float64:
		if x == math.Trunc(x) {
			return "integer"
		}
		return "number"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return reflect.TypeOf(v).Kind().String()
}

func equalJSON(a, b any) bool { return reflect.DeepEqual(a, b) }

func slicesContain(list []any, v any) bool {
	for _, x := range list {
		if equalJSON(x, v) {
			return true
		}
	}
	return false
}

func num(s map[string]any, k string) (float64, bool) {
	f, ok := s[k].(float64)
	return f, ok
}

func checkNumber(s map[string]any, x float64, at string) []string {
	var errs []string
	if m, ok := num(s, "minimum"); ok && x < m {
		errs = append(errs, fmt.Sprintf("%s: %v < minimum %v", at, x, m))
	}
	if m, ok := num(s, "maximum"); ok && x > m {
		errs = append(errs, fmt.Sprintf("%s: %v > maximum %v", at, x, m))
	}
	if m, ok := num(s, "exclusiveMinimum"); ok && x <= m {
		errs = append(errs, fmt.Sprintf("%s: %v <= exclusiveMinimum %v", at, x, m))
	}
	if m, ok := num(s, "exclusiveMaximum"); ok && x >= m {
		errs = append(errs, fmt.Sprintf("%s: %v >= exclusiveMaximum %v", at, x, m))
	}
	if m, ok := num(s, "multipleOf"); ok && math.Abs(math.Remainder(x, m)) > 1e-9 {
		errs = append(errs, fmt.Sprintf("%s: %v is not a multiple of %v", at, x, m))
	}
	return errs
}

func checkString(s map[string]any, x string, at string) []string {
	var errs []string
	n := float64(utf8.RuneCountInString(x))
	if m, ok := num(s, "minLength"); ok && n < m {
		errs = append(errs, fmt.Sprintf("%s: shorter than %v", at, m))
	}
	if m, ok := num(s, "maxLength"); ok && n > m {
		errs = append(errs, fmt.Sprintf("%s: longer than %v", at, m))
	}
	if p, ok := s["pattern"].(string); ok {
		re, err := regexp.Compile(p)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: pattern %q does not compile in Go: %v", at, p, err))
		} else if !re.MatchString(x) {
			errs = append(errs, fmt.Sprintf("%s: %q does not match %q", at, x, p))
		}
	}
	return errs
}

func (a *openAPI) checkArray(s map[string]any, x []any, at string) []string {
	var errs []string
	if m, ok := num(s, "minItems"); ok && float64(len(x)) < m {
		errs = append(errs, fmt.Sprintf("%s: fewer than %v items", at, m))
	}
	if m, ok := num(s, "maxItems"); ok && float64(len(x)) > m {
		errs = append(errs, fmt.Sprintf("%s: more than %v items", at, m))
	}
	if u, _ := s["uniqueItems"].(bool); u {
		for i := range x {
			for j := i + 1; j < len(x); j++ {
				if equalJSON(x[i], x[j]) {
					errs = append(errs, fmt.Sprintf("%s: items %d and %d are equal", at, i, j))
				}
			}
		}
	}
	if items, ok := s["items"]; ok {
		for i, it := range x {
			errs = append(errs, a.validate(items, it, fmt.Sprintf("%s[%d]", at, i))...)
		}
	}
	return errs
}

func (a *openAPI) checkObject(s map[string]any, x map[string]any, at string) []string {
	var errs []string
	for _, r := range asList(s["required"]) {
		if _, ok := x[r.(string)]; !ok {
			errs = append(errs, fmt.Sprintf("%s: missing required property %q", at, r))
		}
	}
	props, _ := s["properties"].(map[string]any)
	extra, hasExtra := s["additionalProperties"]
	for k, v := range x {
		if names, ok := s["propertyNames"]; ok {
			errs = append(errs, a.validate(names, k, at+".(name "+k+")")...)
		}
		if p, ok := props[k]; ok {
			errs = append(errs, a.validate(p, v, at+"."+k)...)
		} else if hasExtra {
			errs = append(errs, a.validate(extra, v, at+"."+k)...)
		}
	}
	return errs
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func (a *openAPI) checkCombinators(s map[string]any, v any, at string) []string {
	var errs []string
	for _, sub := range asList(s["allOf"]) {
		errs = append(errs, a.validate(sub, v, at)...)
	}
	if branches := asList(s["anyOf"]); len(branches) > 0 {
		var branchErrs []string
		matched := false
		for _, sub := range branches {
			e := a.validate(sub, v, at)
			if len(e) == 0 {
				matched = true
				break
			}
			branchErrs = append(branchErrs, e...)
		}
		if !matched {
			errs = append(errs, fmt.Sprintf("%s: matches no anyOf branch: %s", at, strings.Join(branchErrs, "; ")))
		}
	}
	if one := asList(s["oneOf"]); len(one) > 0 {
		errs = append(errs, a.checkOneOf(one, v, at)...)
	}
	return errs
}

// checkOneOf validates a oneOf. When v is an object whose "type" picks
// exactly one branch by that branch's type const (InvokeAI's nodes and
// outputs), v is validated against that branch only: the result is the same
// as trying them all, since the consts differ, and the errors are readable.
func (a *openAPI) checkOneOf(branches []any, v any, at string) []string {
	if obj, ok := v.(map[string]any); ok {
		if t, ok := obj["type"].(string); ok {
			var hit []any
			consts := 0
			for _, b := range branches {
				bs, _ := b.(map[string]any)
				target, _ := a.resolve(fmt.Sprint(bs["$ref"])).(map[string]any)
				if c := typeConst(target); c != "" {
					consts++
					if c == t {
						hit = append(hit, target)
					}
				}
			}
			if consts == len(branches) && len(hit) == 0 {
				return []string{fmt.Sprintf("%s: no schema for type %q", at, t)}
			}
			if len(hit) == 1 {
				return a.validate(hit[0], v, at)
			}
		}
	}
	n := 0
	for _, b := range branches {
		if len(a.validate(b, v, at)) == 0 {
			n++
		}
	}
	if n != 1 {
		return []string{fmt.Sprintf("%s: matches %d oneOf branches, want 1", at, n)}
	}
	return nil
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
	return append(errs, a.checkBody(rt, body)...)
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

func (a *openAPI) checkParams(rt *route, pathValues map[string]string, r *http.Request) []string {
	var errs []string
	query := r.URL.Query()
	declared := map[string]bool{}
	for _, p := range asList(rt.op["parameters"]) {
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
		errs = append(errs, a.checkParam(pm["schema"], vals, in+" "+name)...)
	}
	for name := range query {
		if !declared[name] {
			errs = append(errs, fmt.Sprintf("query parameter %q is not declared for %s %s", name, rt.method, rt.template))
		}
	}
	return errs
}

// checkParam accepts raw string values if any reading of them (as a list,
// a string, an integer, a number or a boolean) satisfies the schema, as a
// FastAPI server coerces them.
func (a *openAPI) checkParam(schema any, vals []string, at string) []string {
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
	var first []string
	for _, c := range candidates {
		e := a.validate(schema, c, at)
		if len(e) == 0 {
			return nil
		}
		if first == nil {
			first = e
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
	media, _ := content["application/json"].(map[string]any)
	if media == nil {
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
	return a.validate(media["schema"], v, "body")
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
// each broken variant of a valid node is reported.
func TestValidatorCatchesMistakes(t *testing.T) {
	t.Parallel()
	a := loadSpec(t)
	node := func() map[string]any {
		return map[string]any{"id": "n", "type": "noise", "use_cache": false, "seed": 1.0, "width": 512.0, "height": 512.0}
	}
	graphNodes := a.schema(t, "Graph").(map[string]any)["properties"].(map[string]any)["nodes"].(map[string]any)["additionalProperties"]
	if errs := a.validate(graphNodes, node(), "n"); len(errs) > 0 {
		t.Fatalf("valid noise node rejected: %v", errs)
	}
	for name, mutate := range map[string]func(map[string]any){
		"width not a multiple of 8": func(n map[string]any) { n["width"] = 500.0 },
		"seed too large":            func(n map[string]any) { n["seed"] = float64(1 << 33) },
		"seed not an integer":       func(n map[string]any) { n["seed"] = 1.5 },
		"unknown node type":         func(n map[string]any) { n["type"] = "no_such_node" },
		"noise_type not in enum":    func(n map[string]any) { n["noise_type"] = "SD9" },
		"missing id":                func(n map[string]any) { delete(n, "id") },
		"use_cache not boolean":     func(n map[string]any) { n["use_cache"] = "no" },
	} {
		n := node()
		mutate(n)
		if errs := a.validate(graphNodes, n, "n"); len(errs) == 0 {
			t.Errorf("%s: not reported", name)
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
