package apiclient_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/easel/easel/internal/pricing"
)

// fakeAPI stands in for an Easel API server in the examples: it answers the
// calls the client makes with the JSON the real API sends (api/views.go),
// for a user who holds 100 credits and token "my-token". Every job renders
// at once: its event stream reports three steps, then completion.
func fakeAPI() *httptest.Server { return fakeAPIWith(nil) }

// fakeAPIWith is fakeAPI with wrap (when not nil) around its handler.
func fakeAPIWith(wrap func(http.Handler) http.Handler) *httptest.Server {
	f := &fakeServer{available: 100, jobs: map[string]*fakeJob{}, uploads: map[string]image.Point{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/generations", f.auth(f.create))
	mux.HandleFunc("GET /v1/generations/{id}", f.auth(f.get))
	mux.HandleFunc("DELETE /v1/generations/{id}", f.auth(f.cancel))
	mux.HandleFunc("GET /v1/generations/{id}/events", f.auth(f.events))
	mux.HandleFunc("GET /v1/credits", f.auth(f.credits))
	mux.HandleFunc("POST /v1/uploads", f.auth(f.upload))
	mux.HandleFunc("GET /bucket/{key}", f.download)
	var h http.Handler = mux
	if wrap != nil {
		h = wrap(mux)
	}
	f.srv = httptest.NewServer(h)
	return f.srv
}

// fakeNow is the fake server's clock, fixed so the examples' output is too.
var fakeNow = time.Date(2025, 1, 6, 12, 0, 0, 0, time.UTC)

type fakeServer struct {
	srv *httptest.Server

	mu        sync.Mutex
	available int // credits neither spent nor held
	held      int
	jobs      map[string]*fakeJob
	uploads   map[string]image.Point // sizes by upload id
}

type fakeJob struct {
	id     string
	req    map[string]any // params as submitted, with the server's defaults
	price  pricing.Quote
	status string
}

func (f *fakeServer) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer my-token" {
			writeProblem(w, http.StatusUnauthorized, "unauthorized", "Unauthorized", "missing or invalid token", nil)
			return
		}
		h(w, r)
	}
}

// create admits a job and holds its price, or refuses it as the API does
// when the balance is short.
func (f *fakeServer) create(w http.ResponseWriter, r *http.Request) {
	req := map[string]any{"steps": 30.0, "batch_size": 1.0, "cfg_scale": 7.0, "seed": 1234.0}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeProblem(w, http.StatusBadRequest, "invalid-request", "Invalid request", err.Error(), nil)
		return
	}
	num := func(k string) int { n, _ := req[k].(float64); return int(n) }
	model, _ := req["model"].(string)
	f.mu.Lock()
	size, fromInit := f.uploads[fmt.Sprint(req["init_image"])]
	f.mu.Unlock()
	if _, ok := req["width"]; !ok {
		// As the real API: the init image's size, else the model's native one.
		switch {
		case fromInit:
			req["width"], req["height"] = float64(size.X), float64(size.Y)
		case model == "sd-1.5":
			req["width"], req["height"] = 512.0, 512.0
		default:
			req["width"], req["height"] = 1024.0, 1024.0
		}
	}
	price, err := pricing.Price(pricing.Request{Model: model, Width: num("width"), Height: num("height"),
		Steps: num("steps"), BatchSize: num("batch_size")})
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "invalid-request", "Invalid request", err.Error(), nil)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if price.Total > f.available {
		writeProblem(w, http.StatusPaymentRequired, "insufficient-credits", "Insufficient credits",
			fmt.Sprintf("this generation needs %d credits and %d are available", price.Total, f.available),
			map[string]any{"credits_needed": price.Total, "credits_available": f.available})
		return
	}
	f.available -= price.Total
	f.held += price.Total
	j := &fakeJob{id: fmt.Sprintf("0c6e5a52-8d1f-4c3b-9a7e-%012d", len(f.jobs)+1), req: req, price: price,
		status: "queued"}
	f.jobs[j.id] = j
	w.Header().Set("Location", "/v1/generations/"+j.id)
	writeJSON(w, http.StatusAccepted, f.view(j))
}

func (f *fakeServer) get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[r.PathValue("id")]
	if !ok {
		writeProblem(w, http.StatusNotFound, "not-found", "Not found", "generation not found", nil)
		return
	}
	f.complete(j) // it rendered while nobody watched
	writeJSON(w, http.StatusOK, f.view(j))
}

// cancel stops a job that has not finished, as the API does: 202 with the
// job in canceling, 409 once it has ended.
func (f *fakeServer) cancel(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[r.PathValue("id")]
	switch {
	case !ok:
		writeProblem(w, http.StatusNotFound, "not-found", "Not found", "generation not found", nil)
	case j.status == "completed" || j.status == "canceled":
		writeProblem(w, http.StatusConflict, "already-finished", "Generation already finished",
			"the generation is "+j.status+" and can no longer be canceled", map[string]any{"generation_status": j.status})
	default:
		j.status = "canceling"
		writeJSON(w, http.StatusAccepted, f.view(j))
	}
}

