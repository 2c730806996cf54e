package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

type workflow struct {
	Name string           `yaml:"name"`
	On   any              `yaml:"on"`
	Jobs map[string]ghJob `yaml:"jobs"`
}

type ghJob struct {
	Name        string            `yaml:"name"`
	RunsOn      any               `yaml:"runs-on"`
	Uses        string            `yaml:"uses"`
	Needs       any               `yaml:"needs"`
	Environment any               `yaml:"environment"`
	Outputs     map[string]string `yaml:"outputs"`
	Env         map[string]any    `yaml:"env"`
	Services    map[string]any    `yaml:"services"`
	Strategy    struct {
		Matrix map[string]any `yaml:"matrix"`
	} `yaml:"strategy"`
	Steps []ghStep `yaml:"steps"`
}

type ghStep struct {
	ID   string         `yaml:"id"`
	Name string         `yaml:"name"`
	Uses string         `yaml:"uses"`
	Run  string         `yaml:"run"`
	If   string         `yaml:"if"`
	With map[string]any `yaml:"with"`
	Env  map[string]any `yaml:"env"`
}

func (j ghJob) needs() []string { return words(j.Needs) }

func (j ghJob) environment() string {
	switch e := j.Environment.(type) {
	case string:
		return e
	case map[string]any:
		s, _ := e["name"].(string)
		return s
	}
	return ""
}

func (j ghJob) script() string {
	var b strings.Builder
	for _, s := range j.Steps {
		b.WriteString(s.Run + "\n")
	}
	return b.String()
}

func loadWorkflows(t *testing.T) map[string]workflow {
	t.Helper()
	out := map[string]workflow{}
	for _, path := range glob(t, filepath.Join(root(t), ".github", "workflows", "*.yml")) {
		var w workflow
		readYAML(t, path, &w)
		out[filepath.Base(path)] = w
	}
	return out
}

