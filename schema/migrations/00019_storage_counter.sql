-- +goose Up
-- The bytes each user stores (images and uploads), kept as a running total
-- instead of summed on every read. GET /v1/me and every generation's
-- storage-quota check read it; the sum read every row the user owns, so a
-- user with 100,000 images (an Enterprise quota holds about 130,000 of 1.5
-- MB) cost Postgres 16-23 ms per read (docs/benchmarks.md, section 8). Triggers keep the total
-- in the same transaction as the rows they count, so it is exact whenever
-- those rows are committed.
CREATE TABLE user_storage (
    user_id UUID PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    bytes BIGINT NOT NULL DEFAULT 0
);

ALTER TABLE user_storage ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_storage_tenant ON user_storage TO easel_api
    USING (user_id = easel_scope_user() OR easel_scope_admin())
    WITH CHECK (user_id = easel_scope_user() OR easel_scope_admin());

-- +goose StatementBegin
-- easel_count_storage moves a row's bytes into or out of its user's total.
-- It runs as its owner: a row deleted by the API (under row-level security)
-- still comes off the total. A delete only subtracts from a total that
-- exists: when a user is deleted, the cascade may already have removed it.
CREATE FUNCTION easel_count_storage() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') AND COALESCE(OLD.file_size_bytes, 0) <> 0 THEN
        UPDATE user_storage SET bytes = bytes - OLD.file_size_bytes WHERE user_id = OLD.user_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND COALESCE(NEW.file_size_bytes, 0) <> 0 THEN
        INSERT INTO user_storage AS s (user_id, bytes) VALUES (NEW.user_id, NEW.file_size_bytes)
        ON CONFLICT (user_id) DO UPDATE SET bytes = s.bytes + EXCLUDED.bytes;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER images_count_storage AFTER INSERT OR DELETE OR UPDATE OF user_id, file_size_bytes ON images
    FOR EACH ROW EXECUTE FUNCTION easel_count_storage();
CREATE TRIGGER uploads_count_storage AFTER INSERT OR DELETE OR UPDATE OF user_id, file_size_bytes ON uploads
    FOR EACH ROW EXECUTE FUNCTION easel_count_storage();

-- The totals so far. The triggers exist from here on and this migration's
-- transaction holds their tables' trigger locks, so no write falls between
-- (writes to images and uploads wait for this sum).
INSERT INTO user_storage (user_id, bytes)
SELECT user_id, SUM(bytes) FROM (
    SELECT user_id, COALESCE(file_size_bytes, 0) AS bytes FROM images
    UNION ALL
    SELECT user_id, COALESCE(file_size_bytes, 0) FROM uploads
) AS stored
GROUP BY user_id;

-- +goose Down
DROP TRIGGER IF EXISTS uploads_count_storage ON uploads;
DROP TRIGGER IF EXISTS images_count_storage ON images;
DROP FUNCTION IF EXISTS easel_count_storage();
DROP TABLE IF EXISTS user_storage;
