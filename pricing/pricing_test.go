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

func TestForImagesSettlesPerImageProduced(t *testing.T) {
	q, _ := Price(Request{"sdxl", 1024, 1024, 30, 4})
	if got := q.ForImages(2); got != q.Total/2 {
		t.Fatalf("2 of 4 images cost %d, want %d", got, q.Total/2)
	}
	if q.ForImages(9) != q.Total || q.ForImages(-1) != 0 {
		t.Fatal("ForImages must clamp to 0..batch")
	}
}

func TestPriceRejects(t *testing.T) {
	for _, r := range []Request{{"dalle", 512, 512, 30, 1}, {"sdxl", 0, 512, 30, 1}, {"sdxl", 512, 512, 30, 0}} {
		if _, err := Price(r); err == nil {
			t.Errorf("%+v: want error", r)
		}
	}
}
