package apiclient_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"
	"sigs.k8s.io/yaml"

	"github.com/easel/easel/api/apitypes"
	"github.com/easel/easel/internal/apiclient"
	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/testenv"
)

// The client is held to the API's contract, api/openapi.yaml: every call it
// makes is a documented operation and a valid request, and every type it
// decodes reads fields the contract's schemas have, with their types.

func init() {
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
}

func loadContract(t *testing.T) *openapi3.T {
	t.Helper()
	y, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = nil // match any host
	return doc
}

// contractGuard checks each /v1 call against the contract: a documented
// operation, a valid request (with a bearer token), and an answer from the
// fake that the real API could give.
type contractGuard struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router

	mu  sync.Mutex
	ops []string // operation ids called
}

func (g *contractGuard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r) // image downloads: the bucket's, not the API's
			return
		}
		route, params, err := g.router.FindRoute(r)
		if err != nil {
			g.t.Errorf("the client calls %s %s, which api/openapi.yaml does not document: %v", r.Method, r.URL.Path, err)
			http.NotFound(w, r)
			return
		}
		g.mu.Lock()
		g.ops = append(g.ops, route.Operation.OperationID)
		g.mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
			Options: &openapi3filter.Options{MultiError: true, AuthenticationFunc: bearerOnly}}
		if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
			g.t.Errorf("the client's %s %s does not match api/openapi.yaml: %v\nbody: %s", r.Method, r.URL.Path, err, body)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		rec.Header().Set("X-Request-Id", uuid.NewString()) // as the API's middleware does
		next.ServeHTTP(rec, r)
		g.checkAnswer(in, rec)
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func bearerOnly(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if !strings.HasPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
		return errors.New("no bearer token")
	}
	return nil
}

// checkAnswer checks the fake's answer, so the client is tested against
// what the API sends; an event stream's events are checked one by one.
func (g *contractGuard) checkAnswer(req *openapi3filter.RequestValidationInput, rec *httptest.ResponseRecorder) {
	stream := strings.HasPrefix(rec.Header().Get("Content-Type"), "text/event-stream")
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: stream}
	err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: req, Status: rec.Code, Header: rec.Header(),
		Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes())), Options: opts})
	if err != nil {
		g.t.Errorf("the fake API's answer to %s %s does not match api/openapi.yaml: %v\nbody: %.600s",
			req.Request.Method, req.Request.URL.Path, err, rec.Body.Bytes())
	}
	if !stream {
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(rec.Body.Bytes()))
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			checkAgainst(g.t, g.doc, "GenerationEvent", []byte(data))
		}
	}
}

func checkAgainst(t *testing.T, doc *openapi3.T, schema string, data []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", schema, err)
	}
	if err := doc.Components.Schemas[schema].Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		t.Errorf("%s does not match api/openapi.yaml: %v\n%.600s", schema, err, data)
	}
}

