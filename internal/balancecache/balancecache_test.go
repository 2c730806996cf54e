package balancecache_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/balancecache"
	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

func TestCacheNeverServesAChangedBalance(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	c := balancecache.New(rdb)
	uid := uuid.NewString()
	db := store.Balance{Granted: 100, Available: 100}
	loads := 0
	load := func(context.Context) (store.Balance, error) { loads++; return db, nil }

	if b, _ := c.Balance(ctx, uid, load); b != db || loads != 1 {
		t.Fatalf("first read %+v after %d loads", b, loads)
	}
	if b, _ := c.Balance(ctx, uid, load); b != db || loads != 1 {
		t.Fatalf("cached read %+v after %d loads, want a hit", b, loads)
	}
	if ttl := rdb.TTL(ctx, balancecache.Key(uid)).Val(); ttl <= 0 || ttl > balancecache.TTL {
		t.Fatalf("ttl %s", ttl)
	}

	// During a change readers go to the database and do not fill.
	end, err := c.Begin(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	db = store.Balance{Granted: 100, Held: 2, Available: 98}
	if b, _ := c.Balance(ctx, uid, load); b != db {
		t.Fatalf("read during change %+v", b)
	}
	if rdb.Exists(ctx, balancecache.Key(uid)).Val() != 0 {
		t.Fatal("a read during a change filled the cache")
	}
	if err := end(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := c.Balance(ctx, uid, load); b != db {
		t.Fatalf("read after change %+v", b)
	}

	// A reader that loaded before a change must not store its old value.
	stale := func(context.Context) (store.Balance, error) {
		old := db
		if err := c.Invalidate(ctx, uid); err != nil { // the change lands mid-read
			t.Fatal(err)
		}
		db = store.Balance{Granted: 98, Available: 98}
		return old, nil
	}
	_ = c.Invalidate(ctx, uid)
	_, _ = c.Balance(ctx, uid, stale)
	if b, _ := c.Balance(ctx, uid, load); b != db {
		t.Fatalf("after a racing change read %+v, want %+v", b, db)
	}
}
