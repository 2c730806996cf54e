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
	first := regexp.MustCompile("(?m)^\\| ([^|]+) \\|")
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
