package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/easel/easel/internal/config"
)

// root is the repository root: the directory above this package.
func root(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repository root %s has no go.mod: %v", dir, err)
	}
	return dir
}

// rel names path relative to the repository root, for messages.
func rel(t testing.TB, path string) string {
	r, err := filepath.Rel(root(t), path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(r)
}

func read(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readYAML(t testing.TB, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(read(t, path), v); err != nil {
		t.Fatalf("%s: %v", rel(t, path), err)
	}
}

func glob(t testing.TB, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) == 0 {
		t.Fatalf("no files match %s", pattern)
	}
	sort.Strings(m)
	return m
}

// configEnv is every environment variable config.Config reads.
func configEnv(t testing.TB) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("env"), ",")
		if name != "" {
			names[name] = true
		}
	}
	if len(names) < 10 {
		t.Fatalf("config.Config declares only %d env tags; the struct changed shape", len(names))
	}
	return names
}

// sdkEnv are variables the binary reads through the AWS SDK's default
// credential chain rather than config.Config. Only the local Compose stack
// may set them (its S3 store has static keys); in AWS the task role gives
// the credentials.
var sdkEnv = map[string]bool{"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true}

// secretEnv must come from Secrets Manager in AWS, never as plain
// environment.
var secretEnv = map[string]bool{"DATABASE_URL": true, "REDIS_URL": true, "STRIPE_SECRET_KEY": true, "CLOUDFRONT_PRIVATE_KEY": true}

// --- metrics the Go code exports ---

var (
	exportedOnce sync.Once
	exported     map[string]bool
	exportedErr  error
)

// exportedMetrics scans the repository's non-test Go files for Prometheus
// metrics: the Namespace, Subsystem and Name of every prometheus
// CounterOpts, GaugeOpts, HistogramOpts, SummaryOpts or Opts literal, and
// the first argument of every NewDesc, with the series names each kind
// produces (_total for counters; _bucket, _sum and _count for histograms;
// _sum and _count for summaries; all of them for NewDesc, whose kind is only
// known at run time). Strings may be literals, constants of the same
// package, concatenations of those, or BuildFQName calls. Metrics added
// anywhere in the repository are picked up without changing this test.
func exportedMetrics(t testing.TB) map[string]bool {
	t.Helper()
	dir := root(t)
	exportedOnce.Do(func() { exported, exportedErr = scanMetrics(dir) })
	if exportedErr != nil {
		t.Fatal(exportedErr)
	}
	if len(exported) == 0 {
		t.Fatal("found no exported metrics in the Go code; the scanner is broken")
	}
	return exported
}

// goPackages parses the non-test Go files under dir, by package directory
// (hidden directories, testdata, vendor and bin left out).
func goPackages(dir string) (map[string][]*ast.File, error) {
	fset := token.NewFileSet()
	pkgs := map[string][]*ast.File{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch name := d.Name(); {
			case path == dir:
			case strings.HasPrefix(name, "."), name == "testdata", name == "vendor", name == "node_modules", name == "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pkgs[filepath.Dir(path)] = append(pkgs[filepath.Dir(path)], f)
		return nil
	})
	return pkgs, err
}

func scanMetrics(dir string) (map[string]bool, error) {
	pkgs, err := goPackages(dir)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, files := range pkgs {
		consts := packageStrings(files)
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CompositeLit:
					sel, ok := n.Type.(*ast.SelectorExpr)
					if !ok {
						return true
					}
					kind := strings.TrimSuffix(sel.Sel.Name, "Opts")
					if !slices.Contains([]string{"Counter", "Gauge", "Histogram", "Summary", ""}, kind) || !strings.HasSuffix(sel.Sel.Name, "Opts") {
						return true
					}
					parts := map[string]string{}
					for _, e := range n.Elts {
						kv, ok := e.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						key, ok := kv.Key.(*ast.Ident)
						if !ok {
							continue
						}
						if v, ok := stringValue(kv.Value, consts); ok {
							parts[key.Name] = v
						}
					}
					if parts["Name"] != "" {
						addSeries(names, fqName(parts["Namespace"], parts["Subsystem"], parts["Name"]), kind)
					}
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "NewDesc" && len(n.Args) > 0 {
						if v, ok := stringValue(n.Args[0], consts); ok && v != "" {
							addSeries(names, v, "Desc")
						}
					}
				}
				return true
			})
		}
	}
	return names, nil
}