// events streams the job's progress as the API relays it from the workers.
func (f *fakeServer) events(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[r.PathValue("id")]
	if !ok {
		writeProblem(w, http.StatusNotFound, "not-found", "Not found", "generation not found", nil)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	steps, images := int(j.req["steps"].(float64)), j.price.Images
	for _, step := range []int{steps / 3, 2 * steps / 3, steps} {
		writeEvent(w, map[string]any{"job_id": j.id, "state": "running", "progress": float64(step) / float64(steps),
			"image": 0, "images": images, "step": step, "total_steps": steps, "updated_at": fakeNow})
	}
	f.complete(j)
	writeEvent(w, map[string]any{"job_id": j.id, "state": "completed", "progress": 1, "image": images,
		"images": images, "step": steps, "total_steps": steps, "updated_at": fakeNow, "generation": f.view(j)})
}

func (f *fakeServer) credits(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"available": f.available, "held": f.held, "granted": 100,
		"grants": []any{map[string]any{"id": "b1d4f0a2-6c55-4d8e-8f3a-2e9c7b1a0d44", "source": "signup", "total": 100,
			"used": 100 - f.available - f.held, "valid_from": fakeNow, "valid_until": fakeNow.AddDate(0, 1, 0)}},
		"pricing": pricing.Formula})
}

// fakePNG is every image the fake server renders: one grey pixel.
var fakePNG = func() []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1)))
	return b.Bytes()
}()

// download serves an image's presigned URL.
func (f *fakeServer) download(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "image/png")
	_, _ = w.Write(fakePNG)
}

// complete ends j and settles its hold. The caller holds f.mu.
func (f *fakeServer) complete(j *fakeJob) {
	switch j.status {
	case "completed", "canceled":
		return
	case "canceling": // the hold goes back
		j.status = "canceled"
		f.available += j.price.Total
	default:
		j.status = "completed"
	}
	f.held -= j.price.Total
}

// view is j as GenerationView shows it. The caller holds f.mu.
func (f *fakeServer) view(j *fakeJob) map[string]any {
	self := "/v1/generations/" + j.id
	v := map[string]any{"id": j.id, "status": j.status, "params": j.req, "price": j.price, "plan": "free",
		"gpu_tier": "t4", "credits_held": j.price.Total, "credits_settled": nil, "images_produced": 0, "images_kept": 0,
		"compute_seconds": 0, "images": []any{}, "created_at": fakeNow, "started_at": nil, "completed_at": nil,
		"links": map[string]string{"self": self, "events": self + "/events", "cancel": self}}
	if j.status != "completed" {
		return v
	}
	var images []any
	for i := range j.price.Images {
		name := fmt.Sprintf("%s_%d", j.id, i)
		images = append(images, map[string]any{"name": name, "generation_id": j.id, "width": j.req["width"],
			"height": j.req["height"], "seed": 1234 + i, "bytes": len(fakePNG), "starred": false,
			"url":           f.srv.URL + "/bucket/" + name + ".png?X-Amz-Signature=example",
			"download_url":  f.srv.URL + "/bucket/" + name + ".png?response-content-disposition=attachment&X-Amz-Signature=example",
			"thumbnail_url": f.srv.URL + "/bucket/" + name + ".webp?X-Amz-Signature=example", "created_at": fakeNow})
	}
	v["images"], v["images_produced"], v["images_kept"], v["credits_held"] = images, len(images), len(images), 0
	v["credits_settled"], v["compute_seconds"] = j.price.Total, 4.2
	v["started_at"], v["completed_at"] = fakeNow, fakeNow.Add(5*time.Second)
	return v
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeProblem answers as the API's problem(): RFC 9457 problem+json.
func writeProblem(w http.ResponseWriter, status int, slug, title, detail string, extra map[string]any) {
	body := map[string]any{"type": "https://easel.dev/problems/" + slug, "title": title, "status": status,
		"detail": detail}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// writeEvent sends one Server-Sent Event as the API's writeEvent does.
func writeEvent(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	_, _ = fmt.Fprintf(w, "event: status\ndata: %s\n\n", b)
	w.(http.Flusher).Flush()
}

// upload stores nothing: it reads the picture's size and answers as the
// real API does.
func (f *fakeServer) upload(w http.ResponseWriter, r *http.Request) {
	file, _, err := r.FormFile("file")
	if err != nil {
		writeProblem(w, http.StatusBadRequest, "invalid-request", "Invalid request", err.Error(), nil)
		return
	}
	defer file.Close()
	cfg, _, err := image.DecodeConfig(file)
	if err != nil {
		writeProblem(w, http.StatusUnsupportedMediaType, "unsupported-image-type", "Unsupported image type", err.Error(), nil)
		return
	}
	f.mu.Lock()
	id := fmt.Sprintf("5d2b7e11-3c4a-4f6b-8e9d-%012d", len(f.uploads)+1)
	f.uploads[id] = image.Pt(cfg.Width, cfg.Height)
	f.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "width": cfg.Width, "height": cfg.Height,
		"bytes": 1234, "url": f.srv.URL + "/bucket/upload-" + id + ".png", "created_at": fakeNow})
}
