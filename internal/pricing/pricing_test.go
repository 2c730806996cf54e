package pricing

import "testing"

func TestPrice(t *testing.T) {
	cases := []struct {
		req      Request
		per, tot int
	}{
		{Request{"sd-1.5", 512, 512, 30, 1, false, 0}, 1, 1},
		{Request{"sd-1.5", 512, 512, 30, 4, false, 0}, 1, 4},
		{Request{"sdxl", 1024, 1024, 30, 1, false, 0}, 2, 2},
		{Request{"flux", 1024, 1024, 30, 2, false, 0}, 6, 12},
		{Request{"sdxl", 1024, 1024, 50, 1, false, 0}, 4, 4},        // 2 * 50/30 = 3.33 -> 4
		{Request{"sd-1.5", 64, 64, 1, 1, false, 0}, 1, 1},           // floor of one credit
		{Request{"flux", 4096, 4096, 150, 16, false, 0}, 480, 7680}, // 1.5 * 64 tiles * 5,
	}
	for _, c := range cases {
		q, err := Price(c.req)
		if err != nil {
			t.Fatalf("%+v: %v", c.req, err)
		}
		if q.PerImage != c.per || q.Total != c.tot {
			t.Errorf("%+v: per image %d total %d, want %d and %d", c.req, q.PerImage, q.Total, c.per, c.tot)
		}
	}
}

// From an init image only the last strength of the steps run, and only
// they are priced: ceil(steps * strength), at least one step.
func TestPriceImageToImage(t *testing.T) {
	cases := []struct {
		req Request
		per int
	}{
		{Request{"sdxl", 1024, 1024, 30, 1, true, 1}, 2},     // strength 1: every step, as text-to-image
		{Request{"sdxl", 1024, 1024, 30, 1, true, 0.75}, 2},  // 23 steps: 2 * 23/30 = 1.53 -> 2
		{Request{"sdxl", 1024, 1024, 60, 1, true, 0.5}, 2},   // 30 steps
		{Request{"flux", 1024, 1024, 30, 1, true, 0.5}, 3},   // 15 steps: 6 / 2
		{Request{"flux", 1024, 1024, 30, 1, false, 0.5}, 6},  // no init image: strength ignored
		{Request{"sd-1.5", 1024, 1024, 30, 1, true, 0}, 1},   // strength 0 still runs one step: 4/30 -> 1
		{Request{"flux", 2048, 2048, 100, 1, true, 0.7}, 56}, // 70 steps, 1.5*16*70/30 (71, were 100*0.7 = 70.00000000000001 rounded up, is 57)
	}
	for _, c := range cases {
		q, err := Price(c.req)
		if err != nil || q.PerImage != c.per {
			t.Errorf("%+v: per image %d (%v), want %d", c.req, q.PerImage, err, c.per)
		}
	}
	for _, s := range []float64{-0.1, 1.01} {
		if _, err := Price(Request{"sdxl", 1024, 1024, 30, 1, true, s}); err == nil {
			t.Errorf("strength %g priced", s)
		}
	}
}

func TestPriceRejects(t *testing.T) {
	for _, r := range []Request{{Model: "dalle", Width: 512, Height: 512, Steps: 30, BatchSize: 1}, {Model: "sdxl", Height: 512, Steps: 30, BatchSize: 1}, {Model: "sdxl", Width: 512, Height: 512, Steps: 30}} {
		if _, err := Price(r); err == nil {
			t.Errorf("%+v: want error", r)
		}
	}
}

func TestPassesSumsTheWorkOfEveryPass(t *testing.T) {
	cases := []struct {
		name   string
		passes []Pass
		images int
		per    int
	}{
		{"one pass is Price", []Pass{{"sdxl", 1024, 1024, 30, 1}}, 1, 2},
		// 512x512 at 30 (1) + 1024x1024 at 15 (2): 3, not ceil(1)+ceil(2) twice.
		{"hires fix", []Pass{{"sd-1.5", 512, 512, 30, 1}, {"sd-1.5", 1024, 1024, 15, 1}}, 2, 3},
		// sdxl 1024 at 30 (2) + refiner-like sdxl pass at 10 (0.67): 2.67 -> 3.
		{"refiner", []Pass{{"sdxl", 1024, 1024, 30, 1}, {"sdxl", 1024, 1024, 10, 1}}, 1, 3},
		// a pass fanned out 4 times costs 4 passes.
		{"fan-out", []Pass{{"flux", 1024, 1024, 30, 4}}, 1, 24},
		// mixed families add exactly: 0.5 + 1.5 = 2.
		{"mixed", []Pass{{"sdxl", 512, 512, 30, 1}, {"flux", 512, 512, 30, 1}}, 1, 2},
		{"floor", []Pass{{"sd-1.5", 64, 64, 1, 1}}, 1, 1},
		// the decoy of the graph that renders 4096x4096 at 10,000 steps.
		{"huge", []Pass{{"sd-1.5", 4096, 4096, 10000, 1}}, 1, 21334},
	}
	for _, c := range cases {
		q, err := Passes(c.passes, c.images)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if q.PerImage != c.per || q.Total != c.per*c.images || q.Images != c.images {
			t.Errorf("%s: %+v, want %d per image", c.name, q, c.per)
		}
	}
}

func TestPassesRejects(t *testing.T) {
	for name, c := range map[string]struct {
		p []Pass
		n int
	}{
		"no pass":      {nil, 1},
		"no images":    {[]Pass{{"sdxl", 512, 512, 30, 1}}, 0},
		"unknown":      {[]Pass{{"dalle", 512, 512, 30, 1}}, 1},
		"zero count":   {[]Pass{{"sdxl", 512, 512, 30, 0}}, 1},
		"overflowing":  {[]Pass{{"flux", 1 << 20, 1 << 20, 1 << 20, 1}}, 1},
		"negative dim": {[]Pass{{"flux", -8, 512, 30, 1}}, 1},
	} {
		if _, err := Passes(c.p, c.n); err == nil {
			t.Errorf("%s: want error", name)
		}
	}
}