var (
	needsOutput = regexp.MustCompile(`needs\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)`)
	stepOutput  = regexp.MustCompile(`steps\.([A-Za-z0-9_-]+)\.(?:outputs|outcome|conclusion)`)
	pinned      = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@(v\d+(\.\d+)*|[0-9a-f]{40})$`)
	scriptRef   = regexp.MustCompile(`deploy/scripts/[A-Za-z0-9_.-]+\.sh`)
	makeTarget  = regexp.MustCompile(`\bmake ([a-z-]+)`)
)

// TestGitHubWorkflows: the workflows parse and hang together: jobs run
// somewhere, steps do one thing, needs, outputs and step references
// resolve, actions are pinned to versions, and the scripts and make
// targets they call exist.
func TestGitHubWorkflows(t *testing.T) {
	makefile := string(read(t, filepath.Join(root(t), "Makefile")))
	for file, w := range loadWorkflows(t) {
		where := ".github/workflows/" + file
		if w.Name == "" || w.On == nil || len(w.Jobs) == 0 {
			t.Errorf("%s: want a name, triggers and jobs", where)
		}
		for _, id := range sortedKeys(w.Jobs) {
			j := w.Jobs[id]
			jw := where + " job " + id
			if (j.RunsOn == nil) == (j.Uses == "") {
				t.Errorf("%s: want runs-on or a reusable workflow, not both", jw)
			}
			if j.Uses != "" {
				checkReusable(t, jw, j.Uses)
			}
			for _, n := range j.needs() {
				if _, ok := w.Jobs[n]; !ok {
					t.Errorf("%s needs %s, which does not exist", jw, n)
				}
			}
			text := fmt.Sprint(j.Outputs, j.Env, j.Environment, j.Steps) + j.script()
			for _, m := range needsOutput.FindAllStringSubmatch(text, -1) {
				dep, ok := w.Jobs[m[1]]
				if !slices.Contains(j.needs(), m[1]) || !ok {
					t.Errorf("%s uses needs.%s but does not need it", jw, m[1])
				} else if _, ok := dep.Outputs[m[2]]; !ok {
					t.Errorf("%s uses needs.%s.outputs.%s, which %s does not declare", jw, m[1], m[2], m[1])
				}
			}
			ids := map[string]bool{}
			for _, s := range j.Steps {
				if s.ID != "" {
					ids[s.ID] = true
				}
			}
			for _, m := range stepOutput.FindAllStringSubmatch(text, -1) {
				if !ids[m[1]] {
					t.Errorf("%s refers to step %s, which it does not have", jw, m[1])
				}
			}
			for i, s := range j.Steps {
				if (s.Uses == "") == (s.Run == "") {
					t.Errorf("%s step %d (%s): want uses or run, not both", jw, i+1, s.Name)
				}
				if s.Uses != "" && !strings.HasPrefix(s.Uses, "./") && !pinned.MatchString(s.Uses) {
					t.Errorf("%s step %d: %s is not pinned to a version", jw, i+1, s.Uses)
				}
				for _, f := range []string{"file"} {
					if p, ok := s.With[f].(string); ok && !strings.Contains(p, "${{") {
						if _, err := os.Stat(filepath.Join(root(t), p)); err != nil {
							t.Errorf("%s step %d: %s", jw, i+1, err)
						}
					}
				}
			}
			for _, script := range scriptRef.FindAllString(j.script(), -1) {
				info, err := os.Stat(filepath.Join(root(t), script))
				if err != nil {
					t.Errorf("%s runs %s: %v", jw, script, err)
				} else if info.Mode()&0o111 == 0 {
					t.Errorf("%s runs %s, which is not executable", jw, script)
				}
			}
			for _, m := range makeTarget.FindAllStringSubmatch(j.script(), -1) {
				if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(m[1]) + `:`).MatchString(makefile) {
					t.Errorf("%s runs make %s, which the Makefile does not define", jw, m[1])
				}
			}
		}
	}
}

func checkReusable(t *testing.T, where, uses string) {
	if !strings.HasPrefix(uses, "./.github/workflows/") {
		if !pinned.MatchString(uses) {
			t.Errorf("%s: reusable workflow %s is not pinned", where, uses)
		}
		return
	}
	var w workflow
	readYAML(t, filepath.Join(root(t), uses), &w)
	on, ok := w.On.(map[string]any)
	if _, callable := on["workflow_call"]; !ok || !callable {
		t.Errorf("%s calls %s, which has no workflow_call trigger", where, uses)
	}
}

// TestPipeline: the workflows implement the deployment guide's pipeline (section 9.1).
func TestPipeline(t *testing.T) {
	ws := loadWorkflows(t)
	ci, ok := ws["ci.yml"]
	if !ok {
		t.Fatal(".github/workflows/ci.yml is missing")
	}
	var lint, test, docker bool
	for _, j := range ci.Jobs {
		s := j.script()
		lint = lint || strings.Contains(s, "make lint")
		if strings.Contains(s, "make test") {
			test = true
			for _, svc := range []string{"postgres", "redis"} {
				if _, ok := j.Services[svc]; !ok {
					t.Errorf("ci.yml: the make test job has no %s service container", svc)
				}
			}
		}
		if images, ok := j.Strategy.Matrix["image"]; ok {
			docker = true
			var want []string
			for _, f := range glob(t, filepath.Join(root(t), "deploy", "docker", "Dockerfile.*")) {
				want = append(want, strings.TrimPrefix(filepath.Ext(f), "."))
			}
			got := words(images)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("ci.yml builds %v, deploy/docker has %v", got, want)
			}
		}
	}
	if !lint || !test || !docker {
		t.Errorf("ci.yml: lint %v, make test %v, docker builds %v; want all", lint, test, docker)
	}

	d, ok := ws["deploy.yml"]
	if !ok {
		t.Fatal(".github/workflows/deploy.yml is missing")
	}
	// after reports whether job a runs (transitively) after job b.
	var after func(a, b string) bool
	after = func(a, b string) bool {
		return slices.ContainsFunc(d.Jobs[a].needs(), func(n string) bool { return n == b || after(n, b) })
	}
	find := func(what string, ok func(j ghJob) bool) string {
		for _, id := range sortedKeys(d.Jobs) {
			if ok(d.Jobs[id]) {
				return id
			}
		}
		t.Fatalf("deploy.yml has no job that %s", what)
		return ""
	}
	ciJob := find("runs CI", func(j ghJob) bool { return strings.HasSuffix(j.Uses, "ci.yml") })
	deploys := func(env string) func(ghJob) bool {
		return func(j ghJob) bool {
			return j.environment() == env && strings.Contains(j.script(), "ecs-deploy.sh deploy")
		}
	}
	staging := find("deploys staging", deploys("staging"))
	e2e := find("runs E2E tests", func(j ghJob) bool { return strings.Contains(j.script(), " generate ") })
	prod := find("deploys production", deploys("production"))
	for _, order := range [][2]string{{staging, ciJob}, {e2e, staging}, {prod, e2e}} {
		if !after(order[0], order[1]) {
			t.Errorf("deploy.yml: %s must run after %s", order[0], order[1])
		}
	}
	for _, id := range []string{staging, prod} {
		j := d.Jobs[id]
		var migrate, health, rollback bool
		for _, s := range j.Steps {
			migrate = migrate || strings.Contains(s.Run, "ecs-deploy.sh migrate")
			health = health || strings.Contains(s.Run, "health-check.sh")
			rollback = rollback || (strings.Contains(s.If, "failure()") && strings.Contains(s.Run, "ecs-deploy.sh rollback"))
		}
		if !migrate || !health || !rollback {
			t.Errorf("deploy.yml job %s: migrate %v, health check %v, rollback on failure %v; want all", id, migrate, health, rollback)
		}
		checkPublishesWeb(t, d, id)
	}
}

// checkPublishesWeb: a deploy job publishes the web app once its services
// pass the health check: the build of a job it needs (npm ci and npm run
// build on Node 20), downloaded to web/dist/app and synced by
// publish-web.sh to the bucket and distribution its environment's variables
// name, which docs/deploy.md lists for that environment.
func checkPublishesWeb(t *testing.T, d workflow, id string) {
	t.Helper()
	j := d.Jobs[id]
	where := "deploy.yml job " + id
	health, publish, download := -1, -1, -1
	var artifact string
	for i, s := range j.Steps {
		switch {
		case strings.Contains(s.Run, "health-check.sh"):
			health = i
		case strings.Contains(s.Run, `deploy/scripts/publish-web.sh web/dist/app "$FRONTEND_BUCKET" "$CLOUDFRONT_DISTRIBUTION_ID"`):
			publish = i
		case strings.HasPrefix(s.Uses, "actions/download-artifact@") && s.With["path"] == "web/dist/app":
			download, artifact = i, fmt.Sprint(s.With["name"])
		}
	}
	if publish < 0 || download < 0 || download > publish || publish < health {
		t.Errorf("%s: download the web build at step %d, health check at %d, publish-web.sh at %d; want download, then health check, then publish",
			where, download, health, publish)
		return
	}
	for name, want := range map[string]string{"FRONTEND_BUCKET": "${{ vars.FRONTEND_BUCKET }}", "CLOUDFRONT_DISTRIBUTION_ID": "${{ vars.CLOUDFRONT_DISTRIBUTION_ID }}"} {
		if got := fmt.Sprint(j.Env[name]); got != want {
			t.Errorf("%s: env %s = %q, want %q", where, name, got, want)
		}
	}
	var built bool
	for _, n := range j.needs() {
		b := d.Jobs[n]
		var node, upload bool
		for _, s := range b.Steps {
			node = node || (strings.HasPrefix(s.Uses, "actions/setup-node@") && fmt.Sprint(s.With["node-version"]) == "20")
			upload = upload || (strings.HasPrefix(s.Uses, "actions/upload-artifact@") && s.With["name"] == artifact && s.With["path"] == "web/dist/app")
		}
		built = built || (node && upload && strings.Contains(b.script(), "npm ci") && strings.Contains(b.script(), "npm run build"))
	}
	if !built {
		t.Errorf("%s downloads artifact %q, which no job it needs builds (Node 20, npm ci, npm run build) and uploads from web/dist/app", where, artifact)
	}
	docs := string(read(t, filepath.Join(root(t), "docs", "deploy.md")))
	row := regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(j.environment()) + "` \\|.*$").FindString(docs)
	for _, v := range []string{"FRONTEND_BUCKET", "CLOUDFRONT_DISTRIBUTION_ID"} {
		if !strings.Contains(row, "`"+v+"`") {
			t.Errorf("docs/deploy.md: the %s environment's variables do not list %s", j.environment(), v)
		}
	}
}

