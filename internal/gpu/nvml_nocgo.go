//go:build !cgo

package gpu

import "errors"

// NewNVML returns a Driver whose Init always fails: go-nvml needs cgo, and
// this binary was built with CGO_ENABLED=0. The worker then runs as on a
// host without an NVIDIA driver.
func NewNVML() Driver { return noNVML{} }

var errNoCgo = errors.New("nvml: not built in (this binary was built with CGO_ENABLED=0)")

type noNVML struct{}

func (noNVML) Init() error                        { return errNoCgo }
func (noNVML) Shutdown() error                    { return nil }
func (noNVML) Count() (int, error)                { return 0, errNoCgo }
func (noNVML) Info(int) (Info, error)             { return Info{}, errNoCgo }
func (noNVML) Memory(int) (uint64, uint64, error) { return 0, 0, errNoCgo }
func (noNVML) Sample(int) (Sample, error)         { return Sample{}, errNoCgo }
func (noNVML) Accounting(int) (Accounting, error) { return Accounting{}, errNoCgo }
func (noNVML) Processes(int) ([]Process, error)   { return nil, errNoCgo }
func (noNVML) Events([]int) (Events, error)       { return nil, errNoCgo }
