package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// An API key reads esk_<lookup>_<secret>: an 8-character lookup prefix that
// finds the row, then 32 random bytes in unpadded base64url. The lookup part
// is not secret (listings show it); the 256-bit secret is.
const (
	APIKeyPrefix    = "esk_"
	apiKeyLookupLen = 8
	apiKeySecretLen = 32
	// apiKeyLen is the length of a whole key: prefix, lookup, separator and
	// the 43 base64url characters of the secret.
	apiKeyLen = len(APIKeyPrefix) + apiKeyLookupLen + 1 + (apiKeySecretLen*8+5)/6
)

// API key scopes: what a key may do. A session (an ID token) may do all of
// it; a key only what it was created with.
const (
	ScopeGenerate = "generate" // start and cancel generations
	ScopeRead     = "read"     // read anything the user may read
	ScopeBilling  = "billing"  // subscribe, change or cancel the plan, revoke other keys
)

// APIKeyScopes lists every scope; DefaultAPIKeyScopes are a new key's when
// its creator names none (and every key's from before scopes existed).
var (
	APIKeyScopes        = []string{ScopeGenerate, ScopeRead, ScopeBilling}
	DefaultAPIKeyScopes = []string{ScopeGenerate, ScopeRead}
)

// MaxActiveAPIKeys caps the usable (active, unexpired) keys of one user, so a
// leaked session cannot mint keys without bound.
const MaxActiveAPIKeys = 20

// ErrInvalidAPIKey is returned by AuthenticateAPIKey for any key that does
// not authenticate: malformed, unknown, wrong secret, revoked or expired. It
// wraps ErrNotFound, and one error for every cause keeps callers from telling
// a client why.
var ErrInvalidAPIKey = fmt.Errorf("invalid API key: %w", ErrNotFound)

// ErrTooManyAPIKeys is returned by CreateAPIKey when the user already has
// MaxActiveAPIKeys usable keys.
var ErrTooManyAPIKeys = fmt.Errorf("at most %d active API keys per user", MaxActiveAPIKeys)

// APIKey is a key as its owner may see it: never the secret or its hash.
type APIKey struct {
	ID     string
	UserID string
	Name   string
	// Prefix is the 8-character lookup part of the key.
	Prefix     string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	// Active is true while the key authenticates: not revoked, not expired.
	Active bool
	// Scopes is what the key may do (APIKeyScopes).
	Scopes []string
}

// lookupEncoding spells the lookup part: lowercase base32 turns 5 random
// bytes into exactly 8 characters that survive copy, paste and URLs.
var lookupEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// hashAPIKey is how a key is stored. A single SHA-256 is enough, unlike for
// passwords: slow, salted hashes exist to make guessing low-entropy secrets
// expensive, but guessing a 256-bit random secret is infeasible at any hash
// speed, and a fast hash keeps authenticating every request cheap.
func hashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// newAPIKey draws a fresh key and returns it with its lookup part.
func newAPIKey() (key, lookup string, err error) {
	var b [5 + apiKeySecretLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("draw API key: %w", err)
	}
	lookup = lookupEncoding.EncodeToString(b[:5])
	return APIKeyPrefix + lookup + "_" + base64.RawURLEncoding.EncodeToString(b[5:]), lookup, nil
}

// parseAPIKey returns the key's lookup part, or false when the key is not
// shaped like one, so malformed tokens cost no query.
func parseAPIKey(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, APIKeyPrefix)
	if !ok || len(key) != apiKeyLen || rest[apiKeyLookupLen] != '_' {
		return "", false
	}
	lookup := rest[:apiKeyLookupLen]
	for _, c := range lookup {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", false
		}
	}
	return lookup, true
}

const apiKeyColumns = `id, user_id, name, key_prefix, created_at, expires_at, last_used_at,
	is_active AND (expires_at IS NULL OR expires_at > now()), scopes`

func scanAPIKey(row pgx.Row) (APIKey, error) {
	var k APIKey
	err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.Prefix, &k.CreatedAt, &k.ExpiresAt, &k.LastUsedAt, &k.Active, &k.Scopes)
	return k, err
}

// CreateAPIKey mints a key for the user and returns it with its secret, the
// whole key, which is shown once and never stored. A nil expiresAt never
// expires; no scopes means DefaultAPIKeyScopes. It returns ErrTooManyAPIKeys
// at the cap and ErrNotFound for a missing user.
func (s *Store) CreateAPIKey(ctx context.Context, userID, name string, expiresAt *time.Time, scopes ...string) (APIKey, string, error) {
	if len(scopes) == 0 {
		scopes = DefaultAPIKeyScopes
	}
	// A fresh 40-bit lookup part collides with an existing one about once in
	// a trillion draws per key held; the unique index catches it, and a
	// redraw is all it takes.
	for attempt := 0; ; attempt++ {
		k, secret, err := s.createAPIKey(ctx, userID, name, expiresAt, scopes)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.ConstraintName == "uq_api_keys_prefix" && attempt < 3 {
			continue
		}
		return k, secret, err
	}
}

