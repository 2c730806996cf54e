package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
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

// MachineCPU is what every CPU of this machine has done since boot, in
// seconds summed over CPUs: busy (user, nice, system, interrupts), idle
// (idle and I/O wait) and steal (time the hypervisor gave to others). A
// benchmark subtracts two readings to say how busy the whole machine was
// during a run, whoever kept it busy.
type MachineCPU struct {
	Busy, Idle, Steal float64
}

// ReadMachineCPU reads MachineCPU from /proc/stat; the zero value when it
// cannot.
func ReadMachineCPU() MachineCPU {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return MachineCPU{}
	}
	st, err := fs.Stat()
	if err != nil {
		return MachineCPU{}
	}
	t := st.CPUTotal
	return MachineCPU{
		Busy:  t.User + t.Nice + t.System + t.IRQ + t.SoftIRQ,
		Idle:  t.Idle + t.Iowait,
		Steal: t.Steal,
	}
}

// Since is the share of the machine's CPU time since m that was busy, and
// the share stolen by the hypervisor.
func (m MachineCPU) Since() (busy, steal float64) {
	now := ReadMachineCPU()
	b, i, s := now.Busy-m.Busy, now.Idle-m.Idle, now.Steal-m.Steal
	total := b + i + s
	if total <= 0 {
		return 0, 0
	}
	return b / total, s / total
}
