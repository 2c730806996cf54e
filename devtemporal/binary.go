package devtemporal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// binaryEnv names a prebuilt server binary, for machines without the
// source tree or Go toolchain.
const binaryEnv = "EASEL_DEVTEMPORAL_SERVER"

// binaryPrefix names cached server binaries; the rest is a source hash.
const binaryPrefix = "devtemporal-server-"

// binaryMu serialises builds within the process; buildLocked does the same
// across processes.
var binaryMu sync.Mutex

// serverBinary returns the path of the child server binary, building it
// on first use. The cache key is a hash of the nested module's sources, so
// an existing binary is reused without invoking the Go toolchain at all.
func serverBinary(ctx context.Context, logger *slog.Logger) (string, error) {
	if path := os.Getenv(binaryEnv); path != "" {
		return path, nil
	}
	binaryMu.Lock()
	defer binaryMu.Unlock()
	src, err := serverSourceDir()
	if err != nil {
		return "", err
	}
	target, err := cachedBinaryPath(src)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(target); err == nil {
		return target, nil
	}
	// Warn so the default logger shows it: otherwise the first `easel dev`
	// appears to hang for minutes.
	logger.Warn("building Temporal dev server binary; first run only, takes a few minutes", "target", target)
	if err := buildLocked(ctx, src, target); err != nil {
		return "", err
	}
	return target, nil
}

// staleLock is how old a build lock may get before we assume its owner died.
const staleLock = 30 * time.Minute

// buildLocked lets one process build while others (parallel test binaries
// of `go test ./...`) wait for its result instead of compiling the Temporal
// server several times at once. A lock file created with O_EXCL works on
// every platform.
func buildLocked(ctx context.Context, src, target string) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return errorf("create binary cache dir: %w", err)
	}
	lock := target + ".lock"
	for {
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			_ = f.Close()
			defer func() { _ = os.Remove(lock) }()
			return buildBinary(ctx, src, target)
		}
		if !errors.Is(err, fs.ErrExist) {
			return errorf("build lock: %w", err)
		}
		if _, err := os.Stat(target); err == nil {
			return nil // another process finished the build
		}
		if info, err := os.Stat(lock); err == nil && time.Since(info.ModTime()) > staleLock {
			_ = os.Remove(lock)
			continue
		}
		select {
		case <-ctx.Done():
			return errorf("waiting for another process to build the server: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// serverSourceDir finds ./server next to this file. It relies on the source
// tree being present, which holds for `easel dev` and tests run from a
// checkout; elsewhere use EASEL_DEVTEMPORAL_SERVER.
func serverSourceDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errorf("cannot locate package source; set %s", binaryEnv)
	}
	dir := filepath.Join(filepath.Dir(file), "server")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", errorf("server sources not found at %s; set %s: %w", dir, binaryEnv, err)
	}
	return dir, nil
}

func cachedBinaryPath(src string) (string, error) {
	key, err := sourceHash(src)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	name := binaryPrefix + key[:16]
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	return filepath.Join(cache, "easel", name), nil
}

// sourceHash covers everything that determines the binary: the module
// files (go.sum pins every dependency) and the target platform.
func sourceHash(src string) (string, error) {
	var files []string
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if !d.IsDir() && (strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return "", errorf("hash server sources: %w", err)
	}
	sort.Strings(files)
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "%s/%s\n", runtime.GOOS, runtime.GOARCH)
	for _, f := range files {
		if err := hashFile(h, src, f); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(h io.Writer, root, path string) error {
	rel, _ := filepath.Rel(root, path)
	_, _ = fmt.Fprintf(h, "%s\n", filepath.ToSlash(rel))
	f, err := os.Open(path)
	if err != nil {
		return errorf("hash server sources: %w", err)
	}
	defer func() { _ = f.Close() }()
	_, err = io.Copy(h, f)
	return err
}

// buildBinary runs `go build` in the nested module and atomically moves the
// result into place.
func buildBinary(ctx context.Context, src, target string) error {
	tmp := fmt.Sprintf("%s.tmp-%d", target, os.Getpid())
	cmd := exec.CommandContext(ctx, goTool(), "build", "-o", tmp, ".")
	cmd.Dir = src
	// The nested module must resolve its own go.mod, never a go.work that
	// would pull it back into the easel module's dependency graph.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		_ = os.Remove(tmp)
		return errorf("build temporal server in %s: %w\n%s", src, err, out)
	}
	if err := os.Rename(tmp, target); err != nil {
		_ = os.Remove(tmp)
		return errorf("install temporal server binary: %w", err)
	}
	pruneOldBinaries(target)
	return nil
}

// pruneOldBinaries deletes binaries built from earlier sources: each is
// ~190 MB and a new one appears whenever ./server changes. In-progress
// builds of other processes (".tmp-" and ".lock" names) are left alone.
func pruneOldBinaries(keep string) {
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(keep), binaryPrefix+"*"))
	for _, path := range old {
		base := filepath.Base(path)
		if path != keep && !strings.Contains(base, ".tmp-") && !strings.HasSuffix(base, ".lock") {
			_ = os.Remove(path)
		}
	}
}

// goTool prefers the go on PATH and falls back to the toolchain that built
// this program (go test does not always put it on PATH).
func goTool() string {
	if path, err := exec.LookPath("go"); err == nil {
		return path
	}
	candidate := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(candidate); err == nil {
		return candidate
	}
	return "go"
}
