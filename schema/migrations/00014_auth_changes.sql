-- +goose Up
-- API processes keep who a token belongs to, and that user's plan, in memory
-- for a few seconds (internal/authcache). Every change that alters what a
-- request may do announces the user on the channel easel_auth when its
-- transaction commits, whoever makes it (the API, a worker's activity, the
-- admin CLI, psql), and each API process forgets that user at once. '*'
-- means every user (a plan's definition changed).

-- +goose StatementBegin
CREATE FUNCTION easel_notify_auth_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    who TEXT;
    changed RECORD;
BEGIN
    IF TG_TABLE_NAME = 'subscription_plans' THEN
        who := '*';
    ELSE
        IF TG_OP = 'DELETE' THEN
            changed := OLD;
        ELSE
            changed := NEW;
        END IF;
        IF TG_TABLE_NAME = 'users' THEN
            who := changed.id::TEXT;
        ELSE
            who := changed.user_id::TEXT;
        END IF;
    END IF;
    PERFORM pg_notify('easel_auth', who);
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- Only the columns authentication reads: last_login_at and last_used_at
-- change on sign-in and key use and must not empty the caches.
CREATE TRIGGER users_auth_change
    AFTER UPDATE OF email, name, cognito_sub, role, is_active OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION easel_notify_auth_change();
CREATE TRIGGER api_keys_auth_change
    AFTER UPDATE OF is_active, expires_at, scopes, key_hash, key_prefix, user_id OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION easel_notify_auth_change();
CREATE TRIGGER user_subscriptions_auth_change
    AFTER INSERT OR UPDATE OR DELETE ON user_subscriptions
    FOR EACH ROW EXECUTE FUNCTION easel_notify_auth_change();
CREATE TRIGGER subscription_plans_auth_change
    AFTER INSERT OR UPDATE OR DELETE ON subscription_plans
    FOR EACH STATEMENT EXECUTE FUNCTION easel_notify_auth_change();

-- +goose Down
DROP TRIGGER IF EXISTS subscription_plans_auth_change ON subscription_plans;
DROP TRIGGER IF EXISTS user_subscriptions_auth_change ON user_subscriptions;
DROP TRIGGER IF EXISTS api_keys_auth_change ON api_keys;
DROP TRIGGER IF EXISTS users_auth_change ON users;
DROP FUNCTION IF EXISTS easel_notify_auth_change();
