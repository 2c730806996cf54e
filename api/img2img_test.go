package api_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/pricing"
)

func luma(c color.Color) float64 {
	r, g, b, _ := c.RGBA()
	return 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b)
}

// correlation is the Pearson correlation of two same-size pictures'
// luminance: near 1 for a picture derived from the other, near 0 for an
// unrelated one.
func correlation(a, b image.Image) float64 {
	var n, sa, sb, saa, sbb, sab float64
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			va, vb := luma(a.At(x, y)), luma(b.At(x, y))
			n++
			sa, sb, saa, sbb, sab = sa+va, sb+vb, saa+va*va, sbb+vb*vb, sab+va*vb
		}
	}
	return (n*sab - sa*sb) / math.Sqrt((n*saa-sa*sa)*(n*sbb-sb*sb))
}

// generate starts a job and waits for it to end.
func (s *stack) generate(t *testing.T, token string, body map[string]any, headers ...string) api.GenerationView {
	t.Helper()
	r := s.do(t, http.MethodPost, "/v1/generations", token, body, headers...)
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var g api.GenerationView
	r.decode(t, &g)
	return s.waitGeneration(t, g.ID, token, terminal)
}

// resultPicture downloads a finished job's first image.
func resultPicture(t *testing.T, g api.GenerationView) image.Image {
	t.Helper()
	if g.Status != catalog.JobCompleted || len(g.Images) == 0 {
		t.Fatalf("job ended %s with %d images: %s", g.Status, len(g.Images), g.Error)
	}
	status, data := download(t, g.Images[0].URL)
	img, err := png.Decode(bytes.NewReader(data))
	if status != http.StatusOK || err != nil {
		t.Fatalf("download result: %d %v", status, err)
	}
	return img
}

