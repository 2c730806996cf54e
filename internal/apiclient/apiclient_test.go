package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/easel/easel/internal/catalog"
)

const testToken = "tok-123"

// fakeServer emulates Easel's API for one generation job. Tests script the
// event stream and the sequence of statuses GET reports.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	mu          sync.Mutex
	postKeys    []string                      // Idempotency-Key of every POST, in order
	postBodies  []map[string]any              // decoded POST bodies
	postFail    []func(w http.ResponseWriter) // answers for the first POSTs; then 202
	gen         Generation                    // the job's current state
	getStatuses []string                      // statuses successive GETs move the job through; the last repeats
	gets        int
	deletes     int
	downloads   map[string]string // image name -> Authorization header seen
	files       map[string][]byte // image name -> PNG bytes

	// events writes the event stream; nil answers 500.
	events func(w http.ResponseWriter, r *http.Request, flush func())
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, downloads: map[string]string{}, files: map[string][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/generations", f.auth(f.create))
	mux.HandleFunc("GET /v1/generations/{id}", f.auth(f.get))
	mux.HandleFunc("DELETE /v1/generations/{id}", f.auth(f.cancel))
	mux.HandleFunc("GET /v1/generations/{id}/events", f.auth(f.stream))
	mux.HandleFunc("GET /v1/credits", f.auth(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Credits{Available: 90, Held: 10, Granted: 100})
	}))
	mux.HandleFunc("GET /bucket/{name}", f.download)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) client() *Client {
	c := New(f.srv.URL+"/", testToken) // trailing slash must be tolerated
	c.pollInterval = 5 * time.Millisecond
	c.retryBackoff = time.Millisecond
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, status int, slug, title, detail string, extra map[string]any) {
	body := map[string]any{"type": "https://easel.dev/problems/" + slug, "title": title, "status": status, "detail": detail}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (f *fakeServer) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			writeProblem(w, http.StatusUnauthorized, "unauthorized", "Unauthorized", "missing or bad token", nil)
			return
		}
		h(w, r)
	}
}

// addImages gives the job n images whose presigned URLs point at /bucket.
func (f *fakeServer) addImages(n int) {
	for i := range n {
		name := fmt.Sprintf("%s_%d", f.gen.ID, i)
		f.files[name] = append([]byte("\x89PNG\r\n\x1a\n"), fmt.Sprintf("pixels of image %d", i)...)
		f.gen.Images = append(f.gen.Images, Image{Name: name, Width: 64, Height: 64, Seed: uint32(7 + i),
			URL:          f.srv.URL + "/bucket/" + name + "?X-Amz-Signature=secret",
			ThumbnailURL: f.srv.URL + "/bucket/" + name + ".webp?X-Amz-Signature=secret"})
	}
}

func (f *fakeServer) create(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeProblem(w, http.StatusBadRequest, "invalid-request", "Bad Request", err.Error(), nil)
		return
	}
	f.postKeys = append(f.postKeys, r.Header.Get("Idempotency-Key"))
	f.postBodies = append(f.postBodies, body)
	if n := len(f.postKeys); n <= len(f.postFail) {
		f.postFail[n-1](w)
		return
	}
	status := http.StatusAccepted
	if len(f.postKeys) > 1 && f.postKeys[0] == r.Header.Get("Idempotency-Key") {
		status = http.StatusOK // replay of a key already seen
	}
	writeJSON(w, status, f.gen)
}

func (f *fakeServer) get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.PathValue("id") != f.gen.ID {
		writeProblem(w, http.StatusNotFound, "not-found", "Not Found", "no generation "+r.PathValue("id"), nil)
		return
	}
	if len(f.getStatuses) > 0 {
		f.gen.Status = f.getStatuses[min(f.gets, len(f.getStatuses)-1)]
	}
	f.gets++
	writeJSON(w, http.StatusOK, f.gen)
}

func (f *fakeServer) cancel(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes++
	f.gen.Status = catalog.JobCanceled
	writeJSON(w, http.StatusAccepted, f.gen)
}

func (f *fakeServer) stream(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	events := f.events
	f.mu.Unlock()
	if events == nil {
		writeProblem(w, http.StatusInternalServerError, "internal", "Internal Server Error", "no stream", nil)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	fl.Flush()
	events(w, r, fl.Flush)
}

func (f *fakeServer) download(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := r.PathValue("name")
	b, ok := f.files[name]
	if !ok || r.URL.Query().Get("X-Amz-Signature") != "secret" {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "<Error><Code>AccessDenied</Code></Error>")
		return
	}
	f.downloads[name] = r.Header.Get("Authorization")
	w.Header().Set("Content-Type", "image/png")
	w.Write(b)
}

