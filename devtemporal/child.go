package devtemporal

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync/atomic"
	"time"
)

// stopTimeout bounds a graceful server shutdown before the process is killed.
const stopTimeout = 30 * time.Second

// childConfig is the first stdin line for the server process; it must
// match the struct of the same name in ./server.
type childConfig struct {
	Namespace        string           `json:"namespace"`
	DatabaseFile     string           `json:"databaseFile"`
	IP               string           `json:"ip"`
	Port             int              `json:"port"`
	SearchAttributes map[string]int32 `json:"searchAttributes"`
	DynamicConfig    map[string]any   `json:"dynamicConfig"`
	LogLevel         string           `json:"logLevel"`
}

// childStatus is the single stdout line the server process writes.
type childStatus struct {
	HostPort string `json:"hostPort"`
	Error    string `json:"error"`
}

// child is a running server process.
type child struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	hostPort string
	exited   chan struct{} // closed once cmd.Wait returns
	waitErr  error
	logsDone chan struct{}
	stopping atomic.Bool // set by stop; silences expected shutdown warnings
}

// startChild launches the server process and waits for its status line.
func startChild(ctx context.Context, opts Options) (*child, error) {
	bin, err := serverBinary(ctx, opts.Logger)
	if err != nil {
		return nil, err
	}
	c, stdout, err := spawn(bin, opts.Logger)
	if err != nil {
		return nil, err
	}
	if err := c.handshake(ctx, stdout, opts); err != nil {
		_ = c.kill()
		return nil, err
	}
	return c, nil
}

// spawn starts the process with piped stdio. Deliberately not
// exec.CommandContext: ctx bounds startup only, not the server's lifetime.
func spawn(bin string, logger *slog.Logger) (*child, io.Reader, error) {
	cmd := exec.Command(bin)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, errorf("stdin pipe: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, errorf("stdout pipe: %w", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, errorf("stderr pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, errorf("start server process %s: %w", bin, err)
	}
	c := &child{cmd: cmd, stdin: stdin, exited: make(chan struct{}), logsDone: make(chan struct{})}
	go func() {
		defer close(c.logsDone)
		forwardLogs(stderr, logger, &c.stopping)
	}()
	go func() {
		// Wait closes the pipes, so it must run after the readers finish.
		<-c.logsDone
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, stdout, nil
}

// handshake sends the config and waits for the server to report its address.
func (c *child) handshake(ctx context.Context, stdout io.Reader, opts Options) error {
	line, err := json.Marshal(toChildConfig(opts))
	if err != nil {
		return errorf("encode server config: %w", err)
	}
	if _, err := c.stdin.Write(append(line, '\n')); err != nil {
		return errorf("send server config: %w", err)
	}
	status := make(chan childStatus, 1)
	go func() { status <- readStatus(stdout) }()
	select {
	case st := <-status:
		if st.Error != "" {
			return errorf("server: %s", st.Error)
		}
		c.hostPort = st.HostPort
		return nil
	case <-ctx.Done():
		return errorf("waiting for server process: %w", ctx.Err())
	}
}

func readStatus(stdout io.Reader) childStatus {
	var st childStatus
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return childStatus{Error: "server process exited during startup (see its logs above)"}
	}
	if err := json.Unmarshal(line, &st); err != nil {
		return childStatus{Error: "bad status line: " + string(line)}
	}
	if st.HostPort == "" && st.Error == "" {
		st.Error = "empty status line"
	}
	return st
}

func toChildConfig(opts Options) childConfig {
	attrs := make(map[string]int32, len(opts.SearchAttributes))
	for name, typ := range opts.SearchAttributes {
		attrs[name] = int32(typ)
	}
	return childConfig{
		Namespace:        opts.Namespace,
		DatabaseFile:     opts.DatabaseFile,
		IP:               opts.IP,
		Port:             opts.Port,
		SearchAttributes: attrs,
		DynamicConfig:    jsonDynamicConfig(opts.DynamicConfig),
		LogLevel:         minLevel(opts.Logger).String(),
	}
}

// jsonDynamicConfig turns durations into strings: encoding/json would send
// nanoseconds, which the server would read as seconds.
func jsonDynamicConfig(in map[string]any) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		if d, ok := v.(time.Duration); ok {
			out[k] = d.String()
			continue
		}
		out[k] = v
	}
	return out
}

// stop closes stdin, which the server treats as the shutdown signal, and
// kills it if it does not exit in time.
func (c *child) stop() error {
	c.stopping.Store(true)
	_ = c.stdin.Close()
	select {
	case <-c.exited:
		return c.exitError()
	case <-time.After(stopTimeout):
		_ = c.kill()
		return errorf("server did not stop within %s; killed", stopTimeout)
	}
}

func (c *child) kill() error {
	_ = c.stdin.Close()
	err := c.cmd.Process.Kill()
	<-c.exited
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

func (c *child) exitError() error {
	if c.waitErr != nil {
		return errorf("server process: %w", c.waitErr)
	}
	return nil
}
