package deploy

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// devOnlyDynamicConfig are settings of `easel dev`'s embedded server that
// production does not want.
var devOnlyDynamicConfig = map[string]bool{
	// Makes every search attribute lookup hit the database.
	"system.forceSearchAttributesCacheRefreshOnRead": true,
}

// TestTemporalDynamicConfig: the self-hosted server gets every setting
// internal/devstack/temporalserver gives the embedded one (updates, fairness, dispatch latency),
// with the same values.
func TestTemporalDynamicConfig(t *testing.T) {
	path := filepath.Join(root(t), "internal", "devstack", "temporalserver", "dynconfig.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		fn, ok := n.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "defaultDynamicConfig" {
			return true
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			kv, ok := n.(*ast.KeyValueExpr)
			if !ok {
				return true
			}
			lit, ok := kv.Key.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			key, _ := strconv.Unquote(lit.Value)
			switch v := kv.Value.(type) {
			case *ast.Ident:
				want[key] = v.Name
			case *ast.BasicLit:
				want[key] = v.Value
			default:
				want[key] = "?"
			}
			return false
		})
		return false
	})
	if len(want) < 5 {
		t.Fatalf("found %d settings in temporalserver.defaultDynamicConfig; the function changed shape", len(want))
	}
	var got map[string][]struct {
		Value       any            `yaml:"value"`
		Constraints map[string]any `yaml:"constraints"`
	}
	readYAML(t, filepath.Join(root(t), "deploy", "temporal", "dynamicconfig.yaml"), &got)
	for _, key := range sortedKeys(want) {
		if devOnlyDynamicConfig[key] {
			continue
		}
		values, ok := got[key]
		if !ok || len(values) == 0 {
			t.Errorf("deploy/temporal/dynamicconfig.yaml lacks %s (the embedded server sets it to %s)", key, want[key])
			continue
		}
		if v := fmt.Sprint(values[0].Value); v != want[key] {
			t.Errorf("deploy/temporal/dynamicconfig.yaml: %s is %s, the embedded server sets %s", key, v, want[key])
		}
	}
}

// TestTemporalSearchAttributes: the setup script registers exactly the
// custom search attributes the Go code sets (temporal.NewSearchAttributeKey*
// anywhere in the repository), as keywords.
func TestTemporalSearchAttributes(t *testing.T) {
	pkgs, err := goPackages(root(t))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, files := range pkgs {
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || !strings.HasPrefix(sel.Sel.Name, "NewSearchAttributeKey") || len(call.Args) != 1 {
					return true
				}
				lit, ok := call.Args[0].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					return true
				}
				name, _ := strconv.Unquote(lit.Value)
				if sel.Sel.Name != "NewSearchAttributeKeyKeyword" {
					t.Errorf("search attribute %s is a %s: teach deploy/temporal/setup.sh its type", name, sel.Sel.Name)
				}
				found[name] = true
				return true
			})
		}
	}
	want := sortedKeys(found)
	if len(want) == 0 {
		t.Fatal("found no search attributes in the Go code")
	}
	script := string(read(t, filepath.Join(root(t), "deploy", "temporal", "setup.sh")))
	m := regexp.MustCompile(`(?m)^\s*for attr in ([A-Za-z ]+); do`).FindStringSubmatch(script)
	if m == nil || !strings.Contains(script, "--type Keyword") {
		t.Fatal("deploy/temporal/setup.sh: no `for attr in ...` loop creating Keyword attributes")
	}
	got := strings.Fields(m[1])
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("deploy/temporal/setup.sh registers %v, the API sets %v", got, want)
	}
}

// TestShellScripts: the scripts parse (sh -n, bash -n).
func TestShellScripts(t *testing.T) {
	for script, shell := range map[string]string{
		"deploy/temporal/setup.sh":      "sh",
		"deploy/scripts/ecs-deploy.sh":  "bash",
		"deploy/scripts/publish-web.sh": "bash",
	} {
		bin, err := exec.LookPath(shell)
		if err != nil {
			t.Logf("%s not installed: %s not checked", shell, script)
			continue
		}
		if out, err := exec.Command(bin, "-n", filepath.Join(root(t), script)).CombinedOutput(); err != nil {
			t.Errorf("%s -n %s: %v\n%s", shell, script, err, out)
		}
	}
}
