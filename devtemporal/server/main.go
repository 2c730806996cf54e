// Command server is the Temporal server half of package devtemporal.
//
// It is its own module and runs as a child process because
// go.temporal.io/server v1.31.2 only compiles against go.temporal.io/api up to
// v1.62.9, while the SDK (v1.51.0) and Web UI (v2.55.0) that easel uses need
// api v1.63.5+; one binary cannot hold both. Keeping the server here lets
// each side use the versions it was released with.
//
// Protocol with the parent: one JSON config line on stdin; one JSON status
// line on stdout once the frontend listens (or startup failed); JSON log
// lines on stderr; shutdown when stdin closes, which also covers the parent
// dying without calling Stop.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
)

// childConfig mirrors devtemporal.Options after the parent applied defaults.
type childConfig struct {
	Namespace        string           `json:"namespace"`
	DatabaseFile     string           `json:"databaseFile"`
	IP               string           `json:"ip"`
	Port             int              `json:"port"`
	SearchAttributes map[string]int32 `json:"searchAttributes"`
	DynamicConfig    map[string]any   `json:"dynamicConfig"`
	LogLevel         string           `json:"logLevel"`
}

// status is the single line written to stdout.
type status struct {
	HostPort string `json:"hostPort,omitempty"`
	Error    string `json:"error,omitempty"`
}

func main() {
	// Ctrl-C in a terminal reaches the whole process group. The parent owns
	// shutdown (it closes stdin), so an interrupt must not kill the server
	// before the parent has stopped its workers.
	signal.Ignore(os.Interrupt)
	in := bufio.NewReader(os.Stdin)
	cfg, err := readConfig(in)
	if err != nil {
		report(status{Error: err.Error()})
		os.Exit(2)
	}
	logger := newLogger(cfg.LogLevel)
	srv, hostPort, err := start(cfg, logger)
	if err != nil {
		report(status{Error: err.Error()})
		os.Exit(1)
	}
	report(status{HostPort: hostPort})
	// Block until the parent closes stdin (Stop) or exits.
	_, _ = io.Copy(io.Discard, in)
	if err := srv.Stop(); err != nil {
		logger.Error("stop temporal server", "error", err)
		os.Exit(1)
	}
}

func readConfig(r *bufio.Reader) (childConfig, error) {
	var cfg childConfig
	line, err := r.ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(line, &cfg); err != nil {
		return cfg, fmt.Errorf("decode config: %w", err)
	}
	return cfg, nil
}

func report(s status) {
	_ = json.NewEncoder(os.Stdout).Encode(s)
}
