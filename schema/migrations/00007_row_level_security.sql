-- +goose Up
-- Defense in depth: the API connects as (or SET ROLEs to) easel_api, a role
-- without BYPASSRLS that does not own the tables, so Postgres itself keeps
-- each tenant's rows apart even if a query forgot its user filter. The pool
-- sets app.user_id (and app.admin for administrators) on every connection it
-- hands out (store.Scope). Workers connect as the owner, which RLS does not
-- restrict: they act for the system, across users.

-- +goose StatementBegin
DO $$
BEGIN
    CREATE ROLE easel_api NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- roles are per cluster: another database created it first
END
$$;
-- +goose StatementEnd

GRANT USAGE ON SCHEMA public TO easel_api;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO easel_api;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO easel_api;
-- Tables and functions of later migrations get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO easel_api;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO easel_api;

-- +goose StatementBegin
CREATE FUNCTION easel_scope_user() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT NULLIF(current_setting('app.user_id', true), '')::uuid
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION easel_scope_admin() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT COALESCE(current_setting('app.admin', true), '') = 'on'
$$;
-- +goose StatementEnd

GRANT EXECUTE ON FUNCTION easel_scope_user(), easel_scope_admin() TO easel_api;

ALTER TABLE generations ENABLE ROW LEVEL SECURITY;
ALTER TABLE credits ENABLE ROW LEVEL SECURITY;
ALTER TABLE credit_holds ENABLE ROW LEVEL SECURITY;
ALTER TABLE credit_transactions ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;

CREATE POLICY images_tenant ON images TO easel_api
    USING (user_id = easel_scope_user() OR easel_scope_admin())
    WITH CHECK (user_id = easel_scope_user() OR easel_scope_admin());
CREATE POLICY generations_tenant ON generations TO easel_api
    USING (user_id = easel_scope_user() OR easel_scope_admin())
    WITH CHECK (user_id = easel_scope_user() OR easel_scope_admin());
CREATE POLICY credits_tenant ON credits TO easel_api
    USING (user_id = easel_scope_user() OR easel_scope_admin())
    WITH CHECK (user_id = easel_scope_user() OR easel_scope_admin());
CREATE POLICY credit_holds_tenant ON credit_holds TO easel_api
    USING (user_id = easel_scope_user() OR easel_scope_admin())
    WITH CHECK (user_id = easel_scope_user() OR easel_scope_admin());
CREATE POLICY credit_transactions_tenant ON credit_transactions TO easel_api
    USING (user_id = easel_scope_user() OR easel_scope_admin())
    WITH CHECK (user_id = easel_scope_user() OR easel_scope_admin());
CREATE POLICY usage_records_tenant ON usage_records TO easel_api
    USING (user_id = easel_scope_user() OR easel_scope_admin())
    WITH CHECK (user_id = easel_scope_user() OR easel_scope_admin());
CREATE POLICY api_keys_tenant ON api_keys TO easel_api
    USING (user_id = easel_scope_user() OR easel_scope_admin())
    WITH CHECK (user_id = easel_scope_user() OR easel_scope_admin());

-- +goose Down
DROP POLICY IF EXISTS api_keys_tenant ON api_keys;
DROP POLICY IF EXISTS usage_records_tenant ON usage_records;
DROP POLICY IF EXISTS credit_transactions_tenant ON credit_transactions;
DROP POLICY IF EXISTS credit_holds_tenant ON credit_holds;
DROP POLICY IF EXISTS credits_tenant ON credits;
DROP POLICY IF EXISTS generations_tenant ON generations;
DROP POLICY IF EXISTS images_tenant ON images;
ALTER TABLE api_keys DISABLE ROW LEVEL SECURITY;
ALTER TABLE usage_records DISABLE ROW LEVEL SECURITY;
ALTER TABLE credit_transactions DISABLE ROW LEVEL SECURITY;
ALTER TABLE credit_holds DISABLE ROW LEVEL SECURITY;
ALTER TABLE credits DISABLE ROW LEVEL SECURITY;
ALTER TABLE generations DISABLE ROW LEVEL SECURITY;
DROP FUNCTION IF EXISTS easel_scope_admin();
DROP FUNCTION IF EXISTS easel_scope_user();
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM easel_api;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON FUNCTIONS FROM easel_api;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM easel_api;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM easel_api;
REVOKE USAGE ON SCHEMA public FROM easel_api;
