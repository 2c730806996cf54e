-- +goose Up
-- What an API key may do. generate: start and cancel jobs; read: every GET;
-- billing: subscribe, change or cancel the plan, revoke other keys. Keys
-- that existed before scopes get generate and read, the default for new
-- keys: a key in a script or CI must not be able to change what the
-- account pays unless it was made for that.
ALTER TABLE api_keys ADD COLUMN scopes TEXT[] NOT NULL DEFAULT ARRAY['generate', 'read']::TEXT[];
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_check
    CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['generate', 'read', 'billing']::TEXT[]);

-- +goose Down
ALTER TABLE api_keys DROP COLUMN IF EXISTS scopes;
