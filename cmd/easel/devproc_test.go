//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// devProcess runs the easel binary's `easel dev` as a child process in its
// own process group, so that one SIGKILL takes it down with versitygw and
// stripe-mock, as a crash of the host would. Its state directory (Temporal's
// SQLite file, S3 objects, the dev issuer's key) and its ports stay the same
// across restarts.
type devProcess struct {
	bin, root, stateDir, logPath string
	env                          []string
	httpAddr                     string
	temporalPort                 int
	args                         []string
	cmd                          *exec.Cmd
	exited                       chan struct{}
	exitErr                      error // cmd.Wait's answer, set before exited closes
}

func newDevProcess(t *testing.T, bin, root string, env []string) *devProcess {
	t.Helper()
	stateDir := t.TempDir()
	p := &devProcess{bin: bin, root: root, stateDir: stateDir, logPath: filepath.Join(stateDir, "dev.log"), env: env}
	ports := freePorts(t, 4)
	p.httpAddr = "127.0.0.1:" + strconv.Itoa(ports[0])
	p.temporalPort = ports[1]
	p.args = []string{"dev", "--state-dir", stateDir, "--http-addr", p.httpAddr,
		"--temporal-port", strconv.Itoa(ports[1]), "--ui-port", strconv.Itoa(ports[2]),
		"--s3-addr", "127.0.0.1:" + strconv.Itoa(ports[3]), "--step-delay", "20ms"}
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("easel dev log (%s), last lines:\n%s", p.logPath, tail(p.logPath, 80))
		}
	})
	return p
}

func (p *devProcess) baseURL() string { return "http://" + p.httpAddr }

// start launches `easel dev` and waits until /healthz answers 200 (Postgres,
// Redis, Temporal and S3 all reachable).
func (p *devProcess) start(t *testing.T) {
	t.Helper()
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("open dev log: %v", err)
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "\n===== start %s =====\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir = p.root // where `easel dev` looks for .bin/versitygw
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start easel dev: %v", err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { p.exitErr = cmd.Wait(); close(exited) }(p.exited)
	if err := p.waitReady(90 * time.Second); err != nil {
		// The reason comes first: a long log is cut in the middle by CI.
		t.Fatalf("easel dev did not become ready: %v; this start's last lines:\n%s", err, lastStart(p.logPath, 25))
	}
}

func (p *devProcess) waitReady(limit time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(limit)
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("the process exited (%v)", p.exitErr)
		default:
		}
		resp, err := client.Get(p.baseURL() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("after %s: %s", limit, last)
}

// kill sends SIGKILL to the whole process group (no shutdown hooks run) and
// waits until no process of the group is left alive.
func (p *devProcess) kill(t *testing.T) {
	t.Helper()
	if p.cmd == nil {
		return
	}
	pgid := p.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill process group %d: %v", pgid, err)
	}
	<-p.exited
	p.cmd = nil
	deadline := time.Now().Add(10 * time.Second)
	for {
		alive := liveInGroup(pgid)
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes %v of easel dev's group survived SIGKILL", alive)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveInGroup lists the processes of a group that are not zombies, from
// /proc/<pid>/stat ("pid (comm) state ppid pgrp ...").
func liveInGroup(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// freePorts picks n distinct free ports above Linux's ephemeral range
// (32768-60999) and above the 20000-32000 range the embedded Temporal
// servers of this and other test processes draw from, so no outgoing
// connection and no other server takes one of them between restarts.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	seen := map[int]bool{}
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 500 {
			t.Fatal("no free ports")
		}
		p := 61000 + rand.IntN(4500)
		if seen[p] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		_ = l.Close()
		seen[p] = true
		ports = append(ports, p)
	}
	return ports
}

// buildEasel compiles the easel binary from the repository at root.
func buildEasel(t testing.TB, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "easel")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/easel")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/easel: %v\n%s", err, out)
	}
	return bin
}

// lastStart is the tail of the log written since the last start marker.
func lastStart(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	s := string(b)
	if i := strings.LastIndex(s, "\n===== start "); i >= 0 {
		s = s[i+1:]
	}
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
