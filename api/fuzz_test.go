package api

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/picture"
	"github.com/easel/easel/internal/pricing"
	"github.com/easel/easel/internal/store"
)

var fuzzPlan = store.Plan{Name: "Pro", Slug: "pro", MaxResolution: 2048, MaxBatchSize: 8, MaxConcurrentJobs: 4}

// FuzzGenerationRequest feeds arbitrary bodies through the request decoder
// and validator of POST /v1/generations. Whatever the input, the result is
// either a request that satisfies every limit (and has a price) or a 400
// problem+json; never a panic, never anything in between.
func FuzzGenerationRequest(f *testing.F) {
	for _, seed := range []string{
		`{"prompt":"a lighthouse at dusk","model":"sdxl","width":1024,"height":1024,"steps":30,"batch_size":2}`,
		`{"prompt":"x","seed":4294967295,"cfg_scale":7.5}`,
		`{"prompt":"x","seed":-1}`,
		`{"prompt":"x","width":"wide"}`,
		`{"prompt":"x","sampler":"euler"}`,
		`{"prompt":"x"} trailing`,
		`{"prompt":"\u0000\uffff","negative_prompt":"` + strings.Repeat("n", 2001) + `"}`,
		`{"prompt":"a","Prompt":"b"}`, `{"prompt":"a","steps":0}`, "{\"prompt\":\"\xff\"}",
		`[]`, `null`, `{"prompt":1e400}`, `{"width":9223372036854775808}`, ``,
		`{"prompt":"x","init_image":"6c0f3b1a-0000-4000-8000-000000000000","strength":0.5,"mask":"6c0f3b1a-0000-4000-8000-000000000001"}`,
		`{"prompt":"x","init_image":"job_0","strength":1e-300}`, `{"prompt":"x","strength":2}`, `{"prompt":"x","mask":"m"}`,
		`{"prompt":"x","init_image":"a","strength":-0}`, `{"prompt":"x","init_image":"","strength":null}`,
	} {
		f.Add([]byte(seed))
	}
	s := fuzzServer(4096)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req GenerationRequest
		if _, ok := fuzzDecode(t, s, "/v1/generations", body, &req); !ok {
			return
		}
		req.normalize()
		if !fieldErrorsNamed(t, req.validate(fuzzPlan)) {
			return
		}
		assertValid(t, req)
		if !utf8.Valid(body) || strings.ContainsRune(req.Prompt+req.NegativePrompt, 0) {
			t.Fatalf("accepted text Postgres cannot store: %q", body)
		}
	})
}

// fuzzServer is a Server with only what body decoding needs.
func fuzzServer(maxBody int64) *Server {
	gin.SetMode(gin.ReleaseMode)
	return &Server{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxBodyBytes: maxBody}
}

// fuzzDecode posts body as JSON to path and decodes it into dst as the
// handlers do; when decoding refuses it, the answer must be a 400
// problem+json (413 for a body over the limit) and ok is false.
func fuzzDecode(t *testing.T, s *Server, path string, body []byte, dst any) (c *gin.Context, ok bool) {
	t.Helper()
	rec := httptest.NewRecorder()
	c, _ = gin.CreateTestContext(rec)
	c.Request = httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	c.Request.Header.Set("Content-Type", "application/json")
	if !s.decodeJSON(c, dst) {
		assertProblem(t, rec, body, s.MaxBodyBytes)
		return c, false
	}
	return c, true
}

// fieldErrorsNamed reports whether there are no field errors, failing the
// test for one without a name or message.
func fieldErrorsNamed(t *testing.T, errs []FieldError) bool {
	t.Helper()
	for _, e := range errs {
		if e.Field == "" || e.Message == "" {
			t.Fatalf("field error without a name or message: %+v", e)
		}
	}
	return len(errs) == 0
}

func assertProblem(t *testing.T, rec *httptest.ResponseRecorder, body []byte, limit int64) {
	t.Helper()
	want := http.StatusBadRequest
	if int64(len(body)) > limit {
		want = http.StatusRequestEntityTooLarge
	}
	if rec.Code != want || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("body %q: status %d, want %d; content type %q", body, rec.Code, want, rec.Header().Get("Content-Type"))
	}
	var p map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p["type"] == nil || p["status"] != float64(want) {
		t.Fatalf("body %q: problem %s (%v)", body, rec.Body, err)
	}
}

