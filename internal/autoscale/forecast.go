package autoscale

import (
	"math"
	"time"
)

// week is the period of the forecast: the same hour last week.
const week = 7 * 24 * time.Hour

// HistoryBucket is the resolution of a tier's History: ten minutes, so a
// diurnal ramp reads as a ramp, not as hourly steps.
const HistoryBucket = 10 * time.Minute

const historyBuckets = int(week / HistoryBucket)

// History is what a tier's autoscaler has seen of its load over the last
// two weeks, by ten-minute bucket of the week: the GPU-seconds its hosts
// spent rendering (busy GPUs x poll interval, as the polls observed them)
// and the seconds the polls covered. It is recorded by the autoscaler
// itself, poll by poll (RecordPoll), and carried through continue-as-new;
// a new autoscaler has none, and forecasts nothing until it has seen a
// week. Each bucket keeps its current week and the one before, so the
// bucket being written still answers for last week.
type History struct {
	Cur  []Bucket `json:"cur"`
	Prev []Bucket `json:"prev"`
}

// Bucket is one ten-minute span of one week. Its JSON is short: the
// workflow carries 2,016 of them through every continue-as-new.
type Bucket struct {
	Week    int64   `json:"w,omitempty"` // weeks since the Unix epoch's first Monday, UTC
	Busy    float64 `json:"b,omitempty"` // GPU-seconds rendered
	Covered float64 `json:"c,omitempty"` // seconds of polls that fell in it
}

// NewHistory returns an empty history.
func NewHistory() *History {
	return &History{Cur: make([]Bucket, historyBuckets), Prev: make([]Bucket, historyBuckets)}
}

// epochMonday is a Monday 00:00 UTC: weeks count from it.
var epochMonday = time.Date(1970, 1, 5, 0, 0, 0, 0, time.UTC)

// slot is a time's week number and bucket of the week.
func slot(t time.Time) (int64, int) {
	since := t.Sub(epochMonday)
	w := int64(since / week)
	return w, int((since - time.Duration(w)*week) / HistoryBucket)
}

// Record adds a poll: busy GPUs seen at t, standing for the poll interval.
func (h *History) Record(t time.Time, busyGPUs int, interval time.Duration) {
	if h == nil || len(h.Cur) != historyBuckets {
		return
	}
	w, i := slot(t)
	if h.Cur[i].Week != w {
		if h.Cur[i].Week == w-1 {
			h.Prev[i] = h.Cur[i]
		} else {
			h.Prev[i] = Bucket{}
		}
		h.Cur[i] = Bucket{Week: w}
	}
	h.Cur[i].Busy += float64(busyGPUs) * interval.Seconds()
	h.Cur[i].Covered += interval.Seconds()
}

// lastWeek is the average busy GPUs a week before t, and whether the
// polls of that bucket covered at least half of it.
func (h *History) lastWeek(t time.Time) (float64, bool) {
	w, i := slot(t)
	for _, b := range []Bucket{h.Cur[i], h.Prev[i]} {
		if b.Week == w-1 && b.Covered >= HistoryBucket.Seconds()/2 {
			return b.Busy / b.Covered, true
		}
	}
	return 0, false
}

// Forecast is the most GPUs last week kept busy over [t, t+lead], by
// bucket: the load to have hosts ready for by the time a host asked for
// now is up. It reports false when last week's polls did not cover t.
func (h *History) Forecast(t time.Time, lead time.Duration) (float64, bool) {
	if h == nil || len(h.Cur) != historyBuckets || len(h.Prev) != historyBuckets {
		return 0, false
	}
	best, ok := 0.0, false
	for at := t; ; at = at.Add(HistoryBucket) {
		if at.After(t.Add(lead)) {
			at = t.Add(lead)
		}
		if busy, seen := h.lastWeek(at); seen {
			best, ok = math.Max(best, busy), true
		}
		if !at.Before(t.Add(lead)) {
			break
		}
	}
	return best, ok
}
