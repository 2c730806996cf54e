package autoscale

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Trace is a load: how many images arrive in each minute from Start.
type Trace struct {
	Name     string
	Start    time.Time
	Arrivals []int
}

// Peak is the most images that arrive in one minute.
func (t Trace) Peak() int {
	peak := 0
	for _, n := range t.Arrivals {
		peak = max(peak, n)
	}
	return peak
}

// Images is the total number of images in the trace.
func (t Trace) Images() int {
	total := 0
	for _, n := range t.Arrivals {
		total += n
	}
	return total
}

// Diurnal is one day of traffic that follows the clock: lowest at 04:00 and
// highest at 16:00 local time (Start's location), trough to peak images per
// minute, each minute drawn from a Poisson distribution with a fixed seed so
// a run is reproducible.
func Diurnal(start time.Time, trough, peak float64, seed uint64) Trace {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	const day = 24 * 60
	arrivals := make([]int, day)
	for m := range arrivals {
		local := start.Add(time.Duration(m) * time.Minute)
		minute := float64(local.Hour()*60 + local.Minute())
		shape := (1 - math.Cos(2*math.Pi*(minute-4*60)/day)) / 2
		arrivals[m] = poisson(rng, trough+(peak-trough)*shape)
	}
	return Trace{Name: TraceDiurnal, Start: start, Arrivals: arrivals}
}

// Burst is twelve hours of a steady base load with a ten-minute surge of
// peak images per minute every three hours, the first one hour in: the case
// the +3 rule is for.
func Burst(start time.Time, base, peak float64, seed uint64) Trace {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	arrivals := make([]int, 12*60)
	for m := range arrivals {
		rate := base
		if m >= 60 && (m-60)%180 < 10 {
			rate = peak
		}
		arrivals[m] = poisson(rng, rate)
	}
	return Trace{Name: TraceBurst, Start: start, Arrivals: arrivals}
}

// poisson draws a Poisson count by Knuth's product of uniforms: O(lambda),
// exact, and fine for the tens of images per minute a trace holds.
func poisson(rng *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	limit, p, k := math.Exp(-lambda), 1.0, 0
	for {
		p *= rng.Float64()
		if p <= limit {
			return k
		}
		k++
	}
}

// ReadTraceCSV reads a trace with the columns minute,arrivals: minute is
// the offset from start (0, 1, 2, ... ascending; a missing minute has no
// arrivals) and arrivals the images that arrive during it. A header row and
// lines starting with # are skipped.
func ReadTraceCSV(r io.Reader, name string, start time.Time) (Trace, error) {
	cr := csv.NewReader(r)
	cr.Comment, cr.FieldsPerRecord, cr.TrimLeadingSpace = '#', 2, true
	tr := Trace{Name: name, Start: start}
	for first := true; ; first = false {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return tr, fmt.Errorf("trace %s: %w", name, err)
		}
		if first && strings.EqualFold(strings.TrimSpace(rec[0]), "minute") {
			continue
		}
		if err := tr.add(rec); err != nil {
			line, _ := cr.FieldPos(0)
			return tr, fmt.Errorf("trace %s line %d: %w", name, line, err)
		}
	}
	if len(tr.Arrivals) == 0 {
		return tr, fmt.Errorf("trace %s has no rows", name)
	}
	return tr, nil
}

// maxTraceMinutes bounds a trace file to a month, so a typo cannot make the
// simulator allocate without end.
const maxTraceMinutes = 31 * 24 * 60

func (t *Trace) add(rec []string) error {
	minute, err := strconv.Atoi(strings.TrimSpace(rec[0]))
	if err != nil || minute < len(t.Arrivals) || minute >= maxTraceMinutes {
		return fmt.Errorf("minute %q: want an integer above the previous row's and under %d", rec[0], maxTraceMinutes)
	}
	n, err := strconv.Atoi(strings.TrimSpace(rec[1]))
	if err != nil || n < 0 {
		return fmt.Errorf("arrivals %q: want a non-negative integer", rec[1])
	}
	for len(t.Arrivals) < minute {
		t.Arrivals = append(t.Arrivals, 0)
	}
	t.Arrivals = append(t.Arrivals, n)
	return nil
}

// Built-in trace names.
const (
	TraceDiurnal = "diurnal"
	TraceBurst   = "burst"
)

// BuiltinTrace builds a built-in trace whose busiest rate is peak images per
// minute: diurnal's trough is a twentieth of it, burst's base a tenth.
func BuiltinTrace(name string, start time.Time, peak float64, seed uint64) (Trace, error) {
	switch name {
	case TraceDiurnal:
		return Diurnal(start, peak/20, peak, seed), nil
	case TraceBurst:
		return Burst(start, peak/10, peak, seed), nil
	}
	return Trace{}, fmt.Errorf("unknown trace %q: want %s, %s or a CSV file", name, TraceDiurnal, TraceBurst)
}

// DefaultPeak sizes a built-in trace to a tier: a diurnal peak of six
// instances' work, inside the deployment guide's max of 10 with room for noise, and
// bursts of nine, which the max only just absorbs after the boot delay.
func DefaultPeak(name string, spec TierSpec) float64 {
	if name == TraceBurst {
		return 9 * spec.PerInstanceMinute()
	}
	return 6 * spec.PerInstanceMinute()
}

// DefaultStart is when a built-in trace starts on its first day: diurnal at
// midnight, burst at 09:00 so that its surges fall in the working day.
func DefaultStart(name string, day time.Time) time.Time {
	y, m, d := day.Date()
	if name == TraceBurst {
		return time.Date(y, m, d, 9, 0, 0, 0, day.Location())
	}
	return time.Date(y, m, d, 0, 0, 0, 0, day.Location())
}
