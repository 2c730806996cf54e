package invokeai

// fakeInvoke is a protocol test server for the engine: it answers the
// routes the engine uses as InvokeAI documents them (openapi.json and
// shared/invokeai/README.md), runs queue items through pending ->
// in_progress -> completed/failed/canceled, speaks socket.io v5 over
// engine.io v4 at /ws/socket.io/, and validates every request against
// openapi.json and every event it emits against the event schemas.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

var errSocketRefused = errors.New("socket.io connect refused: no valid token")

type socketMode int

const (
	socketOK     socketMode = iota
	socketRefuse            // /ws/socket.io/ answers 503: the engine must poll
	socketDrop              // connections close when the first progress event is due
)

type fakeModel struct {
	Key, Hash, Name, Base, Type, Format, Variant string
}

type fakeItem struct {
	id          int
	status      string
	batchID     string
	sessionID   string
	destination any // string or nil, as sent
	graph       map[string]any
	errType     string
	errMsg      string
	results     map[string]any
	history     []string
	created     string
	started     any
	completed   any
	canceled    chan struct{}
	hang        bool
	// cancelRequested guards canceled against a second close.
	cancelRequested bool
}

// fakeUpload is an image the engine uploaded.
type fakeUpload struct {
	name, category string
	intermediate   bool
	data           []byte
}

type fakeInvoke struct {
	t   *testing.T
	api *openAPI
	srv *httptest.Server
	mux *http.ServeMux

	// Behaviour; set through newFake's options.
	socket        socketMode
	pingInterval  time.Duration
	pingTimeout   time.Duration
	queueDelay    time.Duration // time pending before in_progress
	stepDelay     time.Duration
	hang          bool // stay in_progress until canceled
	failType      string
	failMsg       string
	enqueueStatus int // answer enqueue_batch with this status instead
	// multiuser turns on InvokeAI 6.12+'s multi-user mode: every route but
	// the version, auth status and login needs a bearer token, and so does
	// the socket.io connect packet.
	multiuser        bool
	email, password  string
	tokenTTL         time.Duration
	tokens           map[string]time.Time // token -> expiry
	logins, refusals int

	mu         sync.Mutex
	models     []fakeModel
	items      map[int]*fakeItem
	nextID     int
	images     map[string][]byte
	deleted    []string
	uploads    []fakeUpload
	calls      map[string]int
	cancels    []int
	graphs     []map[string]any
	conns      map[*websocket.Conn]bool
	pongMisses int
	dropped    bool

	started chan int
	closed  chan struct{}
	wg      sync.WaitGroup
}

// newFake starts a fake; opts set its behaviour before it serves anything.
func newFake(t *testing.T, opts ...func(*fakeInvoke)) *fakeInvoke {
	t.Helper()
	f := &fakeInvoke{t: t, api: loadSpec(t), items: map[int]*fakeItem{}, images: map[string][]byte{},
		calls: map[string]int{}, conns: map[*websocket.Conn]bool{}, started: make(chan int, 16),
		closed: make(chan struct{}), pingInterval: 25 * time.Second, pingTimeout: 20 * time.Second,
		models: []fakeModel{
			// Names as InvokeAI 6.x gives them: a Hugging Face diffusers
			// install takes the repository's name, a starter model its
			// starter name (invokeai/backend/model_manager/starter_models.py).
			{"k-sd15", "h-sd15", "stable-diffusion-v1-5", "sd-1", "main", "diffusers", "normal"},
			// Sorts before the SDXL base model: the default name must win.
			{"k-jugg", "h-jugg", "Juggernaut XL v9", "sdxl", "main", "diffusers", "normal"},
			{"k-sdxl", "h-sdxl", "stable-diffusion-xl-base-1.0", "sdxl", "main", "diffusers", "normal"},
			{"k-flux", "h-flux", "FLUX.1 schnell (quantized)", "flux", "main", "bnb_quantized_nf4b", "schnell"},
			{"k-t5", "h-t5", "t5_bnb_int8_quantized_encoder", "any", "t5_encoder", "bnb_quantized_int8b", ""},
			// Sorts first but is CLIP-G: FLUX must get the CLIP-L below.
			{"k-clipg", "h-clipg", "a-clip-vit-bigG", "any", "clip_embed", "diffusers", "gigantic"},
			{"k-clipl", "h-clipl", "clip-vit-large-patch14", "any", "clip_embed", "diffusers", "large"},
			{"k-fluxvae", "h-fluxvae", "FLUX.1-schnell_ae", "flux", "vae", "checkpoint", ""},
		}}
	for _, o := range opts {
		o(f)
	}
	f.routes()
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.close)
	return f
}

