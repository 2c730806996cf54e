package invokeai

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"slices"
	"testing"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/engine"
)

func encodePNG(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withSources makes req an image-to-image request at strength, with a
// mask repainting the left half when inpaint is set.
func withSources(t *testing.T, req engine.Request, strength float64, inpaint bool) engine.Request {
	t.Helper()
	req.InitImage, req.Strength = encodePNG(t, image.NewNRGBA(image.Rect(0, 0, req.Width, req.Height))), strength
	if inpaint {
		m := image.NewGray(image.Rect(0, 0, req.Width, req.Height))
		for y := range req.Height {
			for x := range req.Width / 2 {
				m.SetGray(x, y, color.Gray{Y: 255})
			}
		}
		req.Mask = encodePNG(t, m)
	}
	return req
}

// edge reports whether g joins from.field to to.field.
func hasEdge(g map[string]any, from, fromField, to, toField string) bool {
	return slices.ContainsFunc(asList(g["edges"]), func(e any) bool {
		src, dst := e.(map[string]any)["source"].(map[string]any), e.(map[string]any)["destination"].(map[string]any)
		return src["node_id"] == from && src["field"] == fromField && dst["node_id"] == to && dst["field"] == toField
	})
}

func imageName(n map[string]any, field string) any {
	ref, _ := n[field].(map[string]any)
	return ref["image_name"]
}

// Each family's image-to-image graph: the init image is uploaded (the
// multipart request checked against openapi.json) as an intermediate,
// encoded into the latents the denoise node starts from at
// denoising_start = 1 - strength, the graph passes the fake's checks, and
// nothing is left behind in InvokeAI.
func TestImageToImageGraphs(t *testing.T) {
	t.Parallel()
	for _, family := range catalog.ModelFamilies() {
		t.Run(family, func(t *testing.T) {
			f := newFake(t)
			req := withSources(t, request(family), 0.6, false)
			img, _, err := render(t, newEngine(t, f, nil), context.Background(), req)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if img.Width != req.Width || img.Height != req.Height {
				t.Errorf("image %dx%d, want %dx%d", img.Width, img.Height, req.Width, req.Height)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.uploads) != 1 || f.uploads[0].category != "general" || !f.uploads[0].intermediate ||
				!bytes.Equal(f.uploads[0].data, req.InitImage) {
				t.Fatalf("uploads %+v, want the init image as a general intermediate", f.uploads)
			}
			g := f.items[1].graph
			nodes := g["nodes"].(map[string]any)
			enc, d, md := nodes[nodeEncode].(map[string]any), nodes[nodeDenoise].(map[string]any), nodes[nodeMetadata].(map[string]any)
			wantEnc := map[string]string{catalog.ModelSD15: "i2l", catalog.ModelSDXL: "i2l", catalog.ModelFlux: "flux_vae_encode"}[family]
			if enc["type"] != wantEnc || imageName(enc, "image") != f.uploads[0].name {
				t.Errorf("encoder %v, want %s of %s", enc, wantEnc, f.uploads[0].name)
			}
			if !hasEdge(g, nodeEncode, "latents", nodeDenoise, "latents") || !hasEdge(g, nodeLoader, "vae", nodeEncode, "vae") {
				t.Error("the encoded init image does not reach the denoise node, or the encoder has no VAE")
			}
			if start, _ := d["denoising_start"].(float64); math.Abs(start-0.4) > 1e-9 {
				t.Errorf("denoising_start %v, want 1 - strength = 0.4", d["denoising_start"])
			}
			if mode, _ := md["generation_mode"].(string); !slices.Contains([]string{"img2img", "sdxl_img2img", "flux_img2img"}, mode) ||
				md["strength"] != 0.6 || md["init_image"] != f.uploads[0].name {
				t.Errorf("metadata %v does not say image-to-image", md)
			}
			if len(f.images) != 0 {
				t.Errorf("left in InvokeAI: %v", f.images)
			}
		})
	}
}

// Each family's inpainting graph adds the mask, uploaded inverted (InvokeAI
// repaints black), as create_gradient_mask's input and the denoise node's
// denoise_mask, and pastes the decoded picture back onto the init image
// through the mask's faded area: the paste-back is the result and carries
// the metadata. The masks and the pre-paste picture are deleted too.
func TestInpaintGraphs(t *testing.T) {
	t.Parallel()
	for _, family := range catalog.ModelFamilies() {
		t.Run(family, func(t *testing.T) {
			f := newFake(t)
			req := withSources(t, request(family), 1, true)
			if _, _, err := render(t, newEngine(t, f, nil), context.Background(), req); err != nil {
				t.Fatalf("Render: %v", err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.uploads) != 2 || f.uploads[1].category != "mask" {
				t.Fatalf("uploads %+v, want the init image and the mask", f.uploads)
			}
			m, err := png.Decode(bytes.NewReader(f.uploads[1].data))
			if err != nil {
				t.Fatal(err)
			}
			if luma := color.GrayModel.Convert(m.At(1, 1)).(color.Gray).Y; luma != 0 {
				t.Errorf("a pixel to repaint was uploaded as %d, want black (InvokeAI repaints black)", luma)
			}
			if luma := color.GrayModel.Convert(m.At(req.Width-1, 1)).(color.Gray).Y; luma != 255 {
				t.Errorf("a pixel to keep was uploaded as %d, want white", luma)
			}
			g := f.items[1].graph
			nodes := g["nodes"].(map[string]any)
			init, mask := f.uploads[0].name, f.uploads[1].name
			gm, paste := nodes[nodeMask].(map[string]any), nodes[nodePaste].(map[string]any)
			if gm["type"] != "create_gradient_mask" || imageName(gm, "mask") != mask || imageName(gm, "image") != init {
				t.Errorf("gradient mask %v, want create_gradient_mask of %s over %s", gm, mask, init)
			}
			if paste["type"] != "invokeai_img_blend" || imageName(paste, "layer_base") != init || paste["is_intermediate"] != false {
				t.Errorf("paste-back %v, want invokeai_img_blend onto %s", paste, init)
			}
			for _, e := range [][4]string{
				{nodeMask, "denoise_mask", nodeDenoise, "denoise_mask"},
				{nodeMask, "expanded_mask_area", nodeMaskFade, "mask"},
				{nodeMaskFade, "image", nodePaste, "mask"},
				{nodeOutput, "image", nodePaste, "layer_upper"},
				{nodeMetadata, "metadata", nodePaste, "metadata"},
				{nodeLoader, "vae", nodeMask, "vae"},
			} {
				if !hasEdge(g, e[0], e[1], e[2], e[3]) {
					t.Errorf("no edge %s.%s -> %s.%s", e[0], e[1], e[2], e[3])
				}
			}
			if hasEdge(g, nodeMetadata, "metadata", nodeOutput, "metadata") || nodes[nodeOutput].(map[string]any)["is_intermediate"] != true {
				t.Error("the pre-paste picture is kept as a result")
			}
			if unet := hasEdge(g, nodeLoader, "unet", nodeMask, "unet"); unet == (family == catalog.ModelFlux) {
				t.Errorf("%s: unet edge to the gradient mask %v", family, unet)
			}
			if len(f.images) != 0 {
				t.Errorf("left in InvokeAI: %v", f.images)
			}
		})
	}
}

// The uploaded pictures are deleted when the render fails too; a request
// InvokeAI could never render is refused before anything is uploaded.
func TestSourcesAreCleanedUpAndChecked(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(f *fakeInvoke) { f.failType, f.failMsg = "RuntimeError", "boom" })
	req := withSources(t, request(catalog.ModelSDXL), 0.5, true)
	if _, _, err := render(t, newEngine(t, f, nil), context.Background(), req); err == nil {
		t.Fatal("a failed item rendered")
	}
	f.mu.Lock()
	if len(f.uploads) != 2 || len(f.images) != 0 {
		t.Errorf("uploads %d, left %v: want both uploaded and deleted", len(f.uploads), f.images)
	}
	f.mu.Unlock()

	f = newFake(t)
	e := newEngine(t, f, nil)
	for name, change := range map[string]func(*engine.Request){
		"strength above 1":        func(r *engine.Request) { r.Strength = 1.2 },
		"mask without init image": func(r *engine.Request) { r.InitImage = nil },
		"raw graph":               func(r *engine.Request) { r.Graph = []byte(`{"nodes":{}}`) },
	} {
		req := withSources(t, request(catalog.ModelSD15), 0.5, true)
		change(&req)
		if _, _, err := render(t, e, context.Background(), req); !errors.Is(err, engine.ErrInvalidRequest) {
			t.Errorf("%s: %v, want ErrInvalidRequest", name, err)
		}
	}
	if n := f.callCount("POST /api/v1/images/upload"); n != 0 {
		t.Errorf("%d uploads for refused requests", n)
	}
}

// The upload checks catch mistakes: a missing query parameter, a file
// part under another name, a file that does not say it is an image.
func TestUploadValidatorCatchesMistakes(t *testing.T) {
	t.Parallel()
	a := loadSpec(t)
	form := func(name, contentType string) (*bytes.Buffer, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+name+`"; filename="a.png"`)
		h.Set("Content-Type", contentType)
		pw, _ := mw.CreatePart(h)
		_, _ = pw.Write([]byte("\x89PNG"))
		_ = mw.Close()
		return &buf, mw.FormDataContentType()
	}
	for name, c := range map[string]struct {
		query, part, contentType string
		ok                       bool
	}{
		"valid":              {"image_category=general&is_intermediate=true", "file", "image/png", true},
		"no category":        {"is_intermediate=true", "file", "image/png", false},
		"unknown category":   {"image_category=photos&is_intermediate=true", "file", "image/png", false},
		"file under another": {"image_category=general&is_intermediate=true", "image", "image/png", false},
		"not an image type":  {"image_category=general&is_intermediate=true", "file", "application/octet-stream", false},
	} {
		body, ct := form(c.part, c.contentType)
		r := httptest.NewRequest(http.MethodPost, "/api/v1/images/upload?"+c.query, nil)
		r.Header.Set("Content-Type", ct)
		if errs := a.checkRequest(r, body.Bytes()); (len(errs) == 0) != c.ok {
			t.Errorf("%s: errors %v, want ok=%v", name, errs, c.ok)
		}
	}
}
