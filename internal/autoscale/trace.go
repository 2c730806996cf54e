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

// Bursty is one day of a diurnal base (a third of peak at 16:00) with
// surges at random times between 08:00 and 23:00 local time: on average one
// every 90 minutes, each 5 to 20 minutes long, adding a third to all of peak
// images per minute. The seed fixes both the surges and the Poisson draws.
func Bursty(start time.Time, peak float64, seed uint64) Trace {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	base := Diurnal(start, peak/60, peak/3, seed).Arrivals
	surge := make([]float64, len(base))
	for m := 0; m < len(base); m++ {
		local := start.Add(time.Duration(m) * time.Minute)
		if h := local.Hour(); h < 8 || h >= 23 || rng.Float64() >= 1.0/90 {
			continue
		}
		extra, length := peak*(1+2*rng.Float64())/3, 5+rng.IntN(16)
		for i := m; i < min(m+length, len(base)); i++ {
			surge[i] = max(surge[i], extra)
		}
		m += length
	}
	arrivals := make([]int, len(base))
	for m := range arrivals {
		arrivals[m] = base[m] + poisson(rng, surge[m])
	}
	return Trace{Name: TraceBursty, Start: start, Arrivals: arrivals}
}

// LaunchDay is one day on which a launch at 10:00 local time lands on an
// ordinary diurnal day (a quarter of peak at 16:00): the load climbs to
// about peak in 15 minutes, then decays over a couple of hours to a plateau
// of 30% of peak on top of the day's own shape.
func LaunchDay(start time.Time, peak float64, seed uint64) Trace {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	base := Diurnal(start, peak/80, peak/4, seed).Arrivals
	arrivals := make([]int, len(base))
	for m := range arrivals {
		local := start.Add(time.Duration(m) * time.Minute)
		since := float64(local.Hour()*60+local.Minute()) - 10*60
		extra := 0.0
		switch {
		case since >= 0 && since < 15:
			extra = 0.8 * peak * since / 15
		case since >= 15:
			extra = peak * (0.3 + 0.5*math.Exp(-(since-15)/90))
		}
		arrivals[m] = base[m] + poisson(rng, extra)
	}
	return Trace{Name: TraceLaunchDay, Start: start, Arrivals: arrivals}
}

// poissonChunk is the largest mean drawn by one product of uniforms: e^-745
// underflows to zero, and well before that the product loses precision.
const poissonChunk = 500

// poisson draws a Poisson count by Knuth's product of uniforms: O(lambda),
// exact, and fine for the tens of images per minute a trace holds. A larger
// mean is drawn as a sum of Poisson counts of at most poissonChunk each
// (a sum of independent Poisson counts is Poisson with the summed mean), so
// a tier's thousand images a minute are not capped by underflow; means up
// to poissonChunk draw exactly as before.
func poisson(rng *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > poissonChunk {
		return poisson(rng, poissonChunk) + poisson(rng, lambda-poissonChunk)
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
	images := 0
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
		if err := tr.add(rec, images); err != nil {
			line, _ := cr.FieldPos(0)
			return tr, fmt.Errorf("trace %s line %d: %w", name, line, err)
		}
		images += tr.Arrivals[len(tr.Arrivals)-1]
	}
	if len(tr.Arrivals) == 0 {
		return tr, fmt.Errorf("trace %s has no rows", name)
	}
	return tr, nil
}

// maxTraceMinutes bounds a trace file to a month, so a typo cannot make the
// simulator allocate without end.
const maxTraceMinutes = 31 * 24 * 60

// MaxTraceImages bounds the images of a trace, for the same reason: the
// queue model keeps every image's arrival and wait (tens of bytes an image
// per run) and simulates each second until the queue drains or
// gives up. Ten million images (a month at 224 a minute) simulate in
// seconds in under 1 GB, also all in one minute; a trace beyond it is
// refused before anything runs.
const MaxTraceImages = 10_000_000

// add appends a row to a trace that already holds images images.
func (t *Trace) add(rec []string, images int) error {
	minute, err := strconv.Atoi(strings.TrimSpace(rec[0]))
	if err != nil || minute < len(t.Arrivals) || minute >= maxTraceMinutes {
		return fmt.Errorf("minute %q: want an integer above the previous row's and under %d", rec[0], maxTraceMinutes)
	}
	n, err := strconv.Atoi(strings.TrimSpace(rec[1]))
	if err != nil || n < 0 {
		return fmt.Errorf("arrivals %q: want a non-negative integer", rec[1])
	}
	if n > MaxTraceImages-images {
		return fmt.Errorf("arrivals %d: the trace would have more than %d images, the simulator's limit", n, MaxTraceImages)
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
	// TraceBursty is a day with surges at random times, sizes and lengths.
	TraceBursty = "bursty"
	// TraceLaunchDay is a day with a launch at 10:00.
	TraceLaunchDay = "launch-day"
)

// TraceNames lists the built-in traces.
func TraceNames() []string {
	return []string{TraceDiurnal, TraceBurst, TraceBursty, TraceLaunchDay}
}

// BuiltinTrace builds a built-in trace whose busiest rate is peak images per
// minute: diurnal's trough is a twentieth of it, burst's base a tenth.
func BuiltinTrace(name string, start time.Time, peak float64, seed uint64) (Trace, error) {
	switch name {
	case TraceDiurnal:
		return Diurnal(start, peak/20, peak, seed), nil
	case TraceBurst:
		return Burst(start, peak/10, peak, seed), nil
	case TraceBursty:
		return Bursty(start, peak, seed), nil
	case TraceLaunchDay:
		return LaunchDay(start, peak, seed), nil
	}
	return Trace{}, fmt.Errorf("unknown trace %q: want one of %s or a CSV file", name, strings.Join(TraceNames(), ", "))
}

// previousWeekSeed derives the seed of a trace's previous week: the same
// shape, other random draws.
func previousWeekSeed(seed uint64) uint64 { return seed + 1<<32 }

// PreviousWeek is a built-in trace's same day a week earlier, what the
// autoscaler's History holds when the trace begins: the same shape with
// other random draws (its Poisson noise, and for bursty its surges, fall
// elsewhere), burst's surges at the same times (a schedule repeats), and
// for launch-day an ordinary day, since last week had no launch.
func PreviousWeek(name string, start time.Time, peak float64, seed uint64) (Trace, error) {
	start, seed = start.Add(-week), previousWeekSeed(seed)
	if name == TraceLaunchDay {
		tr := Diurnal(start, peak/80, peak/4, seed)
		tr.Name = TraceLaunchDay + " (previous week, no launch)"
		return tr, nil
	}
	tr, err := BuiltinTrace(name, start, peak, seed)
	tr.Name += " (previous week)"
	return tr, err
}

// Shifted is the trace itself a week earlier: a history that knew the
// day's own noise and surges, which flatters any forecast.
func (t Trace) Shifted(by time.Duration) Trace {
	return Trace{Name: t.Name + " (shifted)", Start: t.Start.Add(by), Arrivals: t.Arrivals}
}

// DefaultPeak sizes a built-in trace to a tier: a diurnal peak of six
// instances' work, inside the deployment guide's max of 10 with room for noise,
// bursts of nine, which the max only just absorbs after the boot delay, and
// a launch of ten, the max itself.
func DefaultPeak(name string, spec TierSpec) float64 {
	switch name {
	case TraceBurst, TraceBursty:
		return 9 * spec.PerInstanceMinute()
	case TraceLaunchDay:
		return 10 * spec.PerInstanceMinute()
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
