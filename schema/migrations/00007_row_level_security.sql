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

-- +goose StatementBegin
-- The same tenant policy on every table that holds a user's rows; images
-- already had RLS enabled by the seed's schema.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['images', 'generations', 'credits', 'credit_holds', 'credit_transactions',
                             'usage_records', 'api_keys'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I TO easel_api
            USING (user_id = easel_scope_user() OR easel_scope_admin())
            WITH CHECK (user_id = easel_scope_user() OR easel_scope_admin())', t || '_tenant', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['images', 'generations', 'credits', 'credit_holds', 'credit_transactions',
                             'usage_records', 'api_keys'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS %I ON %I', t || '_tenant', t);
        IF t <> 'images' THEN
            EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', t);
        END IF;
    END LOOP;
END
$$;
-- +goose StatementEnd
DROP FUNCTION IF EXISTS easel_scope_admin();
DROP FUNCTION IF EXISTS easel_scope_user();
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM easel_api;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON FUNCTIONS FROM easel_api;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM easel_api;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM easel_api;
REVOKE USAGE ON SCHEMA public FROM easel_api;
