package servedmodels_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/engine"
	"github.com/easel/easel/internal/engine/sim"
	"github.com/easel/easel/internal/servedmodels"
	"github.com/easel/easel/internal/testenv"
)

// Reports from several workers add up per tier; a family only counts while
// some worker has reported it within Fresh; scopes do not see each other.
func TestReportsAddUpAndAge(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	reg := &servedmodels.Registry{Redis: rdb, Scope: "test-" + uuid.NewString()}
	other := &servedmodels.Registry{Redis: rdb, Scope: "test-" + uuid.NewString()}
	t.Cleanup(func() { _ = reg.Clear(ctx, "t4"); _ = other.Clear(ctx, "t4") })
	now := time.Now()

	sd := sim.New(sim.Config{Families: []string{"sd-1.5"}}).Served(ctx)
	if err := reg.Report(ctx, "t4", sd, now.Add(-2*servedmodels.ReportEvery)); err != nil {
		t.Fatal(err)
	}
	both := engine.Served{"sdxl": {Models: []string{"juggernaut"}}, "flux": {Problem: "no T5 encoder"}}
	if err := reg.Report(ctx, "t4", both, now); err != nil {
		t.Fatal(err)
	}
	got, err := reg.Read(ctx, "t4", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["sdxl"].Models[0] != "juggernaut" || got["sd-1.5"].Models[0] != "sim-sd-1.5" {
		t.Fatalf("served on t4 = %+v; want sd-1.5 and sdxl, not flux", got)
	}
	if got, _ := reg.Read(ctx, "t4", now.Add(servedmodels.Fresh)); len(got) != 1 || got["sdxl"].Models == nil {
		t.Fatalf("served a Fresh later = %+v; want sd-1.5 aged out", got)
	}
	if got, _ := reg.Read(ctx, "a10g", now); len(got) != 0 {
		t.Fatalf("another tier sees %+v", got)
	}
	if got, _ := other.Read(ctx, "t4", now); len(got) != 0 {
		t.Fatalf("another scope sees %+v", got)
	}
	if err := reg.Clear(ctx, "t4"); err != nil {
		t.Fatal(err)
	}
	if got, _ := reg.Read(ctx, "t4", now); len(got) != 0 {
		t.Fatalf("after Clear: %+v", got)
	}
}
