-- +goose Up
-- Administration (store/admin.go, api/admin.go, `easel admin`).

-- Authorisation reads users.role; a typo such as 'Admin' must fail loudly at
-- write time rather than silently leave someone without (or with) access.
ALTER TABLE users ADD CONSTRAINT users_role_known CHECK (role IN ('user', 'admin'));

-- The admin user listing pages newest first.
CREATE INDEX idx_users_created_at ON users(created_at DESC);

-- Each admin grant is an audit row plus the credits row it created. The link
-- lets a retried grant (same Idempotency-Key, so the same credits row) find
-- its audit row instead of writing a second one; UNIQUE makes that hold even
-- if two retries race. Rows written before this migration have no link.
ALTER TABLE test_plan_grants
    ADD COLUMN credit_id UUID UNIQUE REFERENCES credits(id),
    ADD CONSTRAINT test_plan_grants_positive CHECK (credits_granted > 0),
    ADD CONSTRAINT test_plan_grants_window CHECK (valid_until > valid_from);

-- The admin user detail lists a user's admin grants.
CREATE INDEX idx_test_plan_grants_target ON test_plan_grants(target_user_id, created_at DESC);

-- +goose Down
DROP INDEX IF EXISTS idx_test_plan_grants_target;
ALTER TABLE test_plan_grants
    DROP CONSTRAINT IF EXISTS test_plan_grants_window,
    DROP CONSTRAINT IF EXISTS test_plan_grants_positive,
    DROP COLUMN IF EXISTS credit_id;
DROP INDEX IF EXISTS idx_users_created_at;
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_known;
