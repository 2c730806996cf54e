package pricing

import "testing"

func TestPrice(t *testing.T) {
	cases := []struct {
		req      Request
		per, tot int
	}{
		{Request{"sd-1.5", 512, 512, 30, 1}, 1, 1},
		{Request{"sd-1.5", 512, 512, 30, 4}, 1, 4},
		{Request{"sdxl", 1024, 1024, 30, 1}, 2, 2},
		{Request{"flux", 1024, 1024, 30, 2}, 6, 12},
		{Request{"sdxl", 1024, 1024, 50, 1}, 4, 4},        // 2 * 50/30 = 3.33 -> 4
		{Request{"sd-1.5", 64, 64, 1, 1}, 1, 1},           // floor of one credit
		{Request{"flux", 4096, 4096, 150, 16}, 480, 7680}, // 1.5 * 64 tiles * 5,
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

func TestPriceRejects(t *testing.T) {
	for _, r := range []Request{{"dalle", 512, 512, 30, 1}, {"sdxl", 0, 512, 30, 1}, {"sdxl", 512, 512, 30, 0}} {
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