func (s *Store) createAPIKey(ctx context.Context, userID, name string, expiresAt *time.Time, scopes []string) (APIKey, string, error) {
	secret, lookup, err := newAPIKey()
	if err != nil {
		return APIKey{}, "", err
	}
	var k APIKey
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		// Serialise one user's key creations so two concurrent requests
		// cannot both pass the cap check. The lock is separate from the
		// ledger's (easel_lock_user) so minting keys never queues behind
		// generations.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('api_keys/' || $1::uuid::text, 0))`,
			userID); err != nil {
			return fmt.Errorf("lock API keys of %s: %w", userID, err)
		}
		// A separate statement, so that under READ COMMITTED its snapshot is
		// taken after the lock and sees every key committed before it.
		var exists bool
		var active int
		err := tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM users WHERE id = $1),
				(SELECT count(*) FROM api_keys WHERE user_id = $1 AND is_active
					AND (expires_at IS NULL OR expires_at > now()))`,
			userID).Scan(&exists, &active)
		if err != nil {
			return fmt.Errorf("count API keys of %s: %w", userID, err)
		}
		if !exists {
			return fmt.Errorf("user %s: %w", userID, ErrNotFound)
		}
		if active >= MaxActiveAPIKeys {
			return fmt.Errorf("create API key for %s: %w", userID, ErrTooManyAPIKeys)
		}
		k, err = scanAPIKey(tx.QueryRow(ctx, `
			INSERT INTO api_keys (user_id, key_hash, key_prefix, name, is_active, expires_at, scopes)
			VALUES ($1, $2, $3, $4, TRUE, $5, $6) RETURNING `+apiKeyColumns,
			userID, hashAPIKey(secret), lookup, name, expiresAt, scopes))
		if err != nil {
			return fmt.Errorf("insert API key for %s: %w", userID, err)
		}
		return nil
	})
	if err != nil {
		return APIKey{}, "", err
	}
	return k, secret, nil
}

// ListAPIKeys lists the user's keys, revoked and expired ones included,
// newest first.
func (s *Store) ListAPIKeys(ctx context.Context, userID string) ([]APIKey, error) {
	rows, err := s.db.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys
		WHERE user_id = $1 ORDER BY created_at DESC, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list API keys of %s: %w", userID, err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIKey, error) { return scanAPIKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list API keys of %s: %w", userID, err)
	}
	return keys, nil
}

// RevokeAPIKey deactivates one of the user's keys for good. Revoking a key
// already revoked succeeds; a missing key, another user's key or an id that
// is not a UUID is ErrNotFound.
func (s *Store) RevokeAPIKey(ctx context.Context, userID, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return fmt.Errorf("API key %q: %w", id, ErrNotFound)
	}
	tag, err := s.db.Exec(ctx, `UPDATE api_keys SET is_active = FALSE WHERE id = $1 AND user_id = $2`, id, userID)
	if err != nil {
		return fmt.Errorf("revoke API key %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("API key %s: %w", id, ErrNotFound)
	}
	return nil
}

// AuthenticateAPIKey returns the owner of an active, unexpired key, with the
// key's scopes in User.Scopes. Every
// failure to authenticate is ErrInvalidAPIKey; other errors mean the
// database did not answer. The owner is returned even when suspended:
// deciding what a suspended user may do is the caller's job.
func (s *Store) AuthenticateAPIKey(ctx context.Context, secret string) (User, error) {
	lookup, ok := parseAPIKey(secret)
	if !ok {
		return User{}, ErrInvalidAPIKey
	}
	var (
		keyID, keyHash string
		stale          bool
		expires        *time.Time
		u              User
	)
	// stale says last_used_at is over a minute old, judged by the database's
	// clock like expires_at, so the write below happens at most once a
	// minute per key rather than on every request.
	err := s.db.QueryRow(ctx, `
		SELECT k.id, k.key_hash, k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute',
			u.id, u.email, u.name, u.cognito_sub, u.role, COALESCE(u.is_active, TRUE), k.scopes, k.expires_at
		FROM api_keys k JOIN users u ON u.id = k.user_id
		WHERE k.key_prefix = $1 AND k.is_active AND (k.expires_at IS NULL OR k.expires_at > now())`,
		lookup).Scan(&keyID, &keyHash, &stale, &u.ID, &u.Email, &u.Name, &u.CognitoSub, &u.Role, &u.Active, &u.Scopes, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrInvalidAPIKey
	}
	if err != nil {
		return User{}, fmt.Errorf("look up API key %s: %w", lookup, err)
	}
	// The lookup part is public, so the hash comparison is what proves the
	// caller holds the secret; constant time keeps its duration from
	// revealing how much of the hash matched.
	if subtle.ConstantTimeCompare([]byte(hashAPIKey(secret)), []byte(keyHash)) != 1 {
		return User{}, ErrInvalidAPIKey
	}
	if expires != nil {
		u.CredentialExpires = *expires
	}
	if stale {
		// The guard is repeated so concurrent requests write once.
		if _, err := s.db.Exec(ctx, `UPDATE api_keys SET last_used_at = now()
			WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, keyID); err != nil {
			return User{}, fmt.Errorf("record use of API key %s: %w", keyID, err)
		}
	}
	return u, nil
}
