package main

import (
	"bytes"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/easel/easel/internal/apiclient"
)

// --init-image and --mask that name files are uploaded first and replaced
// by their upload ids; ids pass through; the size is left to the init
// image unless --width or --height is given; a mask needs an init image.
func TestGenerateUploadsItsSources(t *testing.T) {
	var uploads []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, hdr, err := r.FormFile("file")
		if r.URL.Path != "/v1/uploads" || err != nil {
			http.Error(w, "unexpected "+r.URL.Path, http.StatusBadRequest)
			return
		}
		f.Close()
		uploads = append(uploads, hdr.Filename)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"up-` + hdr.Filename + `","width":96,"height":64,"bytes":10,"url":"x","created_at":"2026-12-02T00:00:00Z"}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	var pic bytes.Buffer
	_ = png.Encode(&pic, image.NewGray(image.Rect(0, 0, 96, 64)))
	initPath := filepath.Join(dir, "street.png")
	if err := os.WriteFile(initPath, pic.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	c := apiclient.New(srv.URL, "t")

	cmd := generateCommand()
	cmd.SetContext(t.Context())
	if err := cmd.ParseFlags([]string{"--init-image", initPath, "--mask", "6c0f3b1a-0000-4000-8000-000000000001", "--strength", "0.4"}); err != nil {
		t.Fatal(err)
	}
	req := apiclient.GenerateRequest{InitImage: initPath, Mask: "6c0f3b1a-0000-4000-8000-000000000001"}
	var stderr bytes.Buffer
	cmd.SetErr(&stderr)
	if err := sources(cmd, c, &req, 0.4); err != nil {
		t.Fatal(err)
	}
	if req.InitImage != "up-street.png" || req.Mask != "6c0f3b1a-0000-4000-8000-000000000001" || len(uploads) != 1 ||
		req.Width != 0 || req.Height != 0 || req.Strength == nil || *req.Strength != 0.4 {
		t.Fatalf("request %+v after sources (uploads %v)", req, uploads)
	}
	if !strings.Contains(stderr.String(), "uploaded "+initPath) {
		t.Fatalf("stderr %q does not say what was uploaded", stderr.String())
	}

	sized := generateCommand()
	sized.SetContext(t.Context())
	_ = sized.ParseFlags([]string{"--init-image", "job_0", "--width", "768"})
	req = apiclient.GenerateRequest{Width: 768, Height: 512, InitImage: "job_0"}
	if err := sources(sized, c, &req, 0.75); err != nil || req.Width != 768 || req.InitImage != "job_0" || len(uploads) != 1 {
		t.Fatalf("an image name with --width: %+v, %v", req, err)
	}
	if err := sources(generateCommand(), c, &apiclient.GenerateRequest{Mask: "m"}, 0.75); err == nil {
		t.Fatal("--mask without --init-image was accepted")
	}
}

// A refusal names each field by the flag that sets it, and a source that is
// neither known to the server nor a file here says so.
func TestGenerateNamesRefusedFlags(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"type":"https://easel.dev/problems/invalid-request","title":"Invalid request","status":400,
			"detail":"2 field(s) are invalid","errors":[{"field":"width","message":"must be a multiple of 8"},
			{"field":"init_image","message":"names none of your uploads or images"}]}`))
	}))
	defer srv.Close()
	cmd := generateCommand()
	cmd.SetArgs([]string{"--api", srv.URL, "--token", "t", "--prompt", "x", "--width", "100",
		"--init-image", "no-such-street.jpg"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.ExecuteContext(t.Context())
	if err == nil {
		t.Fatal("a refused request did not fail the command")
	}
	for _, want := range []string{"Invalid request: 2 field(s) are invalid", "--width: must be a multiple of 8",
		`--init-image: names none of your uploads or images (and there is no file "no-such-street.jpg" here)`} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
}

// TestGenerateRefusesWhatItWouldChange: a seed beyond 32 bits, or 0 or
// less where the server takes a default only when the field is left out,
// is refused by flag instead of being cut or replaced before sending.
func TestGenerateRefusesWhatItWouldChange(t *testing.T) {
	check := func(args ...string) error {
		cmd := generateCommand()
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		var req apiclient.GenerateRequest
		for name, dst := range map[string]*int{"width": &req.Width, "height": &req.Height, "steps": &req.Steps, "batch": &req.BatchSize} {
			*dst, _ = cmd.Flags().GetInt(name)
		}
		seed, _ := cmd.Flags().GetInt64("seed")
		return checkGenerateFlags(cmd, seed, req)
	}
	err := check("--seed", "99999999999", "--steps", "0", "--batch", "0", "--width", "-8")
	for _, want := range []string{"--seed must be between 0 and 4294967295", "--steps must be at least 1", "--batch must be at least 1", "--width must be at least 1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to contain %q", err, want)
		}
	}
	if err := check("--seed", "-5"); err == nil {
		t.Error("a negative seed was accepted")
	}
	for _, args := range [][]string{nil, {"--seed", "0"}, {"--seed", "4294967295", "--steps", "20", "--width", "768"}} {
		if err := check(args...); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// Arguments that would make a charged generation useless are refused
// before anything reaches the API: an --out that cannot be created or
// written, and --strength (like --mask) without --init-image.
func TestGenerateChecksBeforeSubmitting(t *testing.T) {
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		http.Error(w, "this test submits nothing", http.StatusTeapot)
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", filepath.Join(file, "sub")}, "--out " + filepath.Join(file, "sub")},
		{[]string{"--out", file}, "--out " + file},
		{[]string{"--strength", "0.5"}, "--strength needs --init-image"},
		{[]string{"--mask", "m.png", "--strength", "0.5"}, "--mask needs --init-image"},
	} {
		cmd := generateCommand()
		cmd.SetArgs(append([]string{"--api", srv.URL, "--token", "t", "--prompt", "x", "--out", t.TempDir()}, c.args...))
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		err := cmd.ExecuteContext(t.Context())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
		}
		if requests != 0 {
			t.Fatalf("%v: %d requests reached the API before the refusal", c.args, requests)
		}
	}
	// A folder that does not exist yet is fine: it is created.
	if err := checkOutDir(filepath.Join(t.TempDir(), "new", "images")); err != nil {
		t.Fatal(err)
	}
}