// An image-to-image job starts from an upload: it takes the upload's size,
// costs the steps its strength runs, carries its sources in its params and
// its picture is visibly the uploaded one, redrawn. A generated image can
// be the next job's init image. The sources are part of the request's
// fingerprint: the same Idempotency-Key with another strength is 409.
func testImageToImage(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	src := picture(256, 192)
	up := s.uploaded(t, token, src)
	body := map[string]any{"prompt": "a watercolour of the same", "model": "sdxl", "steps": 30,
		"init_image": up.ID, "strength": 0.4, "seed": 7}
	r := s.do(t, http.MethodPost, "/v1/generations", token, body, "Idempotency-Key", "i2i-"+up.ID)
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var g api.GenerationView
	r.decode(t, &g)
	var params struct {
		Width, Height int
		InitImage     string  `json:"init_image"`
		Strength      float64 `json:"strength"`
	}
	if err := json.Unmarshal(g.Params, &params); err != nil || params.Width != 256 || params.Height != 192 ||
		params.InitImage != up.ID || params.Strength != 0.4 {
		t.Fatalf("params %s, want the upload's size, id and strength 0.4", g.Params)
	}
	want, _ := pricing.Price(pricing.Request{Model: "sdxl", Width: 256, Height: 192, Steps: 30, BatchSize: 1,
		InitImage: true, Strength: 0.4})
	if g.Price.PerImage != want.PerImage || g.CreditsHeld != want.Total {
		t.Fatalf("price %+v, held %d; want %+v", g.Price, g.CreditsHeld, want)
	}
	g = s.waitGeneration(t, g.ID, token, terminal)
	out := resultPicture(t, g)
	if out.Bounds() != src.Bounds() {
		t.Fatalf("result is %v, want the upload's %v", out.Bounds(), src.Bounds())
	}
	if c := correlation(out, src); c < 0.6 || c > 0.999 {
		t.Fatalf("result correlates %.3f with the upload: want it derived (> 0.6) yet redrawn", c)
	}
	// Without the init image, the same prompt and seed give an unrelated picture.
	txt := resultPicture(t, s.generate(t, token, map[string]any{"prompt": "a watercolour of the same", "model": "sdxl",
		"steps": 30, "seed": 7, "width": 256, "height": 192}))
	if c := correlation(txt, src); math.Abs(c) > 0.5 {
		t.Fatalf("text-to-image correlates %.3f with the upload: the test cannot tell derived from not", c)
	}

	// A generated image as the next init image.
	next := resultPicture(t, s.generate(t, token, map[string]any{"prompt": "again", "steps": 5, "seed": 11,
		"init_image": g.Images[0].Name, "strength": 0.2}))
	if c := correlation(next, out); next.Bounds() != out.Bounds() || c < 0.6 {
		t.Fatalf("from a generated image: %v, correlation %.3f", next.Bounds(), c)
	}

	// Same key: the same body is the same job, another strength a conflict.
	if r := s.do(t, http.MethodPost, "/v1/generations", token, body, "Idempotency-Key", "i2i-"+up.ID); r.status != http.StatusOK {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	body["strength"] = 0.5
	expectProblem(t, s.do(t, http.MethodPost, "/v1/generations", token, body, "Idempotency-Key", "i2i-"+up.ID), http.StatusConflict)
}

// Image-to-image fields are checked before anything is held: a strength or
// mask without an init image, a strength outside 0..1, a size the plan
// refuses when it is the init image's own; and another user's upload or
// image is refused exactly like one that does not exist.
func testImageToImageRefusals(t *testing.T, s *stack) {
	_, ownerToken := s.newUser(t, "free", 10)
	_, token := s.newUser(t, "basic", 10) // Basic: 1536 pixels a side, 30 requests a minute
	mine := s.uploaded(t, token, picture(64, 64))
	theirs := s.uploaded(t, ownerToken, picture(64, 64))
	theirImage := s.completedJob(t, ownerToken, 1, catalog.ModelSD15).Images[0].Name
	base := func(kv ...any) map[string]any {
		b := map[string]any{"prompt": "p", "steps": 4}
		for i := 0; i+1 < len(kv); i += 2 {
			b[kv[i].(string)] = kv[i+1]
		}
		return b
	}
	post := func(body map[string]any) response {
		return s.do(t, http.MethodPost, "/v1/generations", token, body)
	}
	for name, c := range map[string]struct {
		body  map[string]any
		field string
	}{
		"strength without init image": {base("strength", 0.5), "strength"},
		"strength above 1":            {base("init_image", mine.ID, "strength", 1.5), "strength"},
		"negative strength":           {base("init_image", mine.ID, "strength", -0.1), "strength"},
		"mask without init image":     {base("mask", mine.ID), "mask"},
		"mask not an upload":          {base("init_image", mine.ID, "mask", "x_0"), "mask"},
		"strength not a number":       {base("init_image", mine.ID, "strength", "high"), "strength"},
	} {
		r := post(c.body)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, r.status, r.body)
			continue
		}
		expectFieldProblem(t, r, c.field)
	}

	// Another user's upload or image is answered exactly like a missing id.
	answer := func(body map[string]any) string {
		t.Helper()
		r := post(body)
		var p map[string]any
		r.decode(t, &p)
		delete(p, "request_id")
		b, _ := json.Marshal(p)
		if r.status != http.StatusBadRequest {
			t.Fatalf("%v: %d %s", body, r.status, r.body)
		}
		return string(b)
	}
	missing := answer(base("init_image", uuid.NewString()))
	for name, body := range map[string]map[string]any{
		"their upload":              base("init_image", theirs.ID),
		"their image":               base("init_image", theirImage),
		"no such image":             base("init_image", "nope_0"),
		"an unknown id in capitals": base("init_image", "6C0F3B1A-0000-4000-8000-000000000000"),
	} {
		if got := answer(body); got != missing {
			t.Errorf("%s answers %s, a missing id %s", name, got, missing)
		}
	}
	maskMissing := answer(base("init_image", mine.ID, "mask", uuid.NewString()))
	if got := answer(base("init_image", mine.ID, "mask", theirs.ID)); got != maskMissing {
		t.Errorf("their mask answers %s, a missing one %s", got, maskMissing)
	}

	// The init image's own size must fit the plan; the error says where
	// the size came from. Sending a size scales the picture instead.
	wide := s.uploaded(t, token, image.NewGray(image.Rect(0, 0, 2048, 512)))
	r := post(base("init_image", wide.ID))
	p := expectProblem(t, r, http.StatusBadRequest)
	if len(p.Errors) != 1 || p.Errors[0].Field != "width" || !bytes.Contains(r.body, []byte("init image's, 2048x512")) {
		t.Fatalf("a too-wide init image: %s", r.body)
	}
	g := s.generate(t, token, base("init_image", wide.ID, "width", 512, "height", 128))
	if img := resultPicture(t, g); img.Bounds().Dx() != 512 || img.Bounds().Dy() != 128 {
		t.Fatalf("scaled init image rendered %v", img.Bounds())
	}
	// An odd size is rounded down to the multiple of 8 renders need.
	odd := s.uploaded(t, token, picture(101, 67))
	if img := resultPicture(t, s.generate(t, token, base("init_image", odd.ID))); img.Bounds() != image.Rect(0, 0, 96, 64) {
		t.Fatalf("101x67 init image rendered %v, want 96x64", img.Bounds())
	}
}

