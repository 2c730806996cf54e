package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/store"
)

// TestStorageTotalFollowsRows: the stored-bytes total that GET /v1/me and
// the storage quota read equals the sum over the user's images and uploads
// after every kind of change: a job's images, uploads, deletes through the
// API's role (row-level security), a bulk delete, and concurrent uploads.
func TestStorageTotalFollowsRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	owner, api := ownerAndAPIPools(t)
	s, scoped := store.New(owner), store.NewScoped(api)
	alice, bob := newUser(t, s), newUser(t, s)
	asAlice := store.WithScope(ctx, store.Scope{UserID: alice.ID})

	check := func(step string, want int64) {
		t.Helper()
		var sum int64
		if err := owner.QueryRow(ctx, `SELECT COALESCE((SELECT SUM(file_size_bytes) FROM images WHERE user_id = $1), 0)
			+ COALESCE((SELECT SUM(file_size_bytes) FROM uploads WHERE user_id = $1), 0)`, alice.ID).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		got, err := scoped.StorageUsed(asAlice, alice.ID)
		if err != nil || got != want || sum != want {
			t.Fatalf("%s: total %d (%v), rows sum to %d; want %d", step, got, err, sum, want)
		}
		u, err := scoped.UsageSince(asAlice, alice.ID, time.Now().Add(-time.Hour))
		if err != nil || u.StorageBytes != want {
			t.Fatalf("%s: the account view's storage %d (%v), want %d", step, u.StorageBytes, err, want)
		}
	}
	check("nothing stored", 0)

	grant(t, s, alice.ID, 50, time.Hour)
	g := admitJob(t, s, alice.ID, 4, 2)
	if _, err := s.Finalize(ctx, store.FinalizeInput{JobID: g.ID, UserID: alice.ID, Credits: 4, Model: "sdxl",
		GPUTier: "a10g", Steps: 30, Width: 64, Height: 64, BatchSize: 2, Images: []store.ImageRecord{
			{Name: g.ID + "_0", Key: "k0", ThumbnailKey: "t0", Width: 64, Height: 64, Bytes: 1000},
			{Name: g.ID + "_1", Key: "k1", ThumbnailKey: "t1", Width: 64, Height: 64, Bytes: 2500}}}); err != nil {
		t.Fatal(err)
	}
	check("a job's two images", 3500)
	up, err := scoped.CreateUpload(asAlice, store.Upload{ID: uuid.NewString(), UserID: alice.ID, Key: "u", Width: 8,
		Height: 8, Bytes: 700, SourceFormat: "png"})
	if err != nil {
		t.Fatal(err)
	}
	check("an upload", 4200)
	if _, err := s.CreateUpload(ctx, store.Upload{ID: uuid.NewString(), UserID: bob.ID, Key: "b", Width: 8, Height: 8,
		Bytes: 99, SourceFormat: "png"}); err != nil {
		t.Fatal(err)
	}
	check("another user's upload", 4200)

	if _, err := scoped.DeleteImage(asAlice, alice.ID, g.ID+"_0"); err != nil {
		t.Fatal(err)
	}
	check("an image deleted under row-level security", 3200)
	if _, err := scoped.DeleteUpload(asAlice, alice.ID, up.ID); err != nil {
		t.Fatal(err)
	}
	check("the upload deleted", 2500)

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := scoped.CreateUpload(asAlice, store.Upload{ID: uuid.NewString(), UserID: alice.ID, Key: "c",
				Width: 8, Height: 8, Bytes: 100, SourceFormat: "png"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	check("20 uploads at once", 4500)
	if _, err := scoped.DeleteImages(asAlice, alice.ID, []string{g.ID + "_0", g.ID + "_1"}); err != nil {
		t.Fatal(err)
	}
	check("a bulk delete (one name already gone)", 2000)
	if n, err := s.StorageUsed(ctx, bob.ID); err != nil || n != 99 {
		t.Fatalf("bob's total %d (%v), want 99", n, err)
	}
}
