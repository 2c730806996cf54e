package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SelfCPU is the CPU time (user + system) this process has used, for
// benchmarks that report how many cores a run kept busy.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ProcessCPU sums the user + system time of every process named comm (for
// example "postgres").
func ProcessCPU(comm string) time.Duration {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total time.Duration
	for _, p := range stats {
		if name, cpu, ok := readStat(p); ok && name == comm {
			total += cpu
		}
	}
	return total
}

// PIDsCPU sums the user + system time of the given processes, for example
// the Postgres backends of one connection pool, whose CPU is then the
// server's work for that pool alone, whatever else the server is doing.
// A process that has exited counts nothing.
func PIDsCPU(pids []uint32) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		if _, cpu, ok := readStat("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/stat"); ok {
			total += cpu
		}
	}
	return total
}

// readStat reads a process's name and user + system time from its
// /proc/<pid>/stat (fields 14 and 15, which Linux counts in ticks of 1/100 s).
func readStat(path string) (string, time.Duration, bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", 0, false
	}
	s := string(raw)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return "", 0, false
	}
	f := strings.Fields(s[closing+1:])
	if len(f) < 13 {
		return "", 0, false
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return s[open+1 : closing], time.Duration(u+st) * 10 * time.Millisecond, true
}
