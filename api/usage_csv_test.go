package api

import (
	"testing"
	"time"

	"github.com/easel/easel/internal/store"
)

// TestUsageCSVRoundsComputeSeconds: a measured duration's float noise must
// not reach the export.
func TestUsageCSVRoundsComputeSeconds(t *testing.T) {
	for in, want := range map[float64]string{1.8593368959999999: "1.859", 2.5: "2.5", 0.1 + 0.2: "0.3", 12: "12", 0.0004: "0"} {
		row := usageCSVRow(store.UsageRecord{ComputeSeconds: in, CreatedAt: time.Unix(0, 0)})
		if got := row[8]; got != want {
			t.Errorf("compute_seconds %v printed %q, want %q", in, got, want)
		}
	}
}
