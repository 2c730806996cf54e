-- +goose NO TRANSACTION
-- +goose Up
-- Uploads, webhook deliveries, admin's users and usage records page on
-- (created_at, id) as images and generations do (00015): rows share a
-- created_at (one event's deliveries to several endpoints, the rows one
-- transaction wrote), so a cursor on created_at alone skipped the rest of
-- them when a page ended among them. These indexes follow the listings'
-- order exactly, so a page is one index range scan from the cursor. Built
-- concurrently (hence no transaction) so that writes go on meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_uploads_user_created_id
    ON uploads(user_id, created_at DESC, id DESC);
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_webhook_deliveries_user_created_id
    ON webhook_deliveries(user_id, created_at DESC, id DESC);
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_created_id
    ON users(created_at DESC, id DESC);
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_usage_user_created_id
    ON usage_records(user_id, created_at DESC, id DESC);
-- The new indexes serve every query the old ones did.
DROP INDEX CONCURRENTLY IF EXISTS idx_uploads_user_created;
DROP INDEX CONCURRENTLY IF EXISTS idx_webhook_deliveries_user;
DROP INDEX CONCURRENTLY IF EXISTS idx_users_created_at;

-- +goose Down
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_created_at ON users(created_at DESC);
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_webhook_deliveries_user ON webhook_deliveries(user_id, created_at DESC);
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_uploads_user_created ON uploads(user_id, created_at DESC);
DROP INDEX CONCURRENTLY IF EXISTS idx_usage_user_created_id;
DROP INDEX CONCURRENTLY IF EXISTS idx_users_created_id;
DROP INDEX CONCURRENTLY IF EXISTS idx_webhook_deliveries_user_created_id;
DROP INDEX CONCURRENTLY IF EXISTS idx_uploads_user_created_id;
