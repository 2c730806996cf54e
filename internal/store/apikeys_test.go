package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/easel/easel/internal/store"
	"github.com/easel/easel/internal/testenv"
)

var apiKeyShape = regexp.MustCompile(`^esk_([a-z2-7]{8})_[A-Za-z0-9_-]{43}$`)

func createKey(t *testing.T, s *store.Store, userID, name string, expiresAt *time.Time) (store.APIKey, string) {
	t.Helper()
	k, secret, err := s.CreateAPIKey(context.Background(), userID, name, expiresAt)
	if err != nil {
		t.Fatalf("create API key: %v", err)
	}
	return k, secret
}

func expectInvalidKey(t *testing.T, s *store.Store, secret string) {
	t.Helper()
	u, err := s.AuthenticateAPIKey(context.Background(), secret)
	if !errors.Is(err, store.ErrInvalidAPIKey) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("authenticate %q = %+v, %v; want ErrInvalidAPIKey", secret, u, err)
	}
}

func TestAPIKeyLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)

	inAYear := time.Now().AddDate(1, 0, 0)
	k1, secret1 := createKey(t, s, u.ID, "ci", nil)
	k2, secret2 := createKey(t, s, u.ID, "laptop", &inAYear)
	m := apiKeyShape.FindStringSubmatch(secret1)
	if m == nil || m[1] != k1.Prefix || k1.Name != "ci" || k1.UserID != u.ID || !k1.Active || k1.ExpiresAt != nil ||
		k1.LastUsedAt != nil || k1.CreatedAt.IsZero() {
		t.Fatalf("created %+v with secret %q", k1, secret1)
	}
	if secret1 == secret2 || k1.Prefix == k2.Prefix || k2.ExpiresAt == nil || !k2.ExpiresAt.Equal(inAYear.Truncate(time.Microsecond)) {
		t.Fatalf("second key %+v", k2)
	}

	// Only the hash of the whole key is stored, never the secret.
	var hash, prefix string
	if err := s.Pool().QueryRow(ctx, `SELECT key_hash, key_prefix FROM api_keys WHERE id = $1`, k1.ID).Scan(&hash, &prefix); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret1))
	if hash != hex.EncodeToString(sum[:]) || prefix != k1.Prefix {
		t.Fatalf("stored hash %q prefix %q", hash, prefix)
	}

	keys, err := s.ListAPIKeys(ctx, u.ID)
	if err != nil || len(keys) != 2 || keys[0].ID != k2.ID || keys[1].ID != k1.ID {
		t.Fatalf("list = %+v, %v; want the two keys newest first", keys, err)
	}

	for _, secret := range []string{secret1, secret2} {
		got, err := s.AuthenticateAPIKey(ctx, secret)
		if err != nil || got.ID != u.ID || got.Email != u.Email || !got.Active {
			t.Fatalf("authenticate = %+v, %v; want %+v", got, err, u)
		}
	}

	if err := s.RevokeAPIKey(ctx, u.ID, k1.ID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	expectInvalidKey(t, s, secret1)
	// Revoking twice is not an error: the key is revoked either way.
	if err := s.RevokeAPIKey(ctx, u.ID, k1.ID); err != nil {
		t.Fatalf("revoke again: %v", err)
	}
	keys, err = s.ListAPIKeys(ctx, u.ID)
	if err != nil || len(keys) != 2 || keys[1].ID != k1.ID || keys[1].Active || !keys[0].Active {
		t.Fatalf("list after revoke = %+v, %v", keys, err)
	}
	if _, err := s.AuthenticateAPIKey(ctx, secret2); err != nil {
		t.Fatalf("revoking one key broke another: %v", err)
	}
}

