package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/easel/easel/internal/testenv"
	"github.com/easel/easel/web"
)

// TestUnit runs the web app's unit tests (Vitest: `npm test` in web/), in
// Node. Without Node or web/node_modules it skips, except under CI=true
// where it fails.
func TestUnit(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "web")
	if _, err := exec.LookPath("node"); err != nil {
		testenv.Unavailable(t, "node: %v (Node 20.19+ builds and tests the web app)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "vitest")); err != nil {
		testenv.Unavailable(t, "web/node_modules: %v (make web installs it)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npx", "vitest", "run")
	cmd.Dir = dir
	// Plain text in the test's log.
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "FORCE_COLOR=0")
	out, err := cmd.CombinedOutput()
	t.Logf("npx vitest run:\n%s", out)
	if err != nil {
		t.Fatalf("unit tests failed: %v", err)
	}
}

// TestBrowser runs the Playwright tests (web/e2e) in Debian's chromium
// against a real `easel dev` built from this tree, on its own ports, state
// directory and database. Without Node, Chromium or the app's build it
// skips, except under CI=true where it fails.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are not short")
	}
	root := testenv.RepoRoot(t)
	dir := filepath.Join(root, "web")
	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath("node"); err != nil {
		testenv.Unavailable(t, "node: %v (Node 20.19+ builds and tests the web app)", err)
	}
	if _, err := os.Stat(chromium); err != nil {
		testenv.Unavailable(t, "chromium: %v (internal/devstack/services.sh installs it)", err)
	}
	if _, built := web.App(); !built {
		testenv.Unavailable(t, "the web app is not built: run make web")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@playwright", "test")); err != nil {
		testenv.Unavailable(t, "web/node_modules: %v (make web installs it)", err)
	}
	dbURL, redisURL := testenv.PostgresURL(t), testenv.RedisURL(t)

	bin := filepath.Join(t.TempDir(), "easel")
	build := exec.Command("go", "build", "-o", bin, "./cmd/easel")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/easel: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npx", "playwright", "test")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "EASEL_BIN="+bin, "CHROMIUM="+chromium,
		"EASEL_E2E_DATABASE_URL="+dbURL, "EASEL_E2E_REDIS_URL="+redisURL,
		"EASEL_E2E_STATE="+t.TempDir(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
	out, err := cmd.CombinedOutput()
	t.Logf("npx playwright test:\n%s", out)
	if err != nil {
		t.Fatalf("browser tests failed: %v (screenshots and traces under web/test-results)", err)
	}
}
