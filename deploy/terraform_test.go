package deploy

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/easel/easel/internal/autoscale"
)

// tfModule is one directory of .tf files: a module or a root.
type tfModule struct {
	dir       string
	bodies    map[string]*hclsyntax.Body // by file path
	variables map[string]*tfVariable
	outputs   map[string]*hclsyntax.Block
	locals    map[string]*hclsyntax.Attribute
	resources map[string]bool // "type.name"
	data      map[string]bool // "type.name"
	calls     map[string]*hclsyntax.Block
}

type tfVariable struct {
	block    *hclsyntax.Block
	required bool // no default
	used     bool
}

// metaArguments of a module block are not the module's variables.
var metaArguments = map[string]bool{"source": true, "version": true, "providers": true, "count": true, "for_each": true, "depends_on": true}

// loadTerraform parses every directory under terraform/ that holds .tf
// files.
func loadTerraform(t *testing.T) map[string]*tfModule {
	t.Helper()
	mods := map[string]*tfModule{}
	parser := hclparse.NewParser()
	base := filepath.Join(root(t), "terraform")
	err := filepath.WalkDir(base, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".terraform" {
			return filepath.SkipDir
		}
		if d.IsDir() || filepath.Ext(path) != ".tf" {
			return nil
		}
		f, diags := parser.ParseHCLFile(path)
		if diags.HasErrors() {
			t.Errorf("%s: %s", rel(t, path), diags.Error())
			return nil
		}
		dir := filepath.Dir(path)
		m := mods[dir]
		if m == nil {
			m = &tfModule{dir: dir, bodies: map[string]*hclsyntax.Body{}, variables: map[string]*tfVariable{},
				outputs: map[string]*hclsyntax.Block{}, locals: map[string]*hclsyntax.Attribute{},
				resources: map[string]bool{}, data: map[string]bool{}, calls: map[string]*hclsyntax.Block{}}
			mods[dir] = m
		}
		body := f.Body.(*hclsyntax.Body)
		m.bodies[path] = body
		for _, b := range body.Blocks {
			dup := func(kind, name string, seen bool) {
				if seen {
					t.Errorf("%s: %s %q declared twice in %s", rel(t, path), kind, name, rel(t, dir))
				}
			}
			switch b.Type {
			case "variable":
				_, seen := m.variables[b.Labels[0]]
				dup("variable", b.Labels[0], seen)
				_, hasDefault := b.Body.Attributes["default"]
				m.variables[b.Labels[0]] = &tfVariable{block: b, required: !hasDefault}
			case "output":
				_, seen := m.outputs[b.Labels[0]]
				dup("output", b.Labels[0], seen)
				m.outputs[b.Labels[0]] = b
			case "locals":
				for name, a := range b.Body.Attributes {
					_, seen := m.locals[name]
					dup("local", name, seen)
					m.locals[name] = a
				}
			case "resource":
				key := b.Labels[0] + "." + b.Labels[1]
				dup("resource", key, m.resources[key])
				m.resources[key] = true
			case "data":
				key := b.Labels[0] + "." + b.Labels[1]
				dup("data", key, m.data[key])
				m.data[key] = true
			case "module":
				_, seen := m.calls[b.Labels[0]]
				dup("module", b.Labels[0], seen)
				m.calls[b.Labels[0]] = b
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) < 10 {
		t.Fatalf("found only %d Terraform directories under terraform/", len(mods))
	}
	return mods
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// TestTerraformFormat: every .tf, .tfvars and .hcl file is in canonical
// form, as terraform fmt writes it (hclwrite.Format is its formatter).
func TestTerraformFormat(t *testing.T) {
	var files []string
	err := filepath.WalkDir(filepath.Join(root(t), "terraform"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".terraform" {
			return filepath.SkipDir
		}
		name := d.Name()
		if !d.IsDir() && (strings.HasSuffix(name, ".tf") || strings.HasSuffix(name, ".tfvars.example") || strings.HasSuffix(name, ".hcl.example")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("found only %d Terraform files", len(files))
	}
	for _, path := range files {
		src := read(t, path)
		if _, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos); diags.HasErrors() {
			t.Errorf("%s: %s", rel(t, path), diags.Error())
			continue
		}
		if got := hclwrite.Format(src); !bytes.Equal(got, src) {
			t.Errorf("%s is not formatted (terraform fmt): %s", rel(t, path), firstDifference(src, got))
		}
	}
}

func firstDifference(have, want []byte) string {
	h, w := strings.Split(string(have), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(h) || i < len(w); i++ {
		var hl, wl string
		if i < len(h) {
			hl = h[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if hl != wl {
			return fmt.Sprintf("line %d is %q, want %q", i+1, hl, wl)
		}
	}
	return "trailing difference"
}

// TestTerraformReferences: within each directory every var.X, local.X,
// data.T.N, resource T.N and module.X.OUTPUT reference resolves; every
// variable is declared with a type and a description and used; every output
// has a description; module calls with local sources pass only the
// callee's variables and all of its required ones.
func TestTerraformReferences(t *testing.T) {
	mods := loadTerraform(t)
	for _, dir := range sortedKeys(mods) {
		m := mods[dir]
		where := rel(t, dir)
		for _, path := range sortedKeys(m.bodies) {
			hclsyntax.VisitAll(m.bodies[path], func(n hclsyntax.Node) hcl.Diagnostics {
				e, ok := n.(*hclsyntax.ScopeTraversalExpr)
				if ok {
					checkTraversal(t, mods, m, e.Traversal)
				}
				return nil
			})
		}
		for _, name := range sortedKeys(m.variables) {
			v := m.variables[name]
			if !v.used {
				t.Errorf("%s: variable %q is never used", where, name)
			}
			for _, attr := range []string{"type", "description"} {
				if _, ok := v.block.Body.Attributes[attr]; !ok {
					t.Errorf("%s: variable %q has no %s", where, name, attr)
				}
			}
		}
		for _, name := range sortedKeys(m.outputs) {
			if _, ok := m.outputs[name].Body.Attributes["description"]; !ok {
				t.Errorf("%s: output %q has no description", where, name)
			}
		}
		for _, name := range sortedKeys(m.calls) {
			checkModuleCall(t, mods, m, name, m.calls[name])
		}
	}
}

func checkTraversal(t *testing.T, mods map[string]*tfModule, m *tfModule, tr hcl.Traversal) {
	where := func() string {
		r := tr.SourceRange()
		return fmt.Sprintf("%s:%d", rel(t, r.Filename), r.Start.Line)
	}
	attr := func(i int) string {
		if i < len(tr) {
			if a, ok := tr[i].(hcl.TraverseAttr); ok {
				return a.Name
			}
		}
		return ""
	}
	switch name := tr.RootName(); name {
	case "var":
		v := m.variables[attr(1)]
		if v == nil {
			t.Errorf("%s: var.%s is not declared in %s", where(), attr(1), rel(t, m.dir))
			return
		}
		v.used = true
	case "local":
		if _, ok := m.locals[attr(1)]; !ok {
			t.Errorf("%s: local.%s is not defined in %s", where(), attr(1), rel(t, m.dir))
		}
	case "data":
		if key := attr(1) + "." + attr(2); !m.data[key] {
			t.Errorf("%s: data.%s is not declared in %s", where(), key, rel(t, m.dir))
		}
	case "module":
		call := m.calls[attr(1)]
		if call == nil {
			t.Errorf("%s: module.%s is not called in %s", where(), attr(1), rel(t, m.dir))
			return
		}
		i := 2
		for i < len(tr) {
			if _, ok := tr[i].(hcl.TraverseIndex); !ok {
				break
			}
			i++
		}
		output := attr(i)
		callee := calledModule(mods, m, call)
		if output == "" || callee == nil {
			return // the whole module object, or a registry module
		}
		if _, ok := callee.outputs[output]; !ok {
			t.Errorf("%s: module.%s.%s: %s has no output %q", where(), attr(1), output, rel(t, callee.dir), output)
		}
	default:
		// Resource references: provider-prefixed types only (iterator
		// names such as each, count, o or tag are not resources).
		for _, p := range []string{"aws_", "random_", "tls_"} {
			if strings.HasPrefix(name, p) && attr(1) != "" {
				if key := name + "." + attr(1); !m.resources[key] {
					t.Errorf("%s: %s is not declared in %s", where(), key, rel(t, m.dir))
				}
			}
		}
	}
}

// calledModule is the module a local source points at, or nil.
func calledModule(mods map[string]*tfModule, m *tfModule, call *hclsyntax.Block) *tfModule {
	src, ok := literalString(call.Body.Attributes["source"])
	if !ok || !(strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../")) {
		return nil
	}
	return mods[filepath.Clean(filepath.Join(m.dir, src))]
}

func literalString(a *hclsyntax.Attribute) (string, bool) {
	if a == nil {
		return "", false
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || !v.Type().Equals(cty.String) || v.IsNull() {
		return "", false
	}
	return v.AsString(), true
}

func checkModuleCall(t *testing.T, mods map[string]*tfModule, m *tfModule, name string, call *hclsyntax.Block) {
	where := fmt.Sprintf("%s: module %q", rel(t, m.dir), name)
	src, ok := literalString(call.Body.Attributes["source"])
	if !ok {
		t.Errorf("%s has no literal source", where)
		return
	}
	callee := calledModule(mods, m, call)
	if callee == nil {
		if strings.HasPrefix(src, ".") {
			t.Errorf("%s: source %s has no .tf files", where, src)
		} else if _, ok := call.Body.Attributes["version"]; !ok {
			t.Errorf("%s: registry module %s has no version constraint", where, src)
		}
		return
	}
	for _, arg := range sortedKeys(call.Body.Attributes) {
		if metaArguments[arg] {
			continue
		}
		if _, ok := callee.variables[arg]; !ok {
			t.Errorf("%s passes %q, which %s does not declare", where, arg, rel(t, callee.dir))
		}
	}
	for _, v := range sortedKeys(callee.variables) {
		if _, passed := call.Body.Attributes[v]; callee.variables[v].required && !passed {
			t.Errorf("%s does not pass %q, which %s requires", where, v, rel(t, callee.dir))
		}
	}
}

// TestTerraformModuleLayout: every module has variables.tf, outputs.tf and
// versions.tf (with required_providers) beside its resources, and no
// provider blocks (the roots configure providers).
func TestTerraformModuleLayout(t *testing.T) {
	mods := loadTerraform(t)
	modules := glob(t, filepath.Join(root(t), "terraform", "modules", "*"))
	for _, dir := range modules {
		m := mods[dir]
		if m == nil {
			t.Errorf("%s has no .tf files", rel(t, dir))
			continue
		}
		for _, f := range []string{"variables.tf", "outputs.tf", "versions.tf"} {
			if _, ok := m.bodies[filepath.Join(dir, f)]; !ok {
				t.Errorf("%s has no %s", rel(t, dir), f)
			}
		}
		if len(m.resources)+len(m.calls) == 0 {
			t.Errorf("%s declares no resources or modules", rel(t, dir))
		}
		for path, body := range m.bodies {
			for _, b := range body.Blocks {
				if b.Type == "provider" {
					t.Errorf("%s: modules must not configure providers", rel(t, path))
				}
			}
		}
	}
	env := mods[filepath.Join(root(t), "terraform", "environments", "prod")]
	if env == nil {
		t.Fatal("terraform/environments/prod is missing")
	}
	for _, f := range []string{"main.tf", "variables.tf", "outputs.tf", "versions.tf"} {
		if _, ok := env.bodies[filepath.Join(env.dir, f)]; !ok {
			t.Errorf("terraform/environments/prod has no %s", f)
		}
	}
	var backend, required bool
	for _, body := range env.bodies {
		for _, b := range body.Blocks {
			if b.Type != "terraform" {
				continue
			}
			for _, inner := range b.Body.Blocks {
				backend = backend || (inner.Type == "backend" && inner.Labels[0] == "s3")
				required = required || inner.Type == "required_providers"
			}
		}
	}
	if !backend || !required {
		t.Errorf("terraform/environments/prod: S3 backend %v, required_providers %v; want both", backend, required)
	}
	// The example variables are variables of the root.
	for _, ex := range []string{"terraform.tfvars.example"} {
		path := filepath.Join(env.dir, ex)
		f, diags := hclsyntax.ParseConfig(read(t, path), path, hcl.InitialPos)
		if diags.HasErrors() {
			t.Errorf("%s: %s", rel(t, path), diags.Error())
			continue
		}
		for name := range f.Body.(*hclsyntax.Body).Attributes {
			if _, ok := env.variables[name]; !ok {
				t.Errorf("%s sets %q, which the root does not declare", rel(t, path), name)
			}
		}
	}
}

// TestTerraformTemplates: every file() and templatefile() path exists, and
// every ${placeholder} of a template is a key of the variables passed (and
// every key is used); every ECS task definition template in deploy/ecs is
// rendered by some module.
func TestTerraformTemplates(t *testing.T) {
	mods := loadTerraform(t)
	used := map[string]bool{}
	for _, dir := range sortedKeys(mods) {
		m := mods[dir]
		for _, path := range sortedKeys(m.bodies) {
			hclsyntax.VisitAll(m.bodies[path], func(n hclsyntax.Node) hcl.Diagnostics {
				call, ok := n.(*hclsyntax.FunctionCallExpr)
				if !ok || (call.Name != "file" && call.Name != "templatefile") {
					return nil
				}
				where := fmt.Sprintf("%s:%d", rel(t, path), call.Range().Start.Line)
				pattern, ok := evalPath(m, call.Args[0], 0)
				if !ok {
					t.Errorf("%s: cannot resolve the path of %s()", where, call.Name)
					return nil
				}
				// A variable in the path (gpu-worker-${var.tier}.json)
				// stands for every file it can name.
				files, err := filepath.Glob(filepath.Clean(pattern))
				if err != nil || len(files) == 0 {
					t.Errorf("%s: %s(): no file %s", where, call.Name, rel(t, pattern))
					return nil
				}
				for _, file := range files {
					used[file] = true
					if call.Name == "templatefile" {
						checkTemplate(t, m, where, file, call.Args[1])
					}
				}
				return nil
			})
		}
	}
	for _, tmpl := range glob(t, filepath.Join(root(t), "deploy", "ecs", "*.json")) {
		if !used[tmpl] {
			t.Errorf("%s is not rendered by any Terraform module", rel(t, tmpl))
		}
	}
}

func checkTemplate(t *testing.T, m *tfModule, where, file string, vars hclsyntax.Expression) {
	keys, ok := objectKeys(m, vars, 0)
	if !ok {
		t.Errorf("%s: cannot resolve the variables passed to templatefile(%s)", where, rel(t, file))
		return
	}
	holders := placeholders(string(read(t, file)))
	for _, h := range sortedKeys(holders) {
		if !keys[h] {
			t.Errorf("%s: %s uses ${%s}, which templatefile() does not pass", where, rel(t, file), h)
		}
	}
	for _, k := range sortedKeys(keys) {
		if !holders[k] {
			t.Errorf("%s: templatefile() passes %q, which %s does not use", where, k, rel(t, file))
		}
	}
}

var placeholder = regexp.MustCompile(`\$?\$\{([^}]*)\}`)

// placeholders are the ${name} interpolations of a template; $${...} is an
// escaped literal.
func placeholders(src string) map[string]bool {
	out := map[string]bool{}
	for _, m := range placeholder.FindAllStringSubmatch(src, -1) {
		if !strings.HasPrefix(m[0], "$$") {
			out[strings.TrimSpace(m[1])] = true
		}
	}
	return out
}

// evalPath evaluates a path argument: literals, templates of literals,
// path.module and locals made of those.
func evalPath(m *tfModule, e hclsyntax.Expression, depth int) (string, bool) {
	if depth > 8 {
		return "", false
	}
	switch e := e.(type) {
	case *hclsyntax.LiteralValueExpr:
		if e.Val.Type().Equals(cty.String) {
			return e.Val.AsString(), true
		}
	case *hclsyntax.TemplateWrapExpr:
		return evalPath(m, e.Wrapped, depth+1)
	case *hclsyntax.TemplateExpr:
		var b strings.Builder
		for _, p := range e.Parts {
			s, ok := evalPath(m, p, depth+1)
			if !ok {
				return "", false
			}
			b.WriteString(s)
		}
		return b.String(), true
	case *hclsyntax.ScopeTraversalExpr:
		tr := e.Traversal
		if len(tr) == 2 {
			name := tr[1].(hcl.TraverseAttr).Name
			switch {
			case tr.RootName() == "path" && name == "module":
				return m.dir, true
			case tr.RootName() == "local" && m.locals[name] != nil:
				return evalPath(m, m.locals[name].Expr, depth+1)
			case tr.RootName() == "var":
				return "*", true
			}
		}
	}
	return "", false
}

// objectKeys are the keys of an object expression: a literal, merge() of
// such, or a local holding one.
func objectKeys(m *tfModule, e hclsyntax.Expression, depth int) (map[string]bool, bool) {
	if depth > 8 {
		return nil, false
	}
	switch e := e.(type) {
	case *hclsyntax.ObjectConsExpr:
		keys := map[string]bool{}
		for _, item := range e.Items {
			k := hcl.ExprAsKeyword(item.KeyExpr)
			if k == "" {
				v, diags := item.KeyExpr.Value(nil)
				if diags.HasErrors() || !v.Type().Equals(cty.String) {
					return nil, false
				}
				k = v.AsString()
			}
			keys[k] = true
		}
		return keys, true
	case *hclsyntax.FunctionCallExpr:
		if e.Name != "merge" {
			return nil, false
		}
		keys := map[string]bool{}
		for _, a := range e.Args {
			k, ok := objectKeys(m, a, depth+1)
			if !ok {
				return nil, false
			}
			maps.Copy(keys, k)
		}
		return keys, true
	case *hclsyntax.ScopeTraversalExpr:
		if tr := e.Traversal; len(tr) == 2 && tr.RootName() == "local" {
			if a := m.locals[tr[1].(hcl.TraverseAttr).Name]; a != nil {
				return objectKeys(m, a.Expr, depth+1)
			}
		}
	}
	return nil, false
}

// constValue evaluates an expression that needs no variables (defaults,
// literal locals).
func constValue(t *testing.T, where string, e hcl.Expression) cty.Value {
	t.Helper()
	v, diags := e.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", where, diags.Error())
	}
	return v
}

// instanceGPUs: NVIDIA GPUs per EC2 instance type (the types a GPU tier may
// list; add one here before listing it).
var instanceGPUs = map[string]int{
	"g4dn.xlarge": 1, "g4dn.2xlarge": 1, "g4dn.4xlarge": 1, "g4dn.8xlarge": 1, "g4dn.16xlarge": 1, "g4dn.12xlarge": 4, "g4dn.metal": 8,
	"g5.xlarge": 1, "g5.2xlarge": 1, "g5.4xlarge": 1, "g5.8xlarge": 1, "g5.16xlarge": 1, "g5.12xlarge": 4, "g5.24xlarge": 4, "g5.48xlarge": 8,
	"p4d.24xlarge": 8, "p4de.24xlarge": 8,
}

func stringList(v cty.Value) []string {
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e.AsString())
	}
	return out
}

// TestTerraformGuide: the values the deployment guide fixes (sections 2, 4, 5, 7, 8.2,
// 10.2, 11) are the ones the Terraform carries.
func TestTerraformGuide(t *testing.T) {
	mods := loadTerraform(t)
	tf := filepath.Join(root(t), "terraform")
	module := func(p string) *tfModule {
		m := mods[filepath.Join(tf, p)]
		if m == nil {
			t.Fatalf("terraform/%s is missing", p)
		}
		return m
	}
	def := func(m *tfModule, name string) cty.Value {
		v := m.variables[name]
		if v == nil || v.required {
			t.Fatalf("%s: variable %q has no default", rel(t, m.dir), name)
		}
		return constValue(t, rel(t, m.dir)+" var."+name, v.block.Body.Attributes["default"].Expr)
	}

	// Section 2.1: the VPC and its subnets.
	env := module("environments/prod")
	for name, want := range map[string][]string{
		"public_subnets":   {"10.0.1.0/24", "10.0.2.0/24"},
		"private_subnets":  {"10.0.11.0/24", "10.0.12.0/24"},
		"database_subnets": {"10.0.21.0/24", "10.0.22.0/24"},
	} {
		if got := stringList(def(env, name)); !slices.Equal(got, want) {
			t.Errorf("environments/prod var.%s = %v, want the deployment guide's %v", name, got, want)
		}
	}
	if got := def(env, "vpc_cidr").AsString(); got != "10.0.0.0/16" {
		t.Errorf("vpc_cidr = %s, want 10.0.0.0/16", got)
	}
	vpc := module("modules/vpc")
	call := findBlock(t, vpc, "module", "vpc")
	for attr, want := range map[string]cty.Value{
		"version":                cty.StringVal("~> 5.0"),
		"source":                 cty.StringVal("terraform-aws-modules/vpc/aws"),
		"enable_nat_gateway":     cty.True,
		"single_nat_gateway":     cty.False,
		"one_nat_gateway_per_az": cty.True,
	} {
		if got := constValue(t, "modules/vpc "+attr, call.Body.Attributes[attr].Expr); !got.RawEquals(want) {
			t.Errorf("modules/vpc: %s = %#v, want %#v", attr, got, want)
		}
	}

	// Section 2.2: the security group table.
	sec := module("modules/security")
	ingress := constValue(t, "modules/security local.ingress", sec.locals["ingress"].Expr)
	type rule struct {
		group, source string
		port          int64
	}
	have := map[rule]bool{}
	for it := ingress.ElementIterator(); it.Next(); {
		_, r := it.Element()
		src := "0.0.0.0/0"
		if s := r.GetAttr("source"); !s.IsNull() {
			src = s.AsString()
		}
		from, _ := r.GetAttr("from").AsBigFloat().Int64()
		to, _ := r.GetAttr("to").AsBigFloat().Int64()
		for p := from; p <= to && p-from < 10; p++ {
			have[rule{r.GetAttr("group").AsString(), src, p}] = true
		}
	}
	for _, want := range []rule{
		{"alb", "0.0.0.0/0", 80}, {"alb", "0.0.0.0/0", 443}, {"api", "alb", 8080},
		{"rds", "api", 5432}, {"rds", "gpu", 5432}, {"redis", "api", 6379}, {"redis", "gpu", 6379}, {"efs", "gpu", 2049},
	} {
		if !have[want] {
			t.Errorf("modules/security: no rule %s <- %s port %d (deployment guide section 2.2)", want.group, want.source, want.port)
		}
	}
	for r := range have {
		if r.source == "0.0.0.0/0" && r.group != "alb" {
			t.Errorf("modules/security: %s is open to the internet on %d", r.group, r.port)
		}
	}

	// Section 5.1 / 11.2: RDS.
	rds := module("modules/rds")
	for name, want := range map[string]cty.Value{
		"instance_class":               cty.StringVal("db.r6g.large"),
		"allocated_storage":            cty.NumberIntVal(100),
		"multi_az":                     cty.True,
		"backup_retention_period":      cty.NumberIntVal(7),
		"deletion_protection":          cty.True,
		"performance_insights_enabled": cty.True,
	} {
		if got := def(rds, name); !got.RawEquals(want) {
			t.Errorf("modules/rds var.%s defaults to %#v, want %#v", name, got, want)
		}
	}
	db := findBlock(t, rds, "resource", "aws_db_instance", "this")
	for attr, want := range map[string]cty.Value{"engine": cty.StringVal("postgres"), "storage_type": cty.StringVal("gp3"), "storage_encrypted": cty.True} {
		if got := constValue(t, "aws_db_instance "+attr, db.Body.Attributes[attr].Expr); !got.RawEquals(want) {
			t.Errorf("modules/rds: %s = %#v, want %#v", attr, got, want)
		}
	}
	if v := def(rds, "engine_version").AsString(); v != "16" && !strings.HasPrefix(v, "16.") {
		t.Errorf("modules/rds: engine_version %s is not PostgreSQL 16", v)
	}

	// Section 4.1: GPU tiers and their instances; 4.3: 1 to 10 hosts,
	// except that the A100 tier idles at zero (an idle p4d.24xlarge costs
	// about $23,600 a month; the autoscaler wakes it for the first job).
	minHosts := map[string]int64{"t4": 1, "a10g": 1, "a100": 0}
	tiers := def(env, "gpu_tiers")
	for tier, instance := range map[string]string{"t4": "g4dn.xlarge", "a10g": "g5.xlarge", "a100": "p4d.24xlarge"} {
		if !tiers.Type().HasAttribute(tier) {
			t.Errorf("gpu_tiers has no %s tier", tier)
			continue
		}
		g := tiers.GetAttr(tier)
		if types := stringList(g.GetAttr("instance_types")); len(types) == 0 || types[0] != instance {
			t.Errorf("gpu_tiers.%s prefers %v, want %s first", tier, types, instance)
		}
		if !g.GetAttr("min_size").RawEquals(cty.NumberIntVal(minHosts[tier])) || !g.GetAttr("max_size").RawEquals(cty.NumberIntVal(10)) {
			t.Errorf("gpu_tiers.%s: min %#v max %#v, want %d and 10", tier, g.GetAttr("min_size"), g.GetAttr("max_size"), minHosts[tier])
		}
		// The tier's task (deploy/ecs/gpu-worker-<tier>.json) runs one
		// InvokeAI server per GPU and the worker reserves them all, so every
		// instance type of the tier must have exactly the tier's GPUs.
		for _, typ := range stringList(g.GetAttr("instance_types")) {
			n, known := instanceGPUs[typ]
			if want := autoscale.TierSpecs[tier].GPUs; !known {
				t.Errorf("gpu_tiers.%s: instance type %s is not in instanceGPUs; add its GPU count (the task wants %d)", tier, typ, want)
			} else if n != want {
				t.Errorf("gpu_tiers.%s: %s has %d GPUs, but the tier's task runs %d InvokeAI servers", tier, typ, n, want)
			}
		}
	}

	// Section 10.2: images to Standard-IA after 30 days.
	s3 := module("modules/s3")
	if got := def(s3, "images_ia_after_days"); !got.RawEquals(cty.NumberIntVal(30)) {
		t.Errorf("modules/s3: images_ia_after_days = %#v, want 30", got)
	}
	lc := findBlock(t, s3, "resource", "aws_s3_bucket_lifecycle_configuration", "images")
	var ia bool
	hclsyntax.VisitAll(lc.Body, func(n hclsyntax.Node) hcl.Diagnostics {
		if b, ok := n.(*hclsyntax.Block); ok && b.Type == "transition" {
			if v, _ := b.Body.Attributes["storage_class"].Expr.Value(nil); v.RawEquals(cty.StringVal("STANDARD_IA")) {
				ia = true
			}
		}
		return nil
	})
	if !ia {
		t.Error("modules/s3: the images lifecycle has no transition to STANDARD_IA")
	}

	// Section 7.2: the four CloudFront behaviours (plus /v1/* and
	// /config.json), signed URLs on /images/*.
	cf := findBlock(t, module("modules/cloudfront"), "resource", "aws_cloudfront_distribution", "this")
	paths := map[string]*hclsyntax.Block{}
	for _, b := range cf.Body.Blocks {
		if b.Type == "ordered_cache_behavior" {
			p := constValue(t, "path_pattern", b.Body.Attributes["path_pattern"].Expr).AsString()
			paths[p] = b
		}
	}
	for _, p := range []string{"/api/*", "/images/*", "/static/*"} {
		if paths[p] == nil {
			t.Errorf("modules/cloudfront: no %s behaviour", p)
		}
	}
	if b := paths["/images/*"]; b != nil {
		if _, ok := b.Body.Attributes["trusted_key_groups"]; !ok {
			t.Error("modules/cloudfront: /images/* does not require signed URLs (trusted_key_groups)")
		}
		// The API's download_url (?download=<file name>) is answered as an
		// attachment by a viewer-response function.
		events := map[string]bool{}
		for _, f := range b.Body.Blocks {
			if f.Type == "function_association" {
				events[constValue(t, "event_type", f.Body.Attributes["event_type"].Expr).AsString()] = true
			}
		}
		if !events["viewer-request"] || !events["viewer-response"] {
			t.Errorf("modules/cloudfront: /images/* functions on %v, want viewer-request (strip /images) and viewer-response (downloads)", events)
		}
	}
	// The app's /config.json comes from the API's environment, not from
	// the frontend bucket, and is never cached: it goes where /v1/* goes.
	if b, v1 := paths["/config.json"], paths["/v1/*"]; b == nil || v1 == nil {
		t.Errorf("modules/cloudfront: /config.json behaviour %v, /v1/* behaviour %v; want both (the app's settings come from the API)", b != nil, v1 != nil)
	} else {
		for _, attr := range []string{"target_origin_id", "cache_policy_id", "origin_request_policy_id"} {
			got, want := exprText(t, b.Body.Attributes[attr]), exprText(t, v1.Body.Attributes[attr])
			if got != want || got == "" {
				t.Errorf("modules/cloudfront: /config.json %s = %q, want /v1/*'s %q", attr, got, want)
			}
		}
		if got := exprText(t, v1.Body.Attributes["cache_policy_id"]); got != "data.aws_cloudfront_cache_policy.disabled.id" {
			t.Errorf("modules/cloudfront: /v1/* cache policy %s, want caching disabled", got)
		}
	}

	// Section 8.2: every alarm row has a CloudWatch alarm.
	mon := module("modules/monitoring")
	for _, name := range []string{"api_error_rate", "api_latency_p99", "gpu_queue_depth", "rds_cpu", "rds_connections", "redis_memory", "s3_error_rate"} {
		if !mon.resources["aws_cloudwatch_metric_alarm."+name] {
			t.Errorf("modules/monitoring: no aws_cloudwatch_metric_alarm.%s (deployment guide 8.2)", name)
		}
	}
	if !mon.resources["aws_cloudwatch_dashboard.this"] {
		t.Error("modules/monitoring: no CloudWatch dashboards")
	} else {
		d := constValue(t, "local.dashboards", mon.locals["dashboards"].Expr)
		for _, want := range []string{"api", "gpu", "business", "infrastructure"} {
			if !d.Type().HasAttribute(want) {
				t.Errorf("modules/monitoring: no %s dashboard (deployment guide 8.1)", want)
			}
		}
	}
}

// exprText is an attribute's expression as written ("" when absent).
func exprText(t *testing.T, a *hclsyntax.Attribute) string {
	t.Helper()
	if a == nil {
		return ""
	}
	r := a.Expr.Range()
	return strings.TrimSpace(string(read(t, r.Filename)[r.Start.Byte:r.End.Byte]))
}

// findBlock is the block of type and labels in m.
func findBlock(t *testing.T, m *tfModule, typ string, labels ...string) *hclsyntax.Block {
	t.Helper()
	for _, path := range sortedKeys(m.bodies) {
		for _, b := range m.bodies[path].Blocks {
			if b.Type == typ && slices.Equal(b.Labels, labels) {
				return b
			}
		}
	}
	t.Fatalf("%s: no %s %s", rel(t, m.dir), typ, strings.Join(labels, "."))
	return nil
}

func TestPlaceholders(t *testing.T) {
	got := sortedKeys(placeholders(`{"a": "${name}", "b": "$${aws:InstanceId}", "c": "${ x }"}`))
	if want := []string{"name", "x"}; !slices.Equal(got, want) {
		t.Errorf("placeholders = %v, want %v", got, want)
	}
}
