package api_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"testing"

	"github.com/gen2brain/webp"
	"github.com/google/uuid"

	"github.com/easel/easel/api"
)

// picture is a test image whose pixels vary in x and y, so that a picture
// derived from it can be told apart from an unrelated one.
func picture(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(x * 255 / w), G: uint8(y * 255 / h), B: uint8(255 - x*255/w), A: 255})
		}
	}
	return img
}

func pngBytes(t *testing.T, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// multipartFile builds a multipart/form-data body with one part per
// (name, filename, content type, data) quadruple.
func multipartFile(t *testing.T, parts ...any) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+3 < len(parts); i += 4 {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="`+parts[i].(string)+`"; filename="`+parts[i+1].(string)+`"`)
		h.Set("Content-Type", parts[i+2].(string))
		pw, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pw.Write(parts[i+3].([]byte)); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// upload sends data as the "file" part, under a name and declared type
// the server must not trust.
func (s *stack) upload(t *testing.T, token, filename, contentType string, data []byte) response {
	t.Helper()
	body, ct := multipartFile(t, "file", filename, contentType, data)
	return s.do(t, http.MethodPost, "/v1/uploads", token, body, "Content-Type", ct)
}

// uploaded uploads a PNG of img and returns the upload.
func (s *stack) uploaded(t *testing.T, token string, img image.Image) api.UploadView {
	t.Helper()
	r := s.upload(t, token, "in.png", "image/png", pngBytes(t, img))
	if r.status != http.StatusCreated {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	var up api.UploadView
	r.decode(t, &up)
	return up
}

// download fetches a presigned URL.
func download(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// PNG, JPEG and WebP pictures are accepted whatever their file names say,
// stored as PNG and served back at their size; the list shows them newest
// first, page by page.
func testUploadFormats(t *testing.T, s *stack) {
	_, token := s.newUser(t, "basic", 0)
	src := picture(96, 64)
	var jpg, wp bytes.Buffer
	if err := jpeg.Encode(&jpg, src, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	if err := webp.Encode(&wp, src, webp.Options{Lossless: true}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range []struct {
		name, filename, declared string
		data                     []byte
	}{
		{"png", "photo.png", "image/png", pngBytes(t, src)},
		// Names and declared types are ignored: the bytes say what it is.
		{"jpeg", "photo.txt", "text/plain", jpg.Bytes()},
		{"webp", "photo.png", "application/octet-stream", wp.Bytes()},
	} {
		r := s.upload(t, token, c.filename, c.declared, c.data)
		if r.status != http.StatusCreated {
			t.Fatalf("%s: %d %s", c.name, r.status, r.body)
		}
		var up api.UploadView
		r.decode(t, &up)
		if _, err := uuid.Parse(up.ID); err != nil || up.Width != 96 || up.Height != 64 || up.Bytes <= 0 ||
			up.URL == "" || up.CreatedAt.IsZero() {
			t.Fatalf("%s: upload %+v", c.name, up)
		}
		status, stored := download(t, up.URL)
		img, err := png.Decode(bytes.NewReader(stored))
		if status != http.StatusOK || err != nil || img.Bounds().Dx() != 96 || int64(len(stored)) != up.Bytes {
			t.Fatalf("%s: stored object %d, %d bytes (want %d), png %v", c.name, status, len(stored), up.Bytes, err)
		}
		var got api.UploadView
		s.do(t, http.MethodGet, "/v1/uploads/"+up.ID, token, nil).decode(t, &got)
		if got.ID != up.ID || got.Bytes != up.Bytes || got.Width != 96 {
			t.Fatalf("%s: GET %+v, want %+v", c.name, got, up)
		}
		ids = append(ids, up.ID)
	}
	var page struct {
		Uploads    []api.UploadView
		NextBefore *string `json:"next_before"`
	}
	s.do(t, http.MethodGet, "/v1/uploads", token, nil).decode(t, &page)
	if len(page.Uploads) != 3 || page.Uploads[0].ID != ids[2] || page.Uploads[2].ID != ids[0] || page.NextBefore != nil {
		t.Fatalf("list %+v, want the three uploads newest first", page)
	}
	var seen []string
	for q := "/v1/uploads?limit=2"; ; {
		page.Uploads, page.NextBefore = nil, nil
		s.do(t, http.MethodGet, q, token, nil).decode(t, &page)
		for _, u := range page.Uploads {
			seen = append(seen, u.ID)
		}
		if page.NextBefore == nil {
			break
		}
		q = "/v1/uploads?limit=2&before=" + *page.NextBefore
	}
	if len(seen) != 3 || seen[0] != ids[2] || seen[2] != ids[0] {
		t.Fatalf("paged list %v, want %v reversed", seen, ids)
	}
}

// What is not a picture, too large a file, too many pixels and malformed
// bodies are refused with problem+json, and nothing is stored.
func testUploadRefusals(t *testing.T, s *stack) {
	u, token := s.newUser(t, "free", 0) // Free: 1024x1024 = 1048576 pixels at most
	for name, c := range map[string]struct {
		data   []byte
		status int
	}{
		"text named .png":     {[]byte("this is not a picture, whatever its name says\n"), http.StatusUnsupportedMediaType},
		"gif":                 {[]byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x00\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"), http.StatusUnsupportedMediaType},
		"broken png":          {pngBytes(t, picture(64, 64))[:60], http.StatusBadRequest},
		"11 MB":               {bytes.Repeat([]byte{0x89}, 11<<20), http.StatusRequestEntityTooLarge},
		"too many pixels":     {pngBytes(t, image.NewGray(image.Rect(0, 0, 1100, 1000))), http.StatusBadRequest},
		"empty file":          {[]byte{}, http.StatusUnsupportedMediaType},
		"10 MiB and one byte": {bytes.Repeat([]byte{0}, 10<<20+1), http.StatusRequestEntityTooLarge},
	} {
		r := s.upload(t, token, "picture.png", "image/png", c.data)
		p := expectProblem(t, r, c.status)
		if name == "too many pixels" && (len(p.Errors) != 1 || p.Errors[0].Field != "file") {
			t.Errorf("%s: problem %+v does not name the file", name, p)
		}
	}
	// A picture of exactly the plan's pixels is fine.
	if r := s.upload(t, token, "p.png", "image/png", pngBytes(t, image.NewGray(image.Rect(0, 0, 2048, 512)))); r.status != http.StatusCreated {
		t.Fatalf("2048x512 on Free: %d %s", r.status, r.body)
	}
	body, ct := multipartFile(t, "file", "a.png", "image/png", pngBytes(t, picture(8, 8)), "caption", "", "text/plain", []byte("hi"))
	expectFieldProblem(t, s.do(t, http.MethodPost, "/v1/uploads", token, body, "Content-Type", ct), "caption")
	body, ct = multipartFile(t, "file", "a.png", "image/png", pngBytes(t, picture(8, 8)), "file", "b.png", "image/png", pngBytes(t, picture(8, 8)))
	expectFieldProblem(t, s.do(t, http.MethodPost, "/v1/uploads", token, body, "Content-Type", ct), "file")
	body, ct = multipartFile(t)
	expectFieldProblem(t, s.do(t, http.MethodPost, "/v1/uploads", token, body, "Content-Type", ct), "file")
	expectProblem(t, s.do(t, http.MethodPost, "/v1/uploads", token, pngBytes(t, picture(8, 8)), "Content-Type", "image/png"),
		http.StatusUnsupportedMediaType)
	expectProblem(t, s.do(t, http.MethodPost, "/v1/uploads", token, "--x\r\nnot a part", "Content-Type", "multipart/form-data; boundary=x"),
		http.StatusBadRequest)

	var list struct{ Uploads []api.UploadView }
	s.do(t, http.MethodGet, "/v1/uploads", token, nil).decode(t, &list)
	if len(list.Uploads) != 1 {
		t.Fatalf("%d uploads stored, want only the one accepted", len(list.Uploads))
	}

	// A full quota refuses the upload, naming the numbers.
	if _, err := s.store.Pool().Exec(context.Background(), `INSERT INTO uploads (id, user_id, s3_key, width, height,
		file_size_bytes, source_format) VALUES (gen_random_uuid(), $1, 'k', 1, 1, $2, 'png')`, u.ID, int64(1<<30)-100); err != nil {
		t.Fatal(err)
	}
	if p := expectProblem(t, s.upload(t, token, "p.png", "image/png", pngBytes(t, picture(64, 64))), http.StatusForbidden); p.Type != "https://easel.dev/problems/storage-full" {
		t.Fatalf("full quota: %+v", p)
	}
}

// An upload counts against the storage quota from the moment it is stored
// and stops counting when deleted; the object leaves the bucket. Another
// user's upload is not found: not listed, not read, not deleted.
func testUploadStorageAndIsolation(t *testing.T, s *stack) {
	ctx := context.Background()
	u, token := s.newUser(t, "basic", 0)
	before, err := s.store.StorageUsed(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	up := s.uploaded(t, token, picture(200, 120))
	after, err := s.store.StorageUsed(ctx, u.ID)
	if err != nil || after != before+up.Bytes {
		t.Fatalf("storage used %d -> %d (%v), want up by the upload's %d bytes", before, after, err, up.Bytes)
	}
	var me struct {
		Storage struct {
			UsedBytes int64 `json:"used_bytes"`
		} `json:"storage"`
	}
	s.do(t, http.MethodGet, "/v1/me", token, nil).decode(t, &me)
	if me.Storage.UsedBytes != after {
		t.Errorf("/v1/me storage %d, want %d", me.Storage.UsedBytes, after)
	}

	_, other := s.newUser(t, "basic", 0)
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		expectProblem(t, s.do(t, method, "/v1/uploads/"+up.ID, other, nil), http.StatusNotFound)
		expectProblem(t, s.do(t, method, "/v1/uploads/"+uuid.NewString(), token, nil), http.StatusNotFound)
		expectProblem(t, s.do(t, method, "/v1/uploads/not-a-uuid", token, nil), http.StatusNotFound)
	}
	var list struct{ Uploads []api.UploadView }
	s.do(t, http.MethodGet, "/v1/uploads", other, nil).decode(t, &list)
	if len(list.Uploads) != 0 {
		t.Fatalf("another user lists %+v", list.Uploads)
	}

	if r := s.do(t, http.MethodDelete, "/v1/uploads/"+up.ID, token, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if got, err := s.store.StorageUsed(ctx, u.ID); err != nil || got != before {
		t.Fatalf("storage used after delete %d (%v), want %d", got, err, before)
	}
	if status, _ := download(t, up.URL); status == http.StatusOK {
		t.Fatal("the object is still served after delete")
	}
	expectProblem(t, s.do(t, http.MethodGet, "/v1/uploads/"+up.ID, token, nil), http.StatusNotFound)
	expectProblem(t, s.do(t, http.MethodDelete, "/v1/uploads/"+up.ID, token, nil), http.StatusNotFound)
}
