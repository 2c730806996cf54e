package gpu

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// InvokeAIProcesses returns an Options.Foreign that tells InvokeAI's
// processes from others by their command line under procRoot (/proc): a
// process whose command line names invokeai (invokeai-web, python -m
// invokeai...) is InvokeAI's; any other process it can read is foreign.
//
// NVML reports host PIDs. A PID that is not visible here (the worker runs
// in its own PID namespace) cannot be judged and counts as InvokeAI's, so
// admission then errs towards admitting, with InvokeAI's out-of-memory
// error as the backstop. The ECS task runs with pidMode host so that every
// GPU process is visible.
func InvokeAIProcesses(procRoot string) func(pid uint32) bool {
	return func(pid uint32) bool {
		cmdline, err := os.ReadFile(filepath.Join(procRoot, strconv.FormatUint(uint64(pid), 10), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			return false // not visible (or a zombie): cannot tell
		}
		return !bytes.Contains(bytes.ToLower(cmdline), []byte("invokeai"))
	}
}