func TestAPIKeyRejectsBadKeys(t *testing.T) {
	t.Parallel()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	k, secret := createKey(t, s, u.ID, "k", nil)

	// Right prefix, wrong secret: the last character changed.
	last := secret[len(secret)-1]
	other := byte('A')
	if last == 'A' {
		other = 'B'
	}
	expectInvalidKey(t, s, secret[:len(secret)-1]+string(other))
	// Right secret under another prefix.
	expectInvalidKey(t, s, "esk_aaaaaaaa"+secret[len("esk_")+8:])
	for _, bad := range []string{"", "esk_", "esk_" + k.Prefix, secret + "x", secret[:len(secret)-1],
		"tok-" + secret[4:], "esk_" + "ABCDEFGH" + secret[12:], "esk_" + k.Prefix + "-" + secret[13:]} {
		expectInvalidKey(t, s, bad)
	}

	past := time.Now().Add(-time.Second)
	_, expired := createKey(t, s, u.ID, "expired", &past)
	expectInvalidKey(t, s, expired)

	soon := time.Now().Add(time.Hour)
	ek, expiring := createKey(t, s, u.ID, "expiring", &soon)
	if _, err := s.AuthenticateAPIKey(context.Background(), expiring); err != nil {
		t.Fatalf("unexpired key: %v", err)
	}
	if _, err := s.Pool().Exec(context.Background(), `UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, ek.ID); err != nil {
		t.Fatal(err)
	}
	expectInvalidKey(t, s, expiring)
	keys, err := s.ListAPIKeys(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, lk := range keys {
		if lk.ID != k.ID && lk.Active {
			t.Fatalf("expired key %+v listed as active", lk)
		}
	}
}

func TestAPIKeyLastUsed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)
	k, secret := createKey(t, s, u.ID, "k", nil)
	lastUsed := func() *time.Time {
		t.Helper()
		keys, err := s.ListAPIKeys(ctx, u.ID)
		if err != nil || len(keys) != 1 || keys[0].ID != k.ID {
			t.Fatalf("list = %+v, %v", keys, err)
		}
		return keys[0].LastUsedAt
	}

	if _, err := s.AuthenticateAPIKey(ctx, secret); err != nil {
		t.Fatal(err)
	}
	first := lastUsed()
	if first == nil || time.Since(*first) > time.Minute {
		t.Fatalf("last_used_at after first use = %v", first)
	}
	// Within the minute a use writes nothing.
	if _, err := s.AuthenticateAPIKey(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if again := lastUsed(); again == nil || !again.Equal(*first) {
		t.Fatalf("last_used_at rewritten within a minute: %v then %v", first, again)
	}
	// A use over a minute after the last one is recorded.
	if _, err := s.Pool().Exec(ctx, `UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = $1`, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateAPIKey(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if later := lastUsed(); later == nil || time.Since(*later) > 30*time.Second {
		t.Fatalf("last_used_at after a stale use = %v", later)
	}
	// A failed attempt is not a use.
	if _, err := s.Pool().Exec(ctx, `UPDATE api_keys SET last_used_at = NULL WHERE id = $1`, k.ID); err != nil {
		t.Fatal(err)
	}
	expectInvalidKey(t, s, secret[:len(secret)-2]+"zz")
	if lu := lastUsed(); lu != nil {
		t.Fatalf("a wrong secret set last_used_at to %v", lu)
	}
}

func TestAPIKeyRevokeIsolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	alice, bob := newUser(t, s), newUser(t, s)
	k, secret := createKey(t, s, alice.ID, "alice", nil)

	for _, id := range []string{k.ID, uuid.NewString(), "not-a-uuid", ""} {
		if err := s.RevokeAPIKey(ctx, bob.ID, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("bob revoking %q: %v, want ErrNotFound", id, err)
		}
	}
	if got, err := s.AuthenticateAPIKey(ctx, secret); err != nil || got.ID != alice.ID {
		t.Fatalf("alice's key after bob's attempts: %+v, %v", got, err)
	}
	if keys, err := s.ListAPIKeys(ctx, bob.ID); err != nil || len(keys) != 0 {
		t.Fatalf("bob lists %+v, %v", keys, err)
	}
	if _, _, err := s.CreateAPIKey(ctx, uuid.NewString(), "ghost", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("key for a missing user: %v, want ErrNotFound", err)
	}
}

// Sequential, like TestConcurrentHoldsNeverOverspend: its concurrent
// creations fill most of the test pool, and parallel pools that size could
// exhaust the server's connections, which every test process shares.
func TestAPIKeyCap(t *testing.T) {
	ctx := context.Background()
	s := store.New(testenv.Postgres(t))
	u := newUser(t, s)

	// Concurrent creations must not overshoot the cap.
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, refused := 0, 0
	for range store.MaxActiveAPIKeys + 5 {
		wg.Go(func() {
			_, _, err := s.CreateAPIKey(ctx, u.ID, "k", nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
			case errors.Is(err, store.ErrTooManyAPIKeys):
				refused++
			default:
				t.Errorf("create: %v", err)
			}
		})
	}
	wg.Wait()
	if created != store.MaxActiveAPIKeys || refused != 5 {
		t.Fatalf("created %d, refused %d; want %d and 5", created, refused, store.MaxActiveAPIKeys)
	}

	// Revoked and expired keys free their place.
	keys, err := s.ListAPIKeys(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIKey(ctx, u.ID, keys[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, keys[1].ID); err != nil {
		t.Fatal(err)
	}
	createKey(t, s, u.ID, "after revoke", nil)
	createKey(t, s, u.ID, "after expiry", nil)
	if _, _, err := s.CreateAPIKey(ctx, u.ID, "one too many", nil); !errors.Is(err, store.ErrTooManyAPIKeys) {
		t.Fatalf("over the cap: %v, want ErrTooManyAPIKeys", err)
	}
}
