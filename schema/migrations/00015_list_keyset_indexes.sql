-- +goose NO TRANSACTION
-- +goose Up
-- GET /v1/images and GET /v1/generations page on (created_at, tiebreak):
-- the images of one batch share a created_at (one transaction stores
-- them), so a cursor on created_at alone skipped the rest of a batch split
-- across pages. These indexes follow the listings' order exactly, so a
-- page is one index range scan from the cursor. Built concurrently (hence
-- no transaction) so that jobs keep storing images while they build.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_images_user_created_name
    ON images(user_id, created_at DESC, image_name);
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_generations_user_created_id
    ON generations(user_id, created_at DESC, id DESC);
-- The new index serves every query the old one did.
DROP INDEX CONCURRENTLY IF EXISTS idx_generations_user_created;

-- +goose Down
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_generations_user_created ON generations(user_id, created_at DESC);
DROP INDEX CONCURRENTLY IF EXISTS idx_generations_user_created_id;
DROP INDEX CONCURRENTLY IF EXISTS idx_images_user_created_name;