// sendStatus writes one progress event the way the server does.
func sendStatus(w io.Writer, p Progress) {
	b, _ := json.Marshal(p)
	fmt.Fprintf(w, "event: status\ndata: %s\n\n", b)
}

func newJob(id string, batch int) Generation {
	return Generation{
		ID: id, Status: catalog.JobQueued,
		Params: GenerateRequest{Prompt: "a red fox", Model: catalog.ModelSD15, Width: 512, Height: 512, Steps: 2,
			CFGScale: 7.5, BatchSize: batch},
		Price:       Price{PerImage: 1, Images: batch, Total: batch, Formula: "f"},
		CreditsHeld: batch,
		CreatedAt:   time.Now().UTC().Truncate(time.Second),
		Links: Links{Self: "/v1/generations/" + id, Events: "/v1/generations/" + id + "/events",
			Cancel: "/v1/generations/" + id},
	}
}

func testRequest(batch int) GenerateRequest {
	return GenerateRequest{Prompt: "a red fox", Model: catalog.ModelSD15, Width: 512, Height: 512, Steps: 2, CFGScale: 7.5,
		BatchSize: batch}
}

func TestGenerateEndToEnd(t *testing.T) {
	f := newFakeServer(t)
	f.gen = newJob("job-1", 2)
	f.addImages(2)
	f.getStatuses = []string{catalog.JobCompleted}
	f.events = func(w http.ResponseWriter, r *http.Request, flush func()) {
		io.WriteString(w, ": keep-alive\n\n")
		for i := range 2 {
			for s := 1; s <= 2; s++ {
				sendStatus(w, Progress{JobID: "job-1", State: catalog.JobRunning, Progress: (float64(i) + float64(s)/2) / 2,
					Image: i, Images: 2, Step: s, TotalSteps: 2})
				flush()
			}
		}
		sendStatus(w, Progress{JobID: "job-1", State: catalog.JobCompleted, Progress: 1, Image: 2, Images: 2})
		flush()
		// A real server closes here; staying open proves the client stops
		// reading at the terminal event on its own.
		<-r.Context().Done()
	}
	dir := filepath.Join(t.TempDir(), "out")
	var out bytes.Buffer
	gen, paths, err := f.client().Generate(context.Background(), testRequest(2), dir, &out)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if gen.Status != catalog.JobCompleted || gen.ID != "job-1" || len(gen.Images) != 2 {
		t.Fatalf("final generation = %+v", gen)
	}
	if len(paths) != 2 {
		t.Fatalf("paths = %v", paths)
	}
	for i, p := range paths {
		name := fmt.Sprintf("job-1_%d", i)
		if p != filepath.Join(dir, name+".png") {
			t.Errorf("path %d = %s", i, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, f.files[name]) {
			t.Errorf("%s holds %q, want %q", p, b, f.files[name])
		}
		if auth, ok := f.downloads[name]; !ok || auth != "" {
			t.Errorf("download of %s: seen=%v Authorization=%q, want no auth header", name, ok, auth)
		}
	}
	if len(f.postBodies) != 1 {
		t.Fatalf("%d POSTs, want 1", len(f.postBodies))
	}
	body := f.postBodies[0]
	if _, ok := body["seed"]; ok {
		t.Errorf("nil seed was sent: %v", body)
	}
	if _, ok := body["negative_prompt"]; ok {
		t.Errorf("empty negative_prompt was sent: %v", body)
	}
	if body["prompt"] != "a red fox" || body["model"] != catalog.ModelSD15 || body["batch_size"] != 2.0 || body["cfg_scale"] != 7.5 {
		t.Errorf("POST body = %v", body)
	}
	if f.postKeys[0] == "" {
		t.Error("no Idempotency-Key sent")
	}
	log := out.String()
	for _, want := range []string{"image 1/2 step 1/2", "image 2/2 step 1/2", "100% completed"} {
		if !strings.Contains(log, want) {
			t.Errorf("progress output lacks %q:\n%s", want, log)
		}
	}
}

func TestGenerateSendsSeedWhenSet(t *testing.T) {
	f := newFakeServer(t)
	f.gen = newJob("job-s", 1)
	f.gen.Status = catalog.JobCompleted // a replayed, finished job: nothing to wait for
	req := testRequest(1)
	seed := uint32(0) // zero is a real seed and must not be dropped
	req.Seed = &seed
	req.NegativePrompt = "blurry"
	if _, _, err := f.client().Generate(context.Background(), req, t.TempDir(), nil); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if got := f.postBodies[0]; got["seed"] != 0.0 || got["negative_prompt"] != "blurry" {
		t.Errorf("POST body = %v", got)
	}
}

func TestCreateRetriesWithSameIdempotencyKey(t *testing.T) {
	f := newFakeServer(t)
	f.gen = newJob("job-2", 1)
	f.postFail = []func(http.ResponseWriter){
		func(w http.ResponseWriter) {
			// A dropped connection: the client cannot know whether the
			// job was created, which is what the key is for.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		},
		func(w http.ResponseWriter) {
			writeProblem(w, http.StatusServiceUnavailable, "unavailable", "Service Unavailable", "try again", nil)
		},
	}
	gen, err := f.client().CreateGeneration(context.Background(), testRequest(1), "key-abc")
	if err != nil {
		t.Fatalf("CreateGeneration: %v", err)
	}
	if gen.ID != "job-2" {
		t.Errorf("id = %q", gen.ID)
	}
	if len(f.postKeys) < 3 {
		t.Fatalf("%d POSTs, want at least 3", len(f.postKeys))
	}
	for i, k := range f.postKeys {
		if k != "key-abc" {
			t.Errorf("POST %d Idempotency-Key = %q, want key-abc", i, k)
		}
	}
}

func TestGenerateRetriesWithItsOwnKey(t *testing.T) {
	f := newFakeServer(t)
	f.gen = newJob("job-3", 1)
	f.gen.Status = catalog.JobCompleted
	f.postFail = []func(http.ResponseWriter){func(w http.ResponseWriter) {
		writeProblem(w, http.StatusServiceUnavailable, "unavailable", "Service Unavailable", "try again", nil)
	}}
	if _, _, err := f.client().Generate(context.Background(), testRequest(1), t.TempDir(), nil); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if len(f.postKeys) != 2 || f.postKeys[0] == "" || f.postKeys[0] != f.postKeys[1] {
		t.Fatalf("Idempotency-Keys = %q, want the same non-empty key twice", f.postKeys)
	}
}

func TestCreateGivesUpAfterThreeRetries(t *testing.T) {
	f := newFakeServer(t)
	f.gen = newJob("job-4", 1)
	fail := func(w http.ResponseWriter) {
		writeProblem(w, http.StatusBadGateway, "bad-gateway", "Bad Gateway", "upstream down", nil)
	}
	f.postFail = []func(http.ResponseWriter){fail, fail, fail, fail, fail}
	_, err := f.client().CreateGeneration(context.Background(), testRequest(1), "k")
	var p *Problem
	if !errors.As(err, &p) || p.Status != http.StatusBadGateway {
		t.Fatalf("err = %v, want a 502 *Problem", err)
	}
	if len(f.postKeys) != 4 {
		t.Errorf("%d POSTs, want 4 (1 + 3 retries)", len(f.postKeys))
	}
}

func TestProblemInsufficientCredits(t *testing.T) {
	f := newFakeServer(t)
	f.gen = newJob("job-5", 1)
	f.postFail = []func(http.ResponseWriter){func(w http.ResponseWriter) {
		writeProblem(w, http.StatusPaymentRequired, "insufficient-credits", "Insufficient credits",
			"this generation costs 10 credits; 3 are available", map[string]any{"needed": 10, "available": 3})
	}}
	dir := t.TempDir()
	var out bytes.Buffer
	_, paths, err := f.client().Generate(context.Background(), testRequest(1), dir, &out)
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("err = %v (%T), want *Problem", err, err)
	}
	if p.Status != http.StatusPaymentRequired || p.Type != "https://easel.dev/problems/insufficient-credits" ||
		p.Title != "Insufficient credits" || p.Detail != "this generation costs 10 credits; 3 are available" {
		t.Errorf("problem = %+v", p)
	}
	if p.Slug() != "insufficient-credits" {
		t.Errorf("slug = %q", p.Slug())
	}
	if string(p.Extensions["needed"]) != "10" || string(p.Extensions["available"]) != "3" {
		t.Errorf("extensions = %s", p.Extensions)
	}
	if len(f.postKeys) != 1 {
		t.Errorf("a 402 was retried: %d POSTs", len(f.postKeys))
	}
	if !strings.Contains(err.Error(), "3 are available") {
		t.Errorf("error text %q lacks the detail", err)
	}
	if paths != nil || out.Len() != 0 {
		t.Errorf("paths=%v output=%q, want none", paths, out.String())
	}
}

func TestProblemFromOtherCalls(t *testing.T) {
	f := newFakeServer(t)
	f.gen = newJob("job-6", 1)
	c := f.client()
	ctx := context.Background()

	_, err := c.GetGeneration(ctx, "nope")
	var p *Problem
	if !errors.As(err, &p) || p.Status != http.StatusNotFound || p.Detail != "no generation nope" {
		t.Errorf("GetGeneration(absent) err = %v", err)
	}

	c.Token = "wrong"
	_, err = c.Credits(ctx)
	if !errors.As(err, &p) || p.Status != http.StatusUnauthorized {
		t.Errorf("Credits with bad token err = %v", err)
	}

	c.Token = testToken
	cr, err := c.Credits(ctx)
	if err != nil || cr != (Credits{Available: 90, Held: 10, Granted: 100}) {
		t.Errorf("Credits = %+v, %v", cr, err)
	}

	// A non-problem error body still yields a *Problem, and a presigned
	// URL's signature stays out of the message.
	_, err = c.Download(ctx, f.srv.URL+"/bucket/missing?X-Amz-Signature=secret")
	if !errors.As(err, &p) || p.Status != http.StatusForbidden || !strings.Contains(p.Detail, "AccessDenied") {
		t.Errorf("Download(forbidden) err = %v", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the URL signature: %v", err)
	}
}

func TestReadSSE(t *testing.T) {
	stream := "\uFEFF: keep-alive\n" +
		"\n" + // blank line after a comment: nothing to dispatch
		"event: status\n" +
		"data: {\"state\":\"running\",\n" +
		"data:  \"step\": 3}\n" +
		"id: 1\n" +
		"\n" +
		": another comment\r\n" +
		"data:no-space\r\n" +
		"retry: 1000\r\n" +
		"unknown: field\r\n" +
		"\r\n" +
		"event: ignored-without-data\n" +
		"\n" +
		"data\r" + // field name alone: empty data line
		"data: second\r" +
		"\r" +
		"data: unfinished, dropped at end of stream"
	var got []sseEvent
	err := readSSE(strings.NewReader(stream), nil, func(ev sseEvent) error {
		got = append(got, ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []sseEvent{
		{Type: "status", Data: "{\"state\":\"running\",\n \"step\": 3}", ID: "1"},
		{Type: "message", Data: "no-space", ID: "1"},
		{Type: "message", Data: "\nsecond", ID: "1"},
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("events:\n got %q\nwant %q", got, want)
	}
}

// oneByteReader returns one byte per Read, so that CRLF pairs straddle reads.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

func TestReadSSESplitCRLF(t *testing.T) {
	var got []string
	err := readSSE(oneByteReader{strings.NewReader("data: a\r\ndata: b\r\n\r\n")}, nil, func(ev sseEvent) error {
		got = append(got, ev.Data)
		return nil
	})
	if err != nil || len(got) != 1 || got[0] != "a\nb" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestEventsMultiLineAndTerminal(t *testing.T) {
	f := newFakeServer(t)
	f.gen = newJob("job-7", 1)
	f.events = func(w http.ResponseWriter, r *http.Request, flush func()) {
		io.WriteString(w, ": hi\n\nevent: status\ndata: {\"job_id\":\"job-7\",\ndata: \"state\":\"running\",\"step\":1,\"total_steps\":2}\n\n")
		io.WriteString(w, "event: other\ndata: {\"state\":\"completed\"}\n\n") // not a status event
		sendStatus(w, Progress{JobID: "job-7", State: catalog.JobCanceled})
		sendStatus(w, Progress{JobID: "job-7", State: catalog.JobRunning}) // after terminal: never read
		flush()
	}
	var got []Progress
	if err := f.client().Events(context.Background(), "job-7", func(p Progress) { got = append(got, p) }); err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(got) != 2 || got[0].State != catalog.JobRunning || got[0].Step != 1 || got[0].TotalSteps != 2 ||
		got[0].JobID != "job-7" || got[1].State != catalog.JobCanceled {
		t.Fatalf("progress = %+v", got)
	}
}

func TestEventsStreamEnds(t *testing.T) {
	f := newFakeServer(t)
	f.gen = newJob("job-8", 1)
	f.events = func(w http.ResponseWriter, r *http.Request, flush func()) {
		sendStatus(w, Progress{JobID: "job-8", State: catalog.JobRunning})
	}
	err := f.client().Events(context.Background(), "job-8", nil)
	if !errors.Is(err, ErrStreamEnded) {
		t.Fatalf("err = %v, want ErrStreamEnded", err)
	}

	// A stream that stays silent counts as ended too.
	f.events = func(w http.ResponseWriter, r *http.Request, flush func()) { <-r.Context().Done() }
	c := f.client()
	c.streamIdle = 20 * time.Millisecond
	if err := c.Events(context.Background(), "job-8", nil); !errors.Is(err, ErrStreamEnded) {
		t.Fatalf("silent stream err = %v, want ErrStreamEnded", err)
	}
}

func TestGenerateFallsBackToPolling(t *testing.T) {
	f := newFakeServer(t)
	f.gen = newJob("job-9", 1)
	f.addImages(1)
	// The first GET runs after the stream drops; the job finishes two
	// polls later.
	f.getStatuses = []string{catalog.JobRunning, catalog.JobRunning, catalog.JobCompleted}
	f.events = func(w http.ResponseWriter, r *http.Request, flush func()) {
		sendStatus(w, Progress{JobID: "job-9", State: catalog.JobRunning, Progress: 0.5, Images: 1, Step: 1, TotalSteps: 2})
		flush()
		// Returning mid-job drops the stream without a terminal event.
	}
	dir := t.TempDir()
	gen, paths, err := f.client().Generate(context.Background(), testRequest(1), dir, nil)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if gen.Status != catalog.JobCompleted || f.gets != 3 {
		t.Errorf("status %s after %d GETs, want completed after 3", gen.Status, f.gets)
	}
	if len(paths) != 1 {
		t.Fatalf("paths = %v", paths)
	}
	if b, _ := os.ReadFile(paths[0]); !bytes.Equal(b, f.files["job-9_0"]) {
		t.Errorf("image content = %q", b)
	}

	// A stream the server refuses outright is survived the same way.
	f.mu.Lock()
	f.events = nil
	f.gets = 0
	f.gen.Status = catalog.JobQueued
	f.mu.Unlock()
	if _, _, err := f.client().Generate(context.Background(), testRequest(1), t.TempDir(), nil); err != nil {
		t.Fatalf("Generate without stream: %v", err)
	}
}

func TestGenerateFailedJob(t *testing.T) {
	f := newFakeServer(t)
	f.gen = newJob("job-10", 2)
	f.addImages(1) // one image made before the failure, already charged
	f.gen.Error = "GPU out of memory"
	f.getStatuses = []string{catalog.JobFailed}
	f.events = func(w http.ResponseWriter, r *http.Request, flush func()) {
		sendStatus(w, Progress{JobID: "job-10", State: catalog.JobFailed, Message: "GPU out of memory"})
	}
	gen, paths, err := f.client().Generate(context.Background(), testRequest(2), t.TempDir(), nil)
	var je *JobError
	if !errors.As(err, &je) || je.Status != catalog.JobFailed || je.Message != "GPU out of memory" || je.ID != "job-10" {
		t.Fatalf("err = %v, want *JobError with the server's text", err)
	}
	if !strings.Contains(err.Error(), "GPU out of memory") {
		t.Errorf("error text = %q", err)
	}
	if gen.Status != catalog.JobFailed || len(paths) != 1 {
		t.Errorf("status %s, paths %v: want failed with the one image saved", gen.Status, paths)
	}
}

func TestGenerateCancelsOnContextCancel(t *testing.T) {
	f := newFakeServer(t)
	f.gen = newJob("job-11", 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.events = func(w http.ResponseWriter, r *http.Request, flush func()) {
		sendStatus(w, Progress{JobID: "job-11", State: catalog.JobRunning, Progress: 0.1, Images: 1, Step: 1, TotalSteps: 10})
		flush()
		cancel() // the user presses Ctrl-C mid-job
		<-r.Context().Done()
	}
	start := time.Now()
	gen, paths, err := f.client().Generate(ctx, testRequest(1), t.TempDir(), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("Generate took %s to give up", time.Since(start))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deletes != 1 {
		t.Fatalf("%d DELETEs, want 1", f.deletes)
	}
	if gen.Status != catalog.JobCanceled || paths != nil {
		t.Errorf("gen status %s, paths %v", gen.Status, paths)
	}
}

func TestCancelGeneration(t *testing.T) {
	f := newFakeServer(t)
	f.gen = newJob("job-12", 1)
	gen, err := f.client().CancelGeneration(context.Background(), "job-12")
	if err != nil || gen.Status != catalog.JobCanceled || f.deletes != 1 {
		t.Fatalf("CancelGeneration = %+v, %v (deletes %d)", gen, err, f.deletes)
	}
}

func TestSaveImageRejectsUnsafeNames(t *testing.T) {
	f := newFakeServer(t)
	for _, name := range []string{"../evil", "a/b", "..", ""} {
		if _, err := f.client().saveImage(context.Background(), Image{Name: name, URL: f.srv.URL + "/bucket/x"}, t.TempDir()); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
}
