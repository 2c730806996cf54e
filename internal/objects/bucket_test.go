package objects_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/easel/easel/internal/objects"
	"github.com/easel/easel/internal/testenv"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	if got, want := objects.ImageKey("u1", "img-7"), "users/u1/images/img-7.png"; got != want {
		t.Errorf("ImageKey = %q, want %q", got, want)
	}
	if got, want := objects.ThumbnailKey("u1", "img-7"), "users/u1/images/thumbnails/img-7.webp"; got != want {
		t.Errorf("ThumbnailKey = %q, want %q", got, want)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, err := objects.New(ctx, objects.Config{}); err == nil {
		t.Error("accepted a config without bucket")
	}
	if _, err := objects.New(ctx, objects.Config{Bucket: "b", AccessKeyID: "k"}); err == nil {
		t.Error("accepted an access key without secret")
	}
}

// newStore returns a store on a fresh versitygw server.
func newStore(t *testing.T) (*objects.Bucket, objects.Config) {
	t.Helper()
	cfg := testenv.S3(t)
	s, err := objects.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	return s, cfg
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestBucket shares one server across subtests: starting versitygw is the
// slow part, and each subtest uses its own keys.
func TestBucket(t *testing.T) {
	t.Parallel()
	s, cfg := newStore(t)
	t.Run("PutGet", func(t *testing.T) { testPutGet(t, s) })
	t.Run("GetMissing", func(t *testing.T) { testGetMissing(t, s) })
	t.Run("DeleteOne", func(t *testing.T) { testDeleteOne(t, s) })
	t.Run("DeleteMany", func(t *testing.T) { testDeleteMany(t, s) })
	t.Run("Presign", func(t *testing.T) { testPresign(t, s) })
	t.Run("Ping", func(t *testing.T) { testPing(t, s, cfg) })
	t.Run("EnsureBucket", func(t *testing.T) { testEnsureBucket(t, cfg) })
}

func testPutGet(t *testing.T, s *objects.Bucket) {
	key := objects.ImageKey("user-a", "put-get")
	body := bytes.Repeat([]byte("pixels"), 50_000)
	if err := s.Put(ctx(t), key, body, "image/png"); err != nil {
		t.Fatalf("put: %v", err)
	}
	got, err := s.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("got %d bytes back, want the %d put", len(got), len(body))
	}
	// Overwrite: the image activity may rerun after a crash.
	if err := s.Put(ctx(t), key, []byte("v2"), "image/png"); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if got, err := s.Get(ctx(t), key); err != nil || string(got) != "v2" {
		t.Fatalf("after overwrite got %q, %v", got, err)
	}
}

func testGetMissing(t *testing.T, s *objects.Bucket) {
	_, err := s.Get(ctx(t), objects.ImageKey("user-a", "never-written"))
	if !errors.Is(err, objects.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func testDeleteOne(t *testing.T, s *objects.Bucket) {
	key := objects.ThumbnailKey("user-a", "delete-one")
	put(t, s, key)
	for i := range 2 { // the second delete finds nothing and must still succeed
		if err := s.Delete(ctx(t), key); err != nil {
			t.Fatalf("delete #%d: %v", i+1, err)
		}
	}
	assertGone(t, s, key)
}

func testDeleteMany(t *testing.T, s *objects.Bucket) {
	var keys []string
	for i := range 5 {
		name := fmt.Sprintf("many-%d", i)
		keys = append(keys, objects.ImageKey("user-b", name), objects.ThumbnailKey("user-b", name))
	}
	for _, k := range keys[:7] { // the rest never exist
		put(t, s, k)
	}
	for i := range 2 {
		if err := s.Delete(ctx(t), keys...); err != nil {
			t.Fatalf("delete #%d of %d keys: %v", i+1, len(keys), err)
		}
	}
	for _, k := range keys {
		assertGone(t, s, k)
	}
	if err := s.Delete(ctx(t)); err != nil {
		t.Fatalf("delete of no keys: %v", err)
	}
}

func testPresign(t *testing.T, s *objects.Bucket) {
	key := objects.ImageKey("user-c", "presigned")
	body := []byte("\x89PNG presigned body")
	if err := s.Put(ctx(t), key, body, "image/png"); err != nil {
		t.Fatalf("put: %v", err)
	}
	url, err := s.PresignGet(ctx(t), key, 5*time.Minute)
	if err != nil {
		t.Fatalf("presign: %v", err)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("fetch presigned url: %v", err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read presigned body: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("presigned GET: status %d, body %q; want 200, %q", resp.StatusCode, got, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "image/png" {
		t.Errorf("Content-Type = %q, want image/png", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != objects.CacheControl {
		t.Errorf("Cache-Control = %q, want %q", cc, objects.CacheControl)
	}
	testStableLinks(t, s, key)
	for _, ttl := range []time.Duration{0, -time.Second, objects.MaxPresignTTL + time.Second} {
		if _, err := s.PresignGet(ctx(t), key, ttl); err == nil {
			t.Errorf("presign accepted ttl %v", ttl)
		}
	}
}

// testStableLinks: links asked for within one window are the same link
// (what lets a browser cache the pictures), valid from then on; the next
// window's link is another.
func testStableLinks(t *testing.T, s *objects.Bucket, key string) {
	ttl := 5 * time.Minute
	start := time.Now().Truncate(ttl)
	var links []string
	for _, at := range []time.Duration{time.Second, ttl - time.Second, ttl} {
		s.SetClock(func() time.Time { return start.Add(at) })
		link, err := s.PresignGet(ctx(t), key, ttl)
		if err != nil {
			t.Fatalf("presign at +%s: %v", at, err)
		}
		links = append(links, link)
	}
	s.SetClock(nil)
	if links[0] != links[1] {
		t.Errorf("links within one window differ:\n%s\n%s", links[0], links[1])
	}
	if links[1] == links[2] {
		t.Errorf("the next window's link is the same: %s", links[2])
	}
	for i, link := range links {
		resp, err := http.Get(link)
		if err != nil {
			t.Fatalf("fetch link %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("link %d: status %d, want 200", i, resp.StatusCode)
		}
	}
}

func testPing(t *testing.T, s *objects.Bucket, cfg objects.Config) {
	if err := s.Ping(ctx(t)); err != nil {
		t.Fatalf("ping: %v", err)
	}
	cfg.Bucket = "no-such-bucket"
	missing, err := objects.New(ctx(t), cfg)
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	if err := missing.Ping(ctx(t)); err == nil {
		t.Fatal("ping succeeded on a missing bucket")
	}
}

func testEnsureBucket(t *testing.T, cfg objects.Config) {
	cfg.Bucket = "easel-ensure"
	s, err := objects.New(ctx(t), cfg)
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	for i := range 2 { // creates, then finds it already there
		if err := s.EnsureBucket(ctx(t)); err != nil {
			t.Fatalf("ensure bucket #%d: %v", i+1, err)
		}
	}
	if err := s.Ping(ctx(t)); err != nil {
		t.Fatalf("ping after ensure: %v", err)
	}
	put(t, s, "probe")
}

func put(t *testing.T, s *objects.Bucket, key string) {
	t.Helper()
	if err := s.Put(ctx(t), key, []byte("data for "+key), "application/octet-stream"); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func assertGone(t *testing.T, s *objects.Bucket, key string) {
	t.Helper()
	if _, err := s.Get(ctx(t), key); !errors.Is(err, objects.ErrNotFound) {
		t.Fatalf("get %s after delete: err = %v, want ErrNotFound", key, err)
	}
}
