package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/easel/easel/api"
	"github.com/easel/easel/internal/catalog"
)

// completedJob runs one generation of n images of model for the user to
// the end.
func (s *stack) completedJob(t *testing.T, token string, n int, model string) api.GenerationView {
	t.Helper()
	r := s.do(t, http.MethodPost, "/v1/generations", token, map[string]any{
		"prompt": "keep or delete", "model": model, "width": 256, "height": 256, "steps": 4, "batch_size": n})
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var g api.GenerationView
	r.decode(t, &g)
	if g = s.waitGeneration(t, g.ID, token, terminal); g.Status != catalog.JobCompleted || len(g.Images) != n {
		t.Fatalf("job ended %s with %d images", g.Status, len(g.Images))
	}
	return g
}

// Starring marks an image and the list can show starred ones only;
// deleting removes the picture and its thumbnail from the bucket and the
// image from every list, gives back its storage, and leaves the settled
// credits spent. Another user's image is not found, for both.
func testImageStarAndDelete(t *testing.T, s *stack) {
	u, token := s.newUser(t, "pro", 100)
	g := s.completedJob(t, token, 2, catalog.ModelSD15)
	keep, gone := g.Images[0].Name, g.Images[1].Name
	ctx := context.Background()
	before, err := s.store.StorageUsed(ctx, u.ID)
	if err != nil || before <= 0 {
		t.Fatalf("storage used before = %d, %v", before, err)
	}

	r := s.do(t, http.MethodPatch, "/v1/images/"+keep, token, map[string]any{"starred": true})
	var img api.ImageView
	if r.decode(t, &img); r.status != http.StatusOK || !img.Starred {
		t.Fatalf("star: %d %s", r.status, r.body)
	}
	var list struct{ Images []api.ImageView }
	s.do(t, http.MethodGet, "/v1/images?starred=true", token, nil).decode(t, &list)
	if len(list.Images) != 1 || list.Images[0].Name != keep {
		t.Fatalf("starred images = %+v, want %s only", list.Images, keep)
	}
	for name, body := range map[string]any{"no field": map[string]any{}, "not a bool": map[string]any{"starred": "yes"},
		"unknown field": map[string]any{"starred": true, "pinned": true}} {
		if r := s.do(t, http.MethodPatch, "/v1/images/"+keep, token, body); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	for _, q := range []string{"starred=maybe", "job=nope", "model=dall-e"} {
		if r := s.do(t, http.MethodGet, "/v1/images?"+q, token, nil); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
	// Filters by job and by model: a second job with another model.
	second := s.completedJob(t, token, 1, catalog.ModelSDXL)
	for q, want := range map[string]int{"job=" + g.ID: 2, "job=" + second.ID: 1, "model=sd-1.5": 2, "model=sdxl": 1,
		"model=flux": 0, "job=" + g.ID + "&model=sdxl": 0} {
		list.Images = nil
		s.do(t, http.MethodGet, "/v1/images?"+q, token, nil).decode(t, &list)
		if len(list.Images) != want {
			t.Errorf("images?%s: %d, want %d", q, len(list.Images), want)
		}
	}

	_, other := s.newUser(t, "pro", 0)
	spent := s.credits(t, token).Available
	if r := s.do(t, http.MethodDelete, "/v1/images/"+gone, other, nil); r.status != http.StatusNotFound {
		t.Fatalf("another user's delete: %d %s", r.status, r.body)
	}
	if r := s.do(t, http.MethodPatch, "/v1/images/"+gone, other, map[string]any{"starred": true}); r.status != http.StatusNotFound {
		t.Fatalf("another user's star: %d %s", r.status, r.body)
	}

	img = api.ImageView{}
	s.do(t, http.MethodGet, "/v1/images/"+gone, token, nil).decode(t, &img)
	if before, err = s.store.StorageUsed(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if r := s.do(t, http.MethodDelete, "/v1/images/"+gone, token, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := s.do(t, http.MethodGet, "/v1/images/"+gone, token, nil); r.status != http.StatusNotFound {
		t.Fatalf("deleted image still read: %d", r.status)
	}
	if r := s.do(t, http.MethodDelete, "/v1/images/"+gone, token, nil); r.status != http.StatusNotFound {
		t.Fatalf("second delete: %d", r.status)
	}
	for _, url := range []string{img.URL, img.ThumbnailURL} {
		if resp, err := http.Get(url); err != nil || resp.StatusCode == http.StatusOK {
			t.Fatalf("object still served after delete: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
	}
	list.Images = nil
	s.do(t, http.MethodGet, "/v1/images", token, nil).decode(t, &list)
	if len(list.Images) != 2 || list.Images[1].Name != keep {
		t.Fatalf("images after delete = %+v, want the second job's and %s", list.Images, keep)
	}
	after, err := s.store.StorageUsed(ctx, u.ID)
	if err != nil || after != before-img.Bytes || img.Bytes <= 0 {
		t.Fatalf("storage used %d -> %d, want it down by the image's %d bytes", before, after, img.Bytes)
	}
	if got := s.credits(t, token).Available; got != spent {
		t.Fatalf("available credits %d after delete, want %d: settled credits stay spent", got, spent)
	}
	s.checkKept(t, token, map[string][2]int{g.ID: {2, 1}, second.ID: {1, 1}})
	if r := s.do(t, http.MethodDelete, "/v1/images/"+second.Images[0].Name, token, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete the second job's image: %d %s", r.status, r.body)
	}
	s.checkKept(t, token, map[string][2]int{g.ID: {2, 1}, second.ID: {1, 0}})
}

// checkKept checks, in the user's job list and in each job's own answer,
// how many images each job produced and how many the user still has.
func (s *stack) checkKept(t *testing.T, token string, want map[string][2]int) {
	t.Helper()
	var list struct{ Generations []api.GenerationView }
	s.do(t, http.MethodGet, "/v1/generations", token, nil).decode(t, &list)
	seen := 0
	for _, g := range list.Generations {
		w, ok := want[g.ID]
		if !ok {
			continue
		}
		seen++
		if g.ImagesProduced != w[0] || g.ImagesKept != w[1] {
			t.Errorf("job %s listed with %d produced, %d kept; want %d, %d", g.ID, g.ImagesProduced, g.ImagesKept, w[0], w[1])
		}
		var one api.GenerationView
		s.do(t, http.MethodGet, "/v1/generations/"+g.ID, token, nil).decode(t, &one)
		if one.ImagesKept != w[1] || len(one.Images) != w[1] {
			t.Errorf("job %s read with %d kept, %d images; want %d", g.ID, one.ImagesKept, len(one.Images), w[1])
		}
	}
	if seen != len(want) {
		t.Fatalf("listed %d of the %d jobs", seen, len(want))
	}
}

// A bulk delete removes the caller's named images (objects and rows) and
// lists the rest as not found, another user's among them; repeating it
// deletes nothing more. Bad lists are refused whole.
func testImageBulkDelete(t *testing.T, s *stack) {
	u, token := s.newUser(t, "pro", 100)
	g := s.completedJob(t, token, 3, catalog.ModelSD15)
	_, otherToken := s.newUser(t, "pro", 100)
	theirs := s.completedJob(t, otherToken, 1, catalog.ModelSD15).Images[0].Name
	ctx := context.Background()
	var urls []string
	for _, img := range g.Images[:2] {
		urls = append(urls, img.URL, img.ThumbnailURL)
	}
	names := []string{g.Images[0].Name, g.Images[1].Name, g.Images[1].Name, theirs, "no-such-image"}

	for name, body := range map[string]any{"empty": map[string]any{"names": []string{}}, "missing": map[string]any{},
		"blank name": map[string]any{"names": []string{" "}}, "too many": map[string]any{"names": make([]string, 101)}} {
		if r := s.do(t, http.MethodPost, "/v1/images/bulk-delete", token, body); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	before, _ := s.store.StorageUsed(ctx, u.ID)
	r := s.do(t, http.MethodPost, "/v1/images/bulk-delete", token, map[string]any{"names": names})
	var res api.BulkDeleted
	if r.decode(t, &res); r.status != http.StatusOK {
		t.Fatalf("bulk delete: %d %s", r.status, r.body)
	}
	if len(res.Deleted) != 2 || len(res.NotFound) != 2 || res.NotFound[0] != theirs {
		t.Fatalf("bulk delete answered %+v; want 2 deleted, %s and no-such-image not found", res, theirs)
	}
	for _, url := range urls {
		if resp, err := http.Get(url); err != nil || resp.StatusCode == http.StatusOK {
			t.Fatalf("object still served after bulk delete: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
	}
	after, _ := s.store.StorageUsed(ctx, u.ID)
	if after != before-g.Images[0].Bytes-g.Images[1].Bytes || after <= 0 {
		t.Fatalf("storage used %d -> %d; want it down by the two images' bytes", before, after)
	}
	if r := s.do(t, http.MethodGet, "/v1/images/"+theirs, otherToken, nil); r.status != http.StatusOK {
		t.Fatalf("the other user's image after my bulk delete: %d", r.status)
	}
	r = s.do(t, http.MethodPost, "/v1/images/bulk-delete", token, map[string]any{"names": names[:2]})
	res = api.BulkDeleted{}
	if r.decode(t, &res); r.status != http.StatusOK || len(res.Deleted) != 0 || len(res.NotFound) != 2 {
		t.Fatalf("repeated bulk delete: %d %+v", r.status, res)
	}
}

// An image's download_url makes a browser save the PNG: the bucket answers
// it with Content-Disposition: attachment and the image's file name, and
// the same bytes as url, which shows the picture inline.
func testImageDownload(t *testing.T, s *stack) {
	_, token := s.newUser(t, "pro", 100)
	g := s.completedJob(t, token, 1, catalog.ModelSD15)
	var img api.ImageView
	s.do(t, http.MethodGet, "/v1/images/"+g.Images[0].Name, token, nil).decode(t, &img)
	if img.DownloadURL == "" || img.DownloadURL == img.URL {
		t.Fatalf("download_url %q beside url %q", img.DownloadURL, img.URL)
	}

	shown, shownHeader := getObject(t, img.URL)
	saved, savedHeader := getObject(t, img.DownloadURL)
	want := `attachment; filename="` + img.Name + `.png"`
	if got := savedHeader.Get("Content-Disposition"); got != want {
		t.Errorf("download_url answers Content-Disposition %q, want %q", got, want)
	}
	if got := shownHeader.Get("Content-Disposition"); strings.HasPrefix(got, "attachment") {
		t.Errorf("url answers Content-Disposition %q: it should show the picture", got)
	}
	if ct := savedHeader.Get("Content-Type"); ct != "image/png" || !bytes.Equal(saved, shown) || int64(len(saved)) != img.Bytes {
		t.Errorf("download_url answers %s, %d bytes; want the %d-byte PNG url answers", ct, len(saved), img.Bytes)
	}
	// Every view of the image carries it: lists and the job.
	var list struct{ Images []api.ImageView }
	s.do(t, http.MethodGet, "/v1/images?job="+g.ID, token, nil).decode(t, &list)
	if len(list.Images) != 1 || list.Images[0].DownloadURL == "" || g.Images[0].DownloadURL == "" {
		t.Errorf("download_url missing from the list (%+v) or the job (%+v)", list.Images, g.Images)
	}
}

// getObject downloads a presigned URL as a browser would: no credentials.
func getObject(t *testing.T, url string) ([]byte, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", url, resp.StatusCode, body, err)
	}
	return body, resp.Header
}