// TestClientCallsMatchContract: each of the client's calls is an operation
// of the contract, sent as a valid request, and the client reads the
// answers the contract describes.
func TestClientCallsMatchContract(t *testing.T) {
	doc := loadContract(t)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	g := &contractGuard{t: t, doc: doc, router: router}
	srv := fakeAPIWith(g.wrap)
	defer srv.Close()
	c := apiclient.New(srv.URL, "my-token")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seed := uint32(42)
	req := apiclient.GenerateRequest{Prompt: "a lighthouse at dusk", NegativePrompt: "fog", Model: catalog.ModelSDXL,
		Width: 1024, Height: 1024, Steps: 30, CFGScale: 7, Seed: &seed, BatchSize: 2}

	gen, _, err := c.Generate(ctx, req, t.TempDir(), io.Discard)
	if err != nil || gen.Status != catalog.JobCompleted || len(gen.Images) != 2 {
		t.Fatalf("generate: %+v, %v", gen, err)
	}
	if _, err := c.GetGeneration(ctx, gen.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Credits(ctx); err != nil {
		t.Fatal(err)
	}
	// Defaults left out: the request is still valid.
	queued, err := c.CreateGeneration(ctx, apiclient.GenerateRequest{Prompt: "defaults", Model: catalog.ModelSD15,
		Width: 512, Height: 512}, "")
	if err != nil {
		t.Fatal(err)
	}
	if canceled, err := c.CancelGeneration(ctx, queued.ID); err != nil || canceled.Status != catalog.JobCanceling {
		t.Fatalf("cancel: %+v, %v", canceled, err)
	}
	// An upload, then image-to-image from it with the size left to the
	// init image.
	var pic bytes.Buffer
	if err := png.Encode(&pic, image.NewGray(image.Rect(0, 0, 96, 64))); err != nil {
		t.Fatal(err)
	}
	up, err := c.Upload(ctx, "start.png", &pic)
	if err != nil || up.Width != 96 || up.Height != 64 || up.ID == "" {
		t.Fatalf("upload: %+v, %v", up, err)
	}
	strength := 0.6
	if _, err := c.CreateGeneration(ctx, apiclient.GenerateRequest{Prompt: "from a picture", Model: catalog.ModelSD15,
		InitImage: up.ID, Strength: &strength}, ""); err != nil {
		t.Fatal(err)
	}
	// Problems decode into *Problem.
	var p *apiclient.Problem
	if _, err := c.CancelGeneration(ctx, gen.ID); !errors.As(err, &p) || p.Slug() != "already-finished" {
		t.Fatalf("cancel a finished job: %v", err)
	}

	want := []string{"cancelGeneration", "createGeneration", "createUpload", "generationEvents", "getCredits", "getGeneration"}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, op := range want {
		if !slices.Contains(g.ops, op) {
			t.Errorf("the test never called %s; calls: %v", op, g.ops)
		}
	}
}

// TestClientTypesMatchContract: every field the client decodes is a member
// of the contract's schema for it, of a compatible type, and a full
// example of each schema (built with the generated types) decodes.
func TestClientTypesMatchContract(t *testing.T) {
	doc := loadContract(t)
	for _, c := range []struct {
		goType any
		schema string
	}{
		{apiclient.Generation{}, "Generation"},
		{apiclient.Progress{}, "Progress"},
		{apiclient.Progress{}, "GenerationEvent"},
		{apiclient.Image{}, "Image"},
		{apiclient.Price{}, "Price"},
		{apiclient.Links{}, "Links"},
		{apiclient.Credits{}, "Credits"},
		{apiclient.Problem{}, "Problem"},
		{apiclient.GenerateRequest{}, "GenerationRequest"},
		{apiclient.Upload{}, "Upload"},
	} {
		for _, err := range matchType(reflect.TypeOf(c.goType), doc.Components.Schemas[c.schema], c.schema) {
			t.Errorf("apiclient.%s: %v", reflect.TypeOf(c.goType).Name(), err)
		}
	}

	// A job as the contract describes it, built with the generated types.
	now := time.Now().UTC().Truncate(time.Second)
	settled := 6
	jobID := uuid.New()
	example := apitypes.Generation{ID: jobID, Status: apitypes.JobStatusCompleted,
		Params: apitypes.GenerationParams{Prompt: "p", Model: "sdxl", Width: 1024, Height: 1024, Steps: 30, CFGScale: 7,
			Seed: 4294967295, BatchSize: 2},
		Price: apitypes.Price{PerImage: 3, Images: 2, Total: 6, Formula: "f"}, Plan: "pro", GPUTier: "a10g",
		CreditsSettled: &settled, ImagesProduced: 1, ComputeSeconds: 4.2, CreatedAt: now, StartedAt: &now, CompletedAt: &now,
		Progress: &apitypes.Progress{JobID: jobID, State: apitypes.JobStatusCompleted, Progress: 1, Image: 1, Images: 2,
			Step: 30, TotalSteps: 30, UpdatedAt: now},
		Images: []apitypes.Image{{Name: jobID.String() + "_0", GenerationID: jobID, Width: 1024, Height: 1024,
			Seed: 4294967295, Bytes: 1, URL: "https://cdn.example/a.png", DownloadURL: "https://cdn.example/a.png?download=a.png",
			ThumbnailURL: "https://cdn.example/a.webp", CreatedAt: now}},
		Links: apitypes.Links{Self: "/v1/generations/x", Events: "/v1/generations/x/events", Cancel: "/v1/generations/x"}}
	raw, err := json.Marshal(example)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainst(t, doc, "Generation", raw)
	var got apiclient.Generation
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("a job as the contract describes it does not decode: %v", err)
	}
	if got.ID != jobID.String() || got.Status != catalog.JobCompleted || got.CreditsSettled == nil || *got.CreditsSettled != 6 ||
		got.Images[0].Seed != 4294967295 || got.Progress.Step != 30 || got.Params.Width != 1024 || !got.CompletedAt.Equal(now) {
		t.Fatalf("decoded %+v from %s", got, raw)
	}
}

// matchType lists how a Go type the client decodes disagrees with a
// schema: a JSON field the schema does not have, or a kind it does not
// allow. Fields the client leaves out are its own business.
func matchType(typ reflect.Type, ref *openapi3.SchemaRef, at string) []error {
	if ref == nil || ref.Value == nil {
		return []error{fmt.Errorf("%s: no schema", at)}
	}
	s := ref.Value
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	want := func(types ...string) []error {
		for _, ty := range types {
			if s.Type.Includes(ty) {
				return nil
			}
		}
		return []error{fmt.Errorf("%s: Go %s, but the contract says %v", at, typ, s.Type.Slice())}
	}
	switch {
	case typ == reflect.TypeOf(time.Time{}):
		if errs := want("string"); errs != nil {
			return errs
		}
		if s.Format != "date-time" {
			return []error{fmt.Errorf("%s: a time, but the contract's format is %q", at, s.Format)}
		}
		return nil
	case typ == reflect.TypeOf(json.RawMessage{}):
		return nil
	}
	switch typ.Kind() {
	case reflect.String:
		return want("string")
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return want("integer")
	case reflect.Float32, reflect.Float64:
		return want("number", "integer")
	case reflect.Bool:
		return want("boolean")
	case reflect.Slice:
		if errs := want("array"); errs != nil {
			return errs
		}
		return matchType(typ.Elem(), s.Items, at+"[]")
	case reflect.Map:
		return want("object")
	case reflect.Struct:
		if errs := want("object"); errs != nil {
			return errs
		}
		var errs []error
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			prop := s.Properties[name]
			if prop == nil {
				errs = append(errs, fmt.Errorf("%s.%s: the contract has no such field", at, name))
				continue
			}
			errs = append(errs, matchType(f.Type, prop, at+"."+name)...)
		}
		return errs
	}
	return []error{fmt.Errorf("%s: Go %s is not checked", at, typ)}
}