// A job whose upload is deleted after admission, before its render reads
// it, fails at once (no retries) and costs nothing.
func testImageToImageSourceDeleted(t *testing.T, s *stack) {
	_, token := s.newUser(t, "basic", 20)
	up := s.uploaded(t, token, picture(128, 128))
	s.stopGPU("t4")
	r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{"prompt": "gone", "steps": 4, "init_image": up.ID})
	if r.status != http.StatusAccepted {
		s.startGPU("t4")
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var g api.GenerationView
	r.decode(t, &g)
	if r := s.do(t, http.MethodDelete, "/v1/uploads/"+up.ID, token, nil); r.status != http.StatusNoContent {
		s.startGPU("t4")
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	s.startGPU("t4")
	g = s.waitGeneration(t, g.ID, token, terminal)
	if g.Status != catalog.JobFailed || !bytes.Contains([]byte(g.Error), []byte("deleted")) {
		t.Fatalf("job ended %s (%q), want failed because its init image was deleted", g.Status, g.Error)
	}
	if c := s.credits(t, token); c.Available != 20 || c.Held != 0 {
		t.Fatalf("credits %+v after the failed job, want all 20 back", c)
	}
}

// Inpainting repaints only the mask's white pixels: every pixel under
// black is exactly the uploaded picture's, and those under white are
// not. A mask of another size than the init image is refused.
func testInpaint(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	src := picture(128, 96)
	mask := image.NewGray(src.Bounds())
	for y := range 96 {
		for x := range 64 {
			mask.SetGray(x, y, color.Gray{Y: 255}) // repaint the left half
		}
	}
	up, m := s.uploaded(t, token, src), s.uploaded(t, token, mask)
	g := s.generate(t, token, map[string]any{"prompt": "a red door", "steps": 8, "init_image": up.ID, "mask": m.ID,
		"strength": 1})
	var params struct {
		Mask string `json:"mask"`
	}
	if err := json.Unmarshal(g.Params, &params); err != nil || params.Mask != m.ID {
		t.Fatalf("params %s do not name the mask", g.Params)
	}
	out := resultPicture(t, g)
	changed := 0
	for y := range 96 {
		for x := range 128 {
			same := color.NRGBAModel.Convert(out.At(x, y)) == src.NRGBAAt(x, y)
			switch {
			case x >= 64 && !same:
				t.Fatalf("unmasked pixel (%d,%d) is %v, the upload's %v", x, y, out.At(x, y), src.At(x, y))
			case x < 64 && !same:
				changed++
			}
		}
	}
	if changed < 64*96*9/10 {
		t.Fatalf("only %d of the %d masked pixels were repainted", changed, 64*96)
	}
	small := s.uploaded(t, token, image.NewGray(image.Rect(0, 0, 64, 48)))
	r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{"prompt": "p", "init_image": up.ID, "mask": small.ID})
	expectFieldProblem(t, r, "mask")
	if !bytes.Contains(r.body, []byte("is 64x48 but init_image is 128x96")) {
		t.Fatalf("mask size problem: %s", r.body)
	}
}
