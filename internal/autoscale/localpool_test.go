package autoscale

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// workerLog records starts and stops of fake workers.
type workerLog struct {
	events []string
	n      int
	fail   bool
}

func (l *workerLog) start(_ context.Context, tier string) (func(), error) {
	if l.fail {
		return nil, errors.New("no gpu")
	}
	l.n++
	id := fmt.Sprintf("%s#%d", tier, l.n)
	l.events = append(l.events, "start "+id)
	return func() { l.events = append(l.events, "stop "+id) }, nil
}

func TestLocalPool(t *testing.T) {
	ctx := context.Background()
	l := &workerLog{}
	p := NewLocalPool(l.start)
	steps := []struct {
		tier string
		n    int
	}{{"t4", 3}, {"a10g", 1}, {"t4", 1}, {"t4", 1}, {"t4", 2}}
	for _, s := range steps {
		if err := p.SetCapacity(ctx, s.tier, s.n); err != nil {
			t.Fatal(err)
		}
		if got, _ := p.Capacity(ctx, s.tier); got != s.n {
			t.Fatalf("capacity of %s = %d, want %d", s.tier, got, s.n)
		}
	}
	p.Close()
	want := "start t4#1,start t4#2,start t4#3,start a10g#4,stop t4#3,stop t4#2,start t4#5,stop a10g#4,stop t4#5,stop t4#1"
	if got := strings.Join(l.events, ","); got != want {
		t.Fatalf("events\n%s\nwant (newest stop first, Close stops all)\n%s", got, want)
	}
	if got, _ := p.Capacity(ctx, "t4"); got != 0 {
		t.Fatalf("capacity after Close = %d", got)
	}
}

func TestLocalPoolErrors(t *testing.T) {
	ctx := context.Background()
	l := &workerLog{}
	p := NewLocalPool(l.start)
	if err := p.SetCapacity(ctx, "t4", -1); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("negative capacity: %v", err)
	}
	if err := p.SetCapacity(ctx, "t4", 1); err != nil {
		t.Fatal(err)
	}
	l.fail = true
	if err := p.SetCapacity(ctx, "t4", 3); err == nil || !strings.Contains(err.Error(), "start worker 2 of tier t4: no gpu") {
		t.Fatalf("failing start: %v", err)
	}
	if got, _ := p.Capacity(ctx, "t4"); got != 1 {
		t.Fatalf("capacity after a failed start = %d, want the 1 that runs", got)
	}
}
