-- +goose Up
-- Pictures users upload to start image-to-image and inpainting jobs from
-- (POST /v1/uploads). The object is always a PNG the API re-encoded from
-- what was sent (users/<user_id>/uploads/<id>.png); file_size_bytes is that
-- PNG's size, which counts against the plan's storage quota beside images.
CREATE TABLE uploads (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users(id),
    s3_key VARCHAR(512) NOT NULL,
    width INTEGER NOT NULL CHECK (width > 0),
    height INTEGER NOT NULL CHECK (height > 0),
    file_size_bytes BIGINT NOT NULL CHECK (file_size_bytes > 0),
    -- The format that was sent (png, jpeg, webp), before re-encoding.
    source_format VARCHAR(10) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE INDEX idx_uploads_user_created ON uploads(user_id, created_at DESC);

-- The tenant policy of migration 00007: the API's role sees and writes only
-- the rows of the user its connection is scoped to.
GRANT SELECT, INSERT, UPDATE, DELETE ON uploads TO easel_api;
ALTER TABLE uploads ENABLE ROW LEVEL SECURITY;
CREATE POLICY uploads_tenant ON uploads TO easel_api
    USING (user_id = easel_scope_user() OR easel_scope_admin())
    WITH CHECK (user_id = easel_scope_user() OR easel_scope_admin());

-- +goose Down
DROP TABLE IF EXISTS uploads;
