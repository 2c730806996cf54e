-- +goose Up
-- API keys (store/apikeys.go) are found by their public 8-character lookup
-- prefix and then checked by hash in constant time, so the prefix must name
-- at most one key: the unique index makes the lookup one row and turns a
-- prefix collision at creation into an error the store retries with a new
-- prefix. Nothing in this codebase wrote api_keys before this migration.
CREATE UNIQUE INDEX uq_api_keys_prefix ON api_keys(key_prefix);

-- Keys are never looked up by hash (that would make the hash the search key
-- instead of a value compared in constant time), so its index only costs writes.
DROP INDEX IF EXISTS idx_api_keys_hash;

-- A credential's state must not be ambiguous: NOT NULL keeps a missing
-- is_active from being read as active. An existing NULL is treated as revoked.
UPDATE api_keys SET is_active = FALSE WHERE is_active IS NULL;
ALTER TABLE api_keys ALTER COLUMN is_active SET NOT NULL;

-- +goose Down
ALTER TABLE api_keys ALTER COLUMN is_active DROP NOT NULL;
CREATE INDEX IF NOT EXISTS idx_api_keys_hash ON api_keys(key_hash);
DROP INDEX IF EXISTS uq_api_keys_prefix;
