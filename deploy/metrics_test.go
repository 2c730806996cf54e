package deploy

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

var severities = []string{"critical", "high", "medium", "info"}

// checkRules checks the shape of a rule file and returns its rules by name.
func checkRules(t *testing.T, path string) map[string]rule {
	t.Helper()
	var f ruleFile
	readYAML(t, path, &f)
	where := rel(t, path)
	if len(f.Groups) == 0 {
		t.Fatalf("%s has no rule groups", where)
	}
	rules := map[string]rule{}
	for _, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("%s: group %q is unnamed or empty", where, g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" || r.Record != "" {
				t.Errorf("%s: group %s has a rule that is not an alert: %+v", where, g.Name, r)
				continue
			}
			if _, dup := rules[r.Alert]; dup {
				t.Errorf("%s: alert %s is defined twice", where, r.Alert)
			}
			rules[r.Alert] = r
			if strings.TrimSpace(r.Expr) == "" || !balanced(r.Expr) {
				t.Errorf("%s: alert %s has an empty or unbalanced expression", where, r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: alert %s: for: %v", where, r.Alert, err)
				}
			}
			if !slices.Contains(severities, r.Labels["severity"]) {
				t.Errorf("%s: alert %s has severity %q, want one of %v", where, r.Alert, r.Labels["severity"], severities)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: alert %s needs a summary and a description", where, r.Alert)
			}
			if len(metricRefs(r.Expr)) == 0 {
				t.Errorf("%s: alert %s queries no easel_ or temporal_ metric", where, r.Alert)
			}
		}
	}
	return rules
}

// balanced reports whether (), [] and {} nest properly outside quotes.
func balanced(expr string) bool {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	var quote rune
	for _, r := range expr {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'' || r == '`':
			quote = r
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0 && quote == 0
}

// TestAlertRules: deploy/prometheus/alerts.yml is a valid rule file whose
// every metric is exported by the Go code; it covers the deployment guide's section 8.2
// rows that are about the service itself.
func TestAlertRules(t *testing.T) {
	metrics := exportedMetrics(t)
	dir := filepath.Join(root(t), "deploy", "prometheus")
	live := checkRules(t, filepath.Join(dir, "alerts.yml"))
	for _, name := range sortedKeys(live) {
		for _, m := range metricRefs(live[name].Expr) {
			if !metrics[m] {
				t.Errorf("deploy/prometheus/alerts.yml: alert %s queries %s, which the Go code does not export", name, m)
			}
		}
	}
	seed := map[string]bool{}
	for _, r := range live {
		if s := r.Labels["guide_alarm"]; s != "" {
			seed[s] = true
		}
	}
	for _, want := range []string{"api_error_rate", "api_latency", "gpu_queue_depth"} {
		if !seed[want] {
			t.Errorf("no alert rule has guide_alarm=%s (deployment guide section 8.2)", want)
		}
	}
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []map[string]any `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int              `json:"id"`
	Type       string           `json:"type"`
	Title      string           `json:"title"`
	Datasource map[string]any   `json:"datasource"`
	Targets    []map[string]any `json:"targets"`
}

// TestDashboards: the deployment guide's four dashboard groups (section 8.1) exist as
// Grafana dashboards, every panel queries something, and every metric a
// Prometheus query names is exported by the Go code.
func TestDashboards(t *testing.T) {
	metrics := exportedMetrics(t)
	dir := filepath.Join(root(t), "deploy", "grafana", "dashboards")
	uids := map[string]bool{}
	check := func(where, query string) {
		for _, m := range metricRefs(query) {
			if !metrics[m] {
				t.Errorf("%s queries %s, which the Go code does not export", where, m)
			}
		}
	}
	for _, group := range []string{"api", "gpu", "business", "infrastructure"} {
		path := filepath.Join(dir, group+".json")
		var d dashboard
		if err := json.Unmarshal(read(t, path), &d); err != nil {
			t.Errorf("%s: %v", rel(t, path), err)
			continue
		}
		where := rel(t, path)
		if d.UID == "" || d.Title == "" || uids[d.UID] {
			t.Errorf("%s: uid %q title %q: want a unique uid and a title", where, d.UID, d.Title)
		}
		uids[d.UID] = true
		if len(d.Panels) == 0 {
			t.Errorf("%s has no panels", where)
		}
		ids := map[int]bool{}
		for _, p := range d.Panels {
			pw := where + " panel " + p.Title
			if ids[p.ID] || p.Title == "" {
				t.Errorf("%s: panel id %d is repeated or untitled", where, p.ID)
			}
			ids[p.ID] = true
			if p.Datasource["type"] == nil || len(p.Targets) == 0 {
				t.Errorf("%s has no data source or no targets", pw)
			}
			for _, target := range p.Targets {
				expr, _ := target["expr"].(string)
				metric, _ := target["metricName"].(string)
				switch {
				case expr != "":
					if !balanced(expr) {
						t.Errorf("%s: unbalanced expression %s", pw, expr)
					}
					check(pw, expr)
				case metric != "" && target["namespace"] != nil:
					if target["namespace"] == "Easel" { // the services' own metrics, through the collector
						check(pw, metric)
					}
				default:
					t.Errorf("%s: target %v has neither a Prometheus expression nor a CloudWatch metric", pw, target["refId"])
				}
			}
		}
		for _, v := range d.Templating.List {
			for _, key := range []string{"query", "definition"} {
				switch q := v[key].(type) {
				case string:
					check(where+" variable "+v["name"].(string), q)
				case map[string]any:
					if s, ok := q["query"].(string); ok {
						check(where+" variable "+v["name"].(string), s)
					}
				}
			}
		}
	}
}

func TestBalanced(t *testing.T) {
	for expr, want := range map[string]bool{
		`sum(rate(x{a="(("}[5m]))`: true,
		`sum(rate(x[5m])`:          false,
		`x{a="b"]`:                 false,
	} {
		if got := balanced(expr); got != want {
			t.Errorf("balanced(%s) = %v, want %v", expr, got, want)
		}
	}
}