// TestPublishWeb runs publish-web.sh against a stand-in aws CLI that
// records its arguments: hashed files go up first and immutable, the rest
// no-cache with deletions (static/ kept for tabs on the previous build),
// and the non-hashed paths are invalidated; a missing build or a failed
// upload stops it before anything is invalidated.
func TestPublishWeb(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	build := t.TempDir()
	for name, body := range map[string]string{"index.html": "<!doctype html>", "favicon.svg": "<svg/>",
		"static/index-abc.js": "x", "static/index-def.css": "y"} {
		path := filepath.Join(build, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(dir, failOn string) ([][]string, error) {
		bin := t.TempDir()
		log := filepath.Join(bin, "calls")
		// The stand-in logs each call's arguments (0x1f between them) and
		// fails the one whose arguments contain FAIL_ON.
		fake := "#!/bin/sh\nprintf '%s\\037' \"$@\" >> '" + log + "'\necho >> '" + log + "'\n" +
			"if [ -n \"$FAIL_ON\" ]; then case \"$*\" in *\"$FAIL_ON\"*) exit 1;; esac; fi\n"
		if err := os.WriteFile(filepath.Join(bin, "aws"), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bash, filepath.Join(root(t), "deploy", "scripts", "publish-web.sh"), dir, "easel-frontend", "E2DIST")
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "FAIL_ON="+failOn)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("publish-web.sh: %v\n%s", err, out)
		}
		raw, _ := os.ReadFile(log)
		var calls [][]string
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			if line != "" {
				calls = append(calls, strings.Split(strings.TrimSuffix(line, "\x1f"), "\x1f"))
			}
		}
		return calls, err
	}

	calls, err := run(build, "")
	if err != nil || len(calls) != 3 {
		t.Fatalf("publish-web.sh: %v, calls %q; want three", err, calls)
	}
	want := [][]string{
		{"s3", "sync", build + "/static", "s3://easel-frontend/static/", "--cache-control", "public,max-age=31536000,immutable"},
		{"s3", "sync", build, "s3://easel-frontend/", "--delete", "--exclude", "static/*", "--cache-control", "no-cache"},
	}
	for i, w := range want {
		if !slices.Equal(calls[i], w) {
			t.Errorf("call %d: aws %q, want aws %q", i+1, calls[i], w)
		}
	}
	inv := calls[2]
	if len(inv) < 5 || !slices.Equal(inv[:5], []string{"cloudfront", "create-invalidation", "--distribution-id", "E2DIST", "--paths"}) {
		t.Fatalf("call 3: aws %q, want a CloudFront invalidation of E2DIST", inv)
	}
	paths := slices.Sorted(slices.Values(inv[5:]))
	if !slices.Equal(paths, []string{"/favicon.svg", "/index.html"}) {
		t.Errorf("invalidated %q, want the non-hashed /favicon.svg and /index.html", paths)
	}

	if calls, err := run(t.TempDir(), ""); err == nil || len(calls) != 0 {
		t.Errorf("without a build: %v, calls %q; want a failure before any upload", err, calls)
	}
	if calls, err := run(build, "no-cache"); err == nil || len(calls) != 2 {
		t.Errorf("failed upload: %v, calls %q; want a failure and no invalidation", err, calls)
	}
}
