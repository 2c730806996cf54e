package autoscale

import (
	"testing"
	"time"
)

// A week of polls is the next week's forecast: the same ten minutes a week
// later read what the polls saw, also while this week's polls overwrite
// the bucket being read.
func TestHistoryForecastsTheSameHourLastWeek(t *testing.T) {
	h := NewHistory()
	monday := time.Date(2025, 1, 6, 0, 0, 0, 0, seoul)
	busy := func(at time.Time) int { return at.Hour() / 4 } // 0 at night, 5 in the evening
	for at := monday; at.Before(monday.Add(week)); at = at.Add(10 * time.Second) {
		h.Record(at, busy(at), 10*time.Second)
	}
	next := monday.Add(week + 16*time.Hour + 5*time.Minute)
	if got, ok := h.Forecast(next, 0); !ok || got != 4 {
		t.Fatalf("forecast at %s = %g, %v; want last week's 4 GPUs", next, got, ok)
	}
	// Looking ahead takes the busiest bucket: 19:55 sees 20:00's 5.
	if got, _ := h.Forecast(monday.Add(week+19*time.Hour+55*time.Minute), 10*time.Minute); got != 5 {
		t.Fatalf("forecast 10 minutes ahead of 19:55 = %g, want 5", got)
	}
	h.Record(next, 0, 10*time.Second)
	if got, ok := h.Forecast(next, 0); !ok || got != 4 {
		t.Fatalf("after this week's first poll of the bucket: %g, %v; want last week's 4 still", got, ok)
	}
	// Two weeks on, last week's polls are gone: no forecast.
	if _, ok := h.Forecast(monday.Add(3*week), time.Hour); ok {
		t.Fatal("forecast from a history two weeks old")
	}
	if _, ok := (*History)(nil).Forecast(next, 0); ok {
		t.Fatal("forecast from no history")
	}
}

// A bucket the polls covered for less than half its span (the autoscaler
// was down) forecasts nothing rather than a fraction of the load.
func TestHistoryIgnoresThinBuckets(t *testing.T) {
	h := NewHistory()
	at := time.Date(2025, 1, 6, 12, 0, 0, 0, time.UTC)
	for i := range 20 { // 200 s of a 600 s bucket
		h.Record(at.Add(time.Duration(i)*10*time.Second), 3, 10*time.Second)
	}
	if _, ok := h.Forecast(at.Add(week), 0); ok {
		t.Fatal("forecast from a third of a bucket")
	}
}
