package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/architecture.md's package table names every package `go list ./...`
// prints, and nothing else, so a newcomer's map of the code stays true.
func TestArchitecturePackageTableMatchesGoList(t *testing.T) {
	dir := root(t)
	cmd := exec.Command("go", "list", "./...")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var listed []string
	for _, p := range strings.Fields(string(out)) {
		if rel, ok := strings.CutPrefix(p, "github.com/easel/easel/"); ok {
			listed = append(listed, rel)
		}
	}
	doc, err := os.ReadFile(dir + "/docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "\n## Packages\n")
	if !ok {
		t.Fatal("docs/architecture.md has no Packages section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	first := regexp.MustCompile(`(?m)^\| ([^|]+) \|`)
	name := regexp.MustCompile("`([^`]+)`")
	var documented []string
	for _, row := range first.FindAllStringSubmatch(table, -1) {
		for _, n := range name.FindAllStringSubmatch(row[1], -1) {
			documented = append(documented, n[1])
		}
	}
	slices.Sort(listed)
	slices.Sort(documented)
	for _, p := range listed {
		if !slices.Contains(documented, p) {
			t.Errorf("package %s is missing from docs/architecture.md's table", p)
		}
	}
	for _, p := range documented {
		if !slices.Contains(listed, p) {
			t.Errorf("docs/architecture.md's table names %s, which go list does not print", p)
		}
	}
}

// Data flows one way: nothing under internal/ imports the product's
// packages, and nothing imports api or cmd.
func TestImportsFlowOneWay(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/easel/easel/"
	product := []string{"api", "workflows", "activities", "workers"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		for _, imp := range fields[1:] {
			dep, ok := strings.CutPrefix(imp, mod)
			if !ok {
				continue
			}
			if strings.HasPrefix(pkg, "internal/") && slices.Contains(product, dep) {
				t.Errorf("%s imports %s: internal/ must not import the product's packages", pkg, dep)
			}
			if dep == "api" && pkg != "cmd/easel" || strings.HasPrefix(dep, "cmd/") {
				t.Errorf("%s imports %s", pkg, dep)
			}
		}
	}
}