func (f *fakeInvoke) close() {
	close(f.closed)
	f.mu.Lock()
	for c := range f.conns {
		_ = c.CloseNow()
	}
	f.mu.Unlock()
	f.srv.Close()
	f.wg.Wait()
}

func (f *fakeInvoke) routes() {
	f.mux = http.NewServeMux()
	f.mux.HandleFunc("GET /api/v2/models/{$}", f.listModels)
	f.mux.HandleFunc("POST /api/v1/auth/login", f.login)
	f.mux.HandleFunc("POST /api/v1/queue/{queue}/enqueue_batch", f.enqueue)
	f.mux.HandleFunc("GET /api/v1/queue/{queue}/i/{id}", f.getItem)
	f.mux.HandleFunc("PUT /api/v1/queue/{queue}/i/{id}/cancel", f.cancelItem)
	f.mux.HandleFunc("PUT /api/v1/queue/{queue}/cancel_by_destination", f.cancelByDestination)
	f.mux.HandleFunc("POST /api/v1/images/upload", f.uploadImage)
	f.mux.HandleFunc("GET /api/v1/images/i/{name}/full", f.getImage)
	f.mux.HandleFunc("DELETE /api/v1/images/i/{name}", f.deleteImage)
	f.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	})
}

// ServeHTTP validates the request against openapi.json before routing it.
func (f *fakeInvoke) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/ws/") {
		f.count("socket.io")
		f.serveSocket(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	_, pattern := f.mux.Handler(r)
	f.count(pattern)
	if errs := f.api.checkRequest(r, body); len(errs) > 0 {
		f.t.Errorf("%s %s does not follow openapi.json:\n  %s", r.Method, r.URL, strings.Join(errs, "\n  "))
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": errs})
		return
	}
	if !f.checkAuth(w, r) {
		return
	}
	if q := r.PathValue("queue"); q != "" && q != DefaultQueueID {
		f.t.Errorf("%s %s: queue %q, want %q", r.Method, r.URL, q, DefaultQueueID)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.mux.ServeHTTP(w, r)
}

// publicPaths answer without a token in multi-user mode.
var publicPaths = map[string]bool{"/api/v1/app/version": true, "/api/v1/auth/status": true, "/api/v1/auth/login": true}

// checkAuth answers 401 as InvokeAI's auth dependency does when multi-user
// mode is on and the request has no valid, unexpired token.
func (f *fakeInvoke) checkAuth(w http.ResponseWriter, r *http.Request) bool {
	if !f.multiuser || publicPaths[r.URL.Path] {
		return true
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok && f.validToken(token) {
		return true
	}
	f.mu.Lock()
	f.refusals++
	f.mu.Unlock()
	w.Header().Set("WWW-Authenticate", "Bearer")
	writeJSON(w, http.StatusUnauthorized, map[string]any{"detail": "Invalid or expired authentication token"})
	return false
}

func (f *fakeInvoke) validToken(token string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	exp, ok := f.tokens[token]
	return ok && time.Now().Before(exp)
}

// issueToken makes a JWT-shaped token (header.claims.signature) whose exp
// claim says when it expires, as InvokeAI's token service does.
func (f *fakeInvoke) issueToken(ttl time.Duration) string {
	exp := time.Now().Add(ttl)
	claims, _ := json.Marshal(map[string]any{"user_id": "u-1", "email": f.email, "is_admin": true, "exp": exp.Unix()})
	f.mu.Lock()
	defer f.mu.Unlock()
	token := fmt.Sprintf("eyJhbGciOiJIUzI1NiJ9.%s.sig%d", base64.RawURLEncoding.EncodeToString(claims), len(f.tokens))
	if f.tokens == nil {
		f.tokens = map[string]time.Time{}
	}
	f.tokens[token] = exp
	return token
}

func (f *fakeInvoke) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Email, Password string
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	if !f.multiuser {
		writeJSON(w, http.StatusForbidden, map[string]any{"detail": "Multiuser mode is disabled"})
		return
	}
	if body.Email != f.email || body.Password != f.password {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"detail": "Incorrect email or password"})
		return
	}
	f.mu.Lock()
	f.logins++
	f.mu.Unlock()
	now := time.Now().UTC().Format(time.RFC3339)
	f.answer(w, "LoginResponse", map[string]any{"token": f.issueToken(f.tokenTTL), "expires_in": int(f.tokenTTL.Seconds()),
		"user": map[string]any{"user_id": "u-1", "email": f.email, "is_admin": true, "is_active": true,
			"created_at": now, "updated_at": now}})
}