func assertValid(t *testing.T, r GenerationRequest) {
	t.Helper()
	ok := r.Prompt != "" && r.Width >= minSide && r.Width <= fuzzPlan.MaxResolution && r.Width%8 == 0 &&
		r.Height >= minSide && r.Height <= fuzzPlan.MaxResolution && r.Height%8 == 0 &&
		r.Steps >= 1 && r.Steps <= maxSteps && r.BatchSize >= 1 && r.BatchSize <= fuzzPlan.MaxBatchSize &&
		(r.Seed == nil || (*r.Seed >= 0 && *r.Seed <= maxSeed)) &&
		(r.CFGScale == nil || (*r.CFGScale >= 1 && *r.CFGScale <= 30))
	if !ok {
		t.Fatalf("accepted an out-of-range request: %+v", r)
	}
	if r.Strength != nil && (r.InitImage == "" || !(*r.Strength >= 0 && *r.Strength <= 1)) {
		t.Fatalf("accepted strength %v with init_image %q", *r.Strength, r.InitImage)
	}
	if r.Mask != "" && r.InitImage == "" {
		t.Fatalf("accepted a mask without an init image: %+v", r)
	}
	known := false
	for _, m := range catalog.ModelFamilies() {
		known = known || m == r.Model
	}
	if !known {
		t.Fatalf("accepted unknown model %q", r.Model)
	}
	if q, err := pricing.Price(pricing.Request{Model: r.Model, Width: r.Width, Height: r.Height, Steps: r.Steps,
		BatchSize: r.BatchSize}); err != nil || q.Total < r.BatchSize {
		t.Fatalf("accepted request has no sane price: %+v %v", q, err)
	}
}

// FuzzUploadBody feeds arbitrary multipart bodies through the upload
// reader and decoder of POST /v1/uploads. Whatever the input, the result is
// either a PNG within the plan's pixels or a 400, 413 or 415 problem+json;
// never a panic, never anything in between.
func FuzzUploadBody(f *testing.F) {
	part := func(name, data string) string {
		return "--easel\r\nContent-Disposition: form-data; name=\"" + name + "\"; filename=\"p.png\"\r\n" +
			"Content-Type: image/png\r\n\r\n" + data + "\r\n"
	}
	var onePixel bytes.Buffer
	_ = png.Encode(&onePixel, image.NewGray(image.Rect(0, 0, 1, 1)))
	for _, seed := range []string{
		part("file", onePixel.String()) + "--easel--\r\n",
		part("file", "not a picture") + "--easel--\r\n",
		part("file", onePixel.String()) + part("file", onePixel.String()) + "--easel--\r\n",
		part("caption", "x") + part("file", onePixel.String()) + "--easel--\r\n",
		part("file", onePixel.String()[:20]) + "--easel--\r\n",
		part("file", "\x89PNG\r\n\x1a\n") + "--easel--\r\n",
		part("file", "RIFF\x00\x00\x00\x00WEBPVP8 ") + "--easel--\r\n",
		part("file", "\xff\xd8\xff\xe0") + "--easel--\r\n",
		"--easel--\r\n", "--easel\r\n", "", "--other\r\n\r\n--other--",
	} {
		f.Add([]byte(seed))
	}
	gin.SetMode(gin.ReleaseMode)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		c.Request = httptest.NewRequest(http.MethodPost, "/v1/uploads", bytes.NewReader(body))
		c.Request.Header.Set("Content-Type", "multipart/form-data; boundary=easel")
		data, ok := readUploadFile(c)
		if ok {
			var pic picture.PNG
			if pic, ok = decodeUpload(c, data, fuzzPlan); ok {
				img, err := png.Decode(bytes.NewReader(pic.Data))
				if err != nil || img.Bounds().Dx() != pic.Width || img.Bounds().Dy() != pic.Height ||
					pic.Width*pic.Height > maxPixels(fuzzPlan) {
					t.Fatalf("accepted %q as a %dx%d PNG that is not one (%v)", body, pic.Width, pic.Height, err)
				}
				return
			}
		}
		switch rec.Code {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		default:
			t.Fatalf("body %q: status %d", body, rec.Code)
		}
		var p map[string]any
		if rec.Header().Get("Content-Type") != "application/problem+json" ||
			json.Unmarshal(rec.Body.Bytes(), &p) != nil || p["status"] != float64(rec.Code) {
			t.Fatalf("body %q: not a problem: %s", body, rec.Body)
		}
	})
}