func fqName(namespace, subsystem, name string) string {
	var parts []string
	for _, p := range []string{namespace, subsystem, name} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "_")
}

func addSeries(names map[string]bool, name, kind string) {
	switch kind {
	case "Counter":
		names[name] = true
		if !strings.HasSuffix(name, "_total") {
			names[name+"_total"] = true
		}
	case "Histogram":
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			names[name+s] = true
		}
	case "Summary":
		for _, s := range []string{"", "_sum", "_count"} {
			names[name+s] = true
		}
	case "Gauge":
		names[name] = true
	default: // Opts, NewDesc: the kind is not in the literal
		for _, s := range []string{"", "_total", "_bucket", "_sum", "_count"} {
			names[name+s] = true
		}
	}
}

// packageStrings are the string constants declared in files.
func packageStrings(files []*ast.File) map[string]ast.Expr {
	consts := map[string]ast.Expr{}
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						consts[n.Name] = vs.Values[i]
					}
				}
			}
		}
	}
	return consts
}

// stringValue evaluates e as a string: a literal, a same-package constant,
// a + concatenation of those, or prometheus.BuildFQName(ns, sub, name).
func stringValue(e ast.Expr, consts map[string]ast.Expr) (string, bool) {
	return stringValueDepth(e, consts, 0)
}

func stringValueDepth(e ast.Expr, consts map[string]ast.Expr, depth int) (string, bool) {
	if depth > 16 {
		return "", false
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.Ident:
		if v, ok := consts[e.Name]; ok {
			return stringValueDepth(v, consts, depth+1)
		}
	case *ast.ParenExpr:
		return stringValueDepth(e.X, consts, depth+1)
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		l, ok1 := stringValueDepth(e.X, consts, depth+1)
		r, ok2 := stringValueDepth(e.Y, consts, depth+1)
		return l + r, ok1 && ok2
	case *ast.CallExpr:
		if sel, ok := e.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "BuildFQName" && len(e.Args) == 3 {
			var p [3]string
			for i, a := range e.Args {
				s, ok := stringValueDepth(a, consts, depth+1)
				if !ok {
					return "", false
				}
				p[i] = s
			}
			return fqName(p[0], p[1], p[2]), true
		}
	}
	return "", false
}

// metricIdent finds whole identifiers in a query; metricRefs keeps those
// that name Easel's or Temporal's series (recording rules, with a colon,
// are not series the code exports and are left out).
var metricIdent = regexp.MustCompile(`[A-Za-z0-9_:]+`)

func metricRefs(query string) []string {
	var refs []string
	for _, id := range metricIdent.FindAllString(query, -1) {
		if (strings.HasPrefix(id, "easel_") || strings.HasPrefix(id, "temporal_")) && !strings.Contains(id, ":") {
			refs = append(refs, id)
		}
	}
	return refs
}

func TestMetricScanner(t *testing.T) {
	src := `package p
import "github.com/prometheus/client_golang/prometheus"
const ns = "easel"
const sub = "queue"
var (
	a = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "easel_things_total"}, nil)
	b = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "backlog"}, nil)
	c = prometheus.NewHistogram(prometheus.HistogramOpts{Name: ns + "_render_seconds"})
	d = prometheus.NewDesc(prometheus.BuildFQName(ns, "gpu", "healthy"), "", nil, nil)
	e = prometheus.NewCounter(prometheus.CounterOpts{Name: "easel_bytes"})
)`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p_test.go"), []byte("package p\nvar x = prometheus.GaugeOpts{Name: \"easel_test_only\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := scanMetrics(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"easel_things_total", "easel_queue_backlog", "easel_render_seconds_bucket",
		"easel_render_seconds_sum", "easel_render_seconds_count", "easel_gpu_healthy", "easel_bytes", "easel_bytes_total"} {
		if !got[want] {
			t.Errorf("scanner missed %s (found %v)", want, got)
		}
	}
	for _, unwanted := range []string{"easel_render_seconds", "easel_test_only", "easel_things_total_total"} {
		if got[unwanted] {
			t.Errorf("scanner invented %s", unwanted)
		}
	}
	refs := metricRefs(`sum(rate(easel_a_total{job="easel-api"}[5m])) / easel:ratio + my_easel_x + temporal_request`)
	if want := []string{"easel_a_total", "temporal_request"}; !slices.Equal(refs, want) {
		t.Errorf("metricRefs = %v, want %v", refs, want)
	}
}
