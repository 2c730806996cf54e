package gpu

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// fakeDriver is an NVML stand-in: a few devices whose readings a test sets,
// and an event queue it feeds.
type fakeDriver struct {
	mu        sync.Mutex
	initErr   error
	infos     []Info
	samples   map[int]Sample
	free      map[int]uint64
	accts     map[int]Accounting
	sampleErr map[int]error
	events    chan Event
	shutdowns int
	// procs are the compute processes on each device, as NVML lists them.
	procs map[int][]Process
	// waiting counts event waits in progress; shutdownMidWait records a
	// Shutdown (the library unloaded) while one was.
	waiting         int
	shutdownMidWait bool
}

func newFakeDriver(n int) *fakeDriver {
	f := &fakeDriver{samples: map[int]Sample{}, free: map[int]uint64{}, accts: map[int]Accounting{},
		sampleErr: map[int]error{}, events: make(chan Event, 16), procs: map[int][]Process{}}
	for i := range n {
		f.infos = append(f.infos, Info{Name: "NVIDIA A10G", UUID: fmt.Sprintf("GPU-%08d", i), SlowdownC: 88})
		f.samples[i] = Sample{Utilization: 0.5, MemoryUsed: 2 * gib, MemoryTotal: 24 * gib, TemperatureC: 60,
			PowerW: 150, ECC: &ECCCounts{}}
		f.free[i] = 22 * gib
	}
	return f
}

func (f *fakeDriver) Init() error { return f.initErr }

func (f *fakeDriver) Shutdown() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdowns++
	if f.waiting > 0 {
		f.shutdownMidWait = true
	}
	return nil
}

func (f *fakeDriver) Count() (int, error) { return len(f.infos), nil }

func (f *fakeDriver) Info(i int) (Info, error) { return f.infos[i], nil }

func (f *fakeDriver) Memory(i int) (uint64, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.free[i], f.samples[i].MemoryTotal, nil
}

func (f *fakeDriver) Sample(i int) (Sample, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.samples[i], f.sampleErr[i]
}

func (f *fakeDriver) Accounting(i int) (Accounting, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accts[i], nil
}

func (f *fakeDriver) Processes(i int) ([]Process, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.procs[i], nil
}

func (f *fakeDriver) Events([]int) (Events, error) { return fakeEvents{f}, nil }

func (f *fakeDriver) set(i int, edit func(*Sample)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.samples[i]
	edit(&s)
	f.samples[i] = s
}

type fakeEvents struct{ f *fakeDriver }

func (e fakeEvents) Wait(timeout time.Duration) (Event, bool, error) {
	e.f.mu.Lock()
	e.f.waiting++
	e.f.mu.Unlock()
	defer func() {
		e.f.mu.Lock()
		e.f.waiting--
		e.f.mu.Unlock()
	}()
	select {
	case ev := <-e.f.events:
		return ev, true, nil
	case <-time.After(timeout):
		return Event{}, false, nil
	}
}

func (e fakeEvents) Close() error { return nil }

var errNoDriver = errors.New("nvml init: ERROR_LIBRARY_NOT_FOUND")

var nan = math.NaN()