// reinstall gives an installed model a new key, as InvokeAI does when a
// model is removed and installed again.
func (f *fakeInvoke) reinstall(key, newKey string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.models {
		if f.models[i].Key == key {
			f.models[i].Key = newKey
		}
	}
}

func (f *fakeInvoke) count(key string) {
	f.mu.Lock()
	f.calls[key]++
	f.mu.Unlock()
}

func (f *fakeInvoke) callCount(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeInvoke) listModels(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	bases, typ, name := q["base_models"], q.Get("model_type"), q.Get("model_name")
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []any{}
	for _, m := range f.models {
		if (len(bases) == 0 || slices.Contains(bases, m.Base)) && (typ == "" || typ == m.Type) && (name == "" || name == m.Name) {
			out = append(out, map[string]any{"key": m.Key, "hash": m.Hash, "name": m.Name, "base": m.Base,
				"type": m.Type, "format": m.Format, "variant": m.Variant, "path": "/models/" + m.Name,
				"description": nil, "source": m.Name, "source_type": "path", "file_size": 1})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"models": out})
}

func (f *fakeInvoke) enqueue(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Batch map[string]any `json:"batch"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.t.Errorf("enqueue body: %v", err)
		return
	}
	graph, _ := body.Batch["graph"].(map[string]any)
	if errs := f.api.checkGraph(graph); len(errs) > 0 {
		f.t.Errorf("enqueued graph is not valid for InvokeAI:\n  %s", strings.Join(errs, "\n  "))
	}
	if missing := f.missingImages(graph); len(missing) > 0 {
		f.t.Errorf("enqueued graph names images InvokeAI does not have: %v", missing)
	}
	if f.enqueueStatus != 0 {
		writeJSON(w, f.enqueueStatus, map[string]any{"detail": []any{map[string]any{
			"loc": []any{"body", "batch", "graph"}, "msg": "injected failure", "type": "value_error"}}})
		return
	}
	it := f.addItem(graph, body.Batch["destination"])
	body.Batch["batch_id"] = it.batchID
	f.answer(w, "EnqueueBatchResult", map[string]any{"queue_id": DefaultQueueID, "enqueued": 1, "requested": 1,
		"batch": body.Batch, "priority": 0, "item_ids": []int{it.id}})
}

// addItem queues an item and starts running it; hang keeps it in
// progress until canceled.
func (f *fakeInvoke) addItem(graph map[string]any, destination any, hang ...bool) *fakeItem {
	f.mu.Lock()
	f.nextID++
	now := time.Now().UTC().Format(time.RFC3339Nano)
	it := &fakeItem{id: f.nextID, status: "pending", batchID: fmt.Sprintf("batch-%d", f.nextID),
		sessionID: fmt.Sprintf("session-%d", f.nextID), destination: destination, graph: graph,
		results: map[string]any{}, history: []string{}, created: now, canceled: make(chan struct{}), hang: f.hang || slices.Contains(hang, true)}
	f.items[it.id] = it
	f.graphs = append(f.graphs, graph)
	f.mu.Unlock()
	f.wg.Add(1)
	go f.run(it)
	return it
}

func (f *fakeInvoke) item(w http.ResponseWriter, r *http.Request) *fakeItem {
	id, _ := strconv.Atoi(r.PathValue("id"))
	f.mu.Lock()
	it := f.items[id]
	f.mu.Unlock()
	if it == nil {
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Queue item not found"})
	}
	return it
}

func (f *fakeInvoke) getItem(w http.ResponseWriter, r *http.Request) {
	if it := f.item(w, r); it != nil {
		f.answer(w, "SessionQueueItem", f.queueItemJSON(it))
	}
}

// answer writes a 200 JSON answer after checking it against the schema
// InvokeAI documents for it, which keeps the fake honest.
func (f *fakeInvoke) answer(w http.ResponseWriter, schema string, body any) {
	f.answerStatus(w, http.StatusOK, schema, body)
}

func (f *fakeInvoke) answerStatus(w http.ResponseWriter, status int, schema string, body any) {
	raw, err := json.Marshal(body)
	if err != nil {
		f.t.Errorf("encode %s: %v", schema, err)
	}
	var v any
	_ = json.Unmarshal(raw, &v)
	if err := f.api.validate(component(schema), v); err != nil {
		f.t.Errorf("fake answers an invalid %s: %v", schema, err)
	}
	writeJSON(w, status, json.RawMessage(raw))
}

func (f *fakeInvoke) cancelItem(w http.ResponseWriter, r *http.Request) {
	it := f.item(w, r)
	if it == nil {
		return
	}
	f.mu.Lock()
	f.cancels = append(f.cancels, it.id)
	f.mu.Unlock()
	f.cancel(it)
	f.answer(w, "SessionQueueItem", f.queueItemJSON(it))
}

func (f *fakeInvoke) cancelByDestination(w http.ResponseWriter, r *http.Request) {
	dest := r.URL.Query().Get("destination")
	var hit []*fakeItem
	f.mu.Lock()
	for _, it := range f.items {
		if it.destination == dest && (it.status == "pending" || it.status == "in_progress") {
			hit = append(hit, it)
		}
	}
	f.mu.Unlock()
	for _, it := range hit {
		f.cancel(it)
	}
	f.answer(w, "CancelByDestinationResult", map[string]any{"canceled": len(hit)})
}

// cancel moves a live item to canceled.
func (f *fakeInvoke) cancel(it *fakeItem) {
	f.mu.Lock()
	live := !it.cancelRequested && (it.status == "pending" || it.status == "in_progress")
	if live {
		it.cancelRequested = true
		close(it.canceled)
	}
	f.mu.Unlock()
	if live {
		f.transition(it, "canceled", "", "")
	}
}

// uploadImage stores the file of POST /api/v1/images/upload (the request
// has been validated against openapi.json) and answers its ImageDTO.
func (f *fakeInvoke) uploadImage(w http.ResponseWriter, r *http.Request) {
	file, _, err := r.FormFile("file")
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": err.Error()})
		return
	}
	data, _ := io.ReadAll(file)
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]any{"detail": "Failed to read image"})
		return
	}
	q := r.URL.Query()
	f.mu.Lock()
	name := fmt.Sprintf("upload-%d.png", len(f.uploads)+1)
	f.uploads = append(f.uploads, fakeUpload{name: name, category: q.Get("image_category"),
		intermediate: q.Get("is_intermediate") == "true", data: data})
	f.images[name] = data
	f.mu.Unlock()
	now := time.Now().UTC().Format(time.RFC3339)
	f.answerStatus(w, http.StatusCreated, "ImageDTO", map[string]any{"image_name": name, "image_url": "api/v1/images/i/" + name + "/full",
		"thumbnail_url": "api/v1/images/i/" + name + "/thumbnail", "image_origin": "external",
		"image_category": q.Get("image_category"), "width": cfg.Width, "height": cfg.Height, "created_at": now,
		"updated_at": now, "is_intermediate": q.Get("is_intermediate") == "true", "starred": false, "has_workflow": false})
}

// missingImages lists the image names a graph's nodes refer to that the
// fake does not hold: InvokeAI would fail such an item at run time.
func (f *fakeInvoke) missingImages(g map[string]any) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var missing []string
	nodes, _ := g["nodes"].(map[string]any)
	for _, n := range nodes {
		for _, v := range n.(map[string]any) {
			ref, _ := v.(map[string]any)
			if name, ok := ref["image_name"].(string); ok && f.images[name] == nil {
				missing = append(missing, name)
			}
		}
	}
	return missing
}

func (f *fakeInvoke) getImage(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	data, ok := f.images[r.PathValue("name")]
	f.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Image not found"})
		return
	}
	w.Header().Set("Content-Type", "image/png")
	_, _ = w.Write(data)
}

func (f *fakeInvoke) deleteImage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f.mu.Lock()
	delete(f.images, name)
	f.deleted = append(f.deleted, name)
	f.mu.Unlock()
	f.answer(w, "DeleteImagesResult", map[string]any{"affected_boards": []string{}, "deleted_images": []string{name}})
}

// run drives an item through its life as InvokeAI's session processor
// would, emitting the events a subscribed client sees.
func (f *fakeInvoke) run(it *fakeItem) {
	defer f.wg.Done()
	if !f.wait(it, f.queueDelay) {
		return
	}
	f.transition(it, "in_progress", "", "")
	select {
	case f.started <- it.id:
	default:
	}
	denoise, steps := denoiseNode(it.graph)
	switch key := f.unknownModelKey(it.graph); {
	case key != "":
		f.fail(it, denoise, "UnknownModelException", "unknown model: "+key)
		return
	case f.failType != "":
		f.fail(it, denoise, f.failType, f.failMsg)
		return
	case it.hang:
		f.wait(it, time.Hour)
		return
	}
	for s := 1; s <= steps; s++ {
		if !f.wait(it, f.stepDelay) {
			return
		}
		// Like InvokeAI, a progress image on some steps only (here: even ones).
		var img any
		if s%2 == 0 {
			img = map[string]any{"width": 16, "height": 16, "dataURL": fmt.Sprintf("data:image/png;base64,step%d", s)}
		}
		f.emitInvocation(it, "invocation_progress", denoise, map[string]any{"message": "Denoising",
			"percentage": float64(s) / float64(steps), "image": img, "device": "cuda"})
	}
	f.complete(it, denoise)
}

// wait sleeps d unless the item is canceled or the server closes first.
func (f *fakeInvoke) wait(it *fakeItem, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-it.canceled:
	case <-f.closed:
	}
	return false
}

// denoiseNode finds the denoise node and its step count.
func denoiseNode(g map[string]any) (string, int) {
	for id, n := range g["nodes"].(map[string]any) {
		nm := n.(map[string]any)
		switch nm["type"] {
		case "denoise_latents":
			return id, int(nm["steps"].(float64))
		case "flux_denoise":
			return id, int(nm["num_steps"].(float64))
		}
	}
	return "", 1
}

// unknownModelKey returns a model key the graph uses that is not installed
// (or whose identity does not match the install), as InvokeAI fails at run
// time, not at enqueue.
func (f *fakeInvoke) unknownModelKey(g map[string]any) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range g["nodes"].(map[string]any) {
		for _, field := range []string{"model", "t5_encoder_model", "clip_embed_model", "vae_model"} {
			m, ok := n.(map[string]any)[field].(map[string]any)
			if !ok {
				continue
			}
			if !slices.ContainsFunc(f.models, func(fm fakeModel) bool {
				return fm.Key == m["key"] && fm.Hash == m["hash"] && fm.Name == m["name"] && fm.Base == m["base"] && fm.Type == m["type"]
			}) {
				return fmt.Sprint(m["key"])
			}
		}
	}
	return ""
}

func (f *fakeInvoke) fail(it *fakeItem, node, typ, msg string) {
	f.emitInvocation(it, "invocation_error", node, map[string]any{"error_type": typ, "error_message": msg,
		"error_traceback": "Traceback (most recent call last): ..."})
	f.transition(it, "failed", typ, msg)
}

// complete stores an image of the graph's size for each node that saves
// one (the output, and an inpainting graph's intermediates) and finishes
// the item.
func (f *fakeInvoke) complete(it *fakeItem, denoise string) {
	out, w, h := outputNode(it.graph)
	name := fmt.Sprintf("image-%d.png", it.id)
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		f.t.Errorf("encode png: %v", err)
	}
	latents := map[string]any{"latents": map[string]any{"latents_name": "latents-" + it.sessionID, "seed": nil},
		"width": w / 8, "height": h / 8, "type": "latents_output", "output_meta": nil}
	img := map[string]any{"image": map[string]any{"image_name": name}, "width": w, "height": h,
		"type": "image_output", "output_meta": nil}
	f.mu.Lock()
	f.images[name] = buf.Bytes()
	for id, n := range it.graph["nodes"].(map[string]any) {
		inter := fmt.Sprintf("intermediate-%d-%s.png", it.id, id)
		switch n.(map[string]any)["type"] {
		case "l2i", "flux_vae_decode", "expand_mask_with_fade", "invokeai_img_blend":
			if id != out {
				it.results["prep-"+id] = map[string]any{"image": map[string]any{"image_name": inter}, "width": w,
					"height": h, "type": "image_output", "output_meta": nil}
				f.images[inter] = buf.Bytes()
			}
		case "create_gradient_mask":
			it.results["prep-"+id] = map[string]any{"denoise_mask": map[string]any{"mask_name": "mask-" + id,
				"masked_latents_name": nil, "gradient": true}, "expanded_mask_area": map[string]any{"image_name": inter},
				"type": "gradient_mask_output", "output_meta": nil}
			f.images[inter] = buf.Bytes()
		}
	}
	for id := range it.graph["nodes"].(map[string]any) {
		if id != out {
			it.history = append(it.history, "prep-"+id)
		}
	}
	sort := slices.Sorted(slices.Values(it.history))
	it.history = append(sort, "prep-"+out)
	it.results["prep-"+denoise] = latents
	it.results["prep-"+out] = img
	f.mu.Unlock()
	f.emitInvocation(it, "invocation_complete", denoise, map[string]any{"result": latents})
	f.emitInvocation(it, "invocation_complete", out, map[string]any{"result": img})
	f.transition(it, "completed", "", "")
}

// outputNode finds the node whose image is the result (the decoder, or
// the paste-back that consumes it), and the image size.
func outputNode(g map[string]any) (string, int, int) {
	consumed := map[string]bool{}
	for _, e := range asList(g["edges"]) {
		src := e.(map[string]any)["source"].(map[string]any)
		if src["field"] == "image" {
			consumed[fmt.Sprint(src["node_id"])] = true
		}
	}
	out, w, h := "", 64, 64
	for id, n := range g["nodes"].(map[string]any) {
		nm := n.(map[string]any)
		switch nm["type"] {
		case "l2i", "flux_vae_decode", "invokeai_img_blend":
			if !consumed[id] {
				out = id
			}
		}
		switch nm["type"] {
		case "noise", "flux_denoise":
			w, h = int(nm["width"].(float64)), int(nm["height"].(float64))
		}
	}
	return out, w, h
}

// transition sets the item's status and emits queue_item_status_changed.
func (f *fakeInvoke) transition(it *fakeItem, status, errType, errMsg string) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	f.mu.Lock()
	it.status, it.errType, it.errMsg = status, errType, errMsg
	if status == "in_progress" {
		it.started = now
	}
	if status == "completed" || status == "failed" || status == "canceled" {
		it.completed = now
	}
	ev := f.itemEvent(it)
	counts := map[string]any{"pending": 0, "in_progress": 0, "waiting": 0, "completed": 0, "failed": 0, "canceled": 0}
	counts[status] = 1
	batch := map[string]any{"queue_id": DefaultQueueID, "batch_id": it.batchID, "origin": "easel",
		"destination": it.destination, "total": 1}
	queue := map[string]any{"queue_id": DefaultQueueID, "item_id": it.id, "batch_id": it.batchID,
		"session_id": it.sessionID, "total": 1}
	for k, v := range counts {
		batch[k], queue[k] = v, v
	}
	f.mu.Unlock()
	for k, v := range map[string]any{"status": status, "status_sequence": nil, "error_type": nilIfEmpty(errType),
		"error_message": nilIfEmpty(errMsg), "error_traceback": nil, "created_at": it.created, "updated_at": now,
		"started_at": it.started, "completed_at": it.completed, "batch_status": batch, "queue_status": queue} {
		ev[k] = v
	}
	f.emit("queue_item_status_changed", ev)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// itemEvent is the common part of queue item events; call with f.mu held.
func (f *fakeInvoke) itemEvent(it *fakeItem) map[string]any {
	return map[string]any{"timestamp": time.Now().Unix(), "queue_id": DefaultQueueID, "item_id": it.id,
		"batch_id": it.batchID, "origin": "easel", "destination": it.destination, "user_id": "system",
		"session_id": it.sessionID}
}

func (f *fakeInvoke) emitInvocation(it *fakeItem, name, node string, extra map[string]any) {
	f.mu.Lock()
	ev := f.itemEvent(it)
	f.mu.Unlock()
	ev["invocation"] = it.graph["nodes"].(map[string]any)[node]
	ev["invocation_source_id"] = node
	for k, v := range extra {
		ev[k] = v
	}
	f.emit(name, ev)
}

var eventSchemas = map[string]string{
	"invocation_progress":       "InvocationProgressEvent",
	"invocation_complete":       "InvocationCompleteEvent",
	"invocation_error":          "InvocationErrorEvent",
	"queue_item_status_changed": "QueueItemStatusChangedEvent",
}

// emit checks the event against its schema (keeping the fake honest) and
// sends it to every subscribed socket.
func (f *fakeInvoke) emit(name string, data map[string]any) {
	raw, _ := json.Marshal([]any{name, data})
	var decoded any
	_ = json.Unmarshal(raw, &decoded)
	if err := f.api.validate(component(eventSchemas[name]), decoded.([]any)[1]); err != nil {
		f.t.Errorf("fake emits an invalid %s: %v", name, err)
	}
	f.mu.Lock()
	if f.socket == socketDrop && name == "invocation_progress" && !f.dropped {
		f.dropped = true
		for c := range f.conns {
			_ = c.CloseNow()
			delete(f.conns, c)
		}
	}
	conns := make([]*websocket.Conn, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.Write(ctx, websocket.MessageText, append([]byte("42"), raw...))
		cancel()
	}
}

// queueItemJSON encodes a SessionQueueItem; encoding under the lock keeps
// the item's maps from changing underneath.
func (f *fakeInvoke) queueItemJSON(it *fakeItem) json.RawMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	prepared, source := map[string]any{}, map[string]any{}
	for id := range it.graph["nodes"].(map[string]any) {
		prepared["prep-"+id] = id
		source[id] = []any{"prep-" + id}
	}
	session := map[string]any{"id": it.sessionID, "graph": it.graph, "execution_graph": it.graph,
		"executed": it.history, "executed_history": it.history, "results": it.results, "errors": map[string]any{},
		"workflow_call_stack": []any{}, "workflow_call_history": []any{},
		"prepared_source_mapping": prepared, "source_prepared_mapping": source}
	raw, err := json.Marshal(map[string]any{"item_id": it.id, "status": it.status, "priority": 0, "batch_id": it.batchID,
		"origin": "easel", "destination": it.destination, "session_id": it.sessionID,
		"error_type": nilIfEmpty(it.errType), "error_message": nilIfEmpty(it.errMsg), "error_traceback": nil,
		"created_at": it.created, "updated_at": it.created, "started_at": it.started,
		"completed_at": it.completed, "queue_id": DefaultQueueID, "user_id": "system", "session": session})
	if err != nil {
		f.t.Errorf("encode queue item: %v", err)
	}
	return raw
}

// serveSocket is the server side of engine.io v4 (websocket transport only)
// and socket.io v5 on the default namespace, as python-socketio speaks it.
func (f *fakeInvoke) serveSocket(w http.ResponseWriter, r *http.Request) {
	if f.socket == socketRefuse {
		http.Error(w, "socket.io disabled in this test", http.StatusServiceUnavailable)
		return
	}
	q := r.URL.Query()
	if r.URL.Path != "/ws/socket.io/" || q.Get("EIO") != "4" || q.Get("transport") != "websocket" {
		f.t.Errorf("socket.io request %s: want /ws/socket.io/?EIO=4&transport=websocket", r.URL)
		http.Error(w, "bad socket.io request", http.StatusBadRequest)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		f.t.Errorf("accept websocket: %v", err)
		return
	}
	defer c.CloseNow()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-f.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := f.socketHandshake(ctx, c); err != nil {
		if !errors.Is(err, errSocketRefused) {
			f.t.Errorf("socket.io handshake: %v", err)
		}
		return
	}
	pong := make(chan struct{}, 1)
	go f.pinger(ctx, c, pong)
	f.socketLoop(ctx, c, pong)
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

func (f *fakeInvoke) socketHandshake(ctx context.Context, c *websocket.Conn) error {
	open := fmt.Sprintf(`0{"sid":"eio-1","upgrades":[],"pingInterval":%d,"pingTimeout":%d,"maxPayload":1000000}`,
		f.pingInterval.Milliseconds(), f.pingTimeout.Milliseconds())
	if err := c.Write(ctx, websocket.MessageText, []byte(open)); err != nil {
		return err
	}
	_, msg, err := c.Read(ctx)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(msg, []byte("40")) {
		return fmt.Errorf("want a CONNECT packet (40), got %q", msg)
	}
	if f.multiuser {
		var auth struct {
			Token string `json:"token"`
		}
		if json.Unmarshal(msg[2:], &auth) != nil || !f.validToken(auth.Token) {
			// python-socketio's CONNECT_ERROR when the connect handler refuses.
			_ = c.Write(ctx, websocket.MessageText, []byte(`44{"message":"Connection rejected by server"}`))
			return errSocketRefused
		}
	}
	return c.Write(ctx, websocket.MessageText, []byte(`40{"sid":"sio-1"}`))
}

// socketLoop handles the client's packets: pongs, disconnect, and the
// subscribe_queue event (acknowledged when the client asked for an ack).
func (f *fakeInvoke) socketLoop(ctx context.Context, c *websocket.Conn, pong chan struct{}) {
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		msg := string(data)
		switch {
		case msg == "3":
			select {
			case pong <- struct{}{}:
			default:
			}
		case strings.HasPrefix(msg, "41"):
			return
		case strings.HasPrefix(msg, "42"):
			f.onClientEvent(ctx, c, msg[2:])
		default:
			f.t.Errorf("unexpected socket.io packet from client: %q", msg)
		}
	}
}

func (f *fakeInvoke) onClientEvent(ctx context.Context, c *websocket.Conn, p string) {
	digits := len(p) - len(strings.TrimLeft(p, "0123456789"))
	ack, payload := p[:digits], p[digits:]
	var ev []json.RawMessage
	if err := json.Unmarshal([]byte(payload), &ev); err != nil || len(ev) != 2 {
		f.t.Errorf("bad socket.io event %q", p)
		return
	}
	var name string
	var sub map[string]any
	_ = json.Unmarshal(ev[0], &name)
	if err := json.Unmarshal(ev[1], &sub); err != nil || name != "subscribe_queue" ||
		len(sub) != 1 || sub["queue_id"] != DefaultQueueID {
		f.t.Errorf("want subscribe_queue {queue_id: %q}, got %s", DefaultQueueID, payload)
		return
	}
	f.mu.Lock()
	if !(f.socket == socketDrop && f.dropped) {
		f.conns[c] = true
	}
	f.mu.Unlock()
	if ack != "" {
		_ = c.Write(ctx, websocket.MessageText, []byte("43"+ack+"[]"))
	}
}

// pinger is engine.io's heartbeat: ping every interval; a client that
// does not pong within the timeout is dropped.
func (f *fakeInvoke) pinger(ctx context.Context, c *websocket.Conn, pong chan struct{}) {
	ticker := time.NewTicker(f.pingInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if c.Write(ctx, websocket.MessageText, []byte("2")) != nil {
			return
		}
		select {
		case <-pong:
		case <-ctx.Done():
			return
		case <-time.After(f.pingTimeout):
			f.mu.Lock()
			f.pongMisses++
			f.mu.Unlock()
			_ = c.CloseNow()
			return
		}
	}
}
