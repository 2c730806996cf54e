-- +goose Up
-- Webhooks to customers (docs/webhooks.md): endpoints a user registers, the
-- events Easel emits for them, one delivery per event and target (an
-- endpoint, or the webhook_url of a generation request), and every attempt
-- of every delivery.
--
-- Signing secrets must be readable to sign, so they are stored as they are
-- (the project has no key-management mechanism to encrypt them with); they
-- are protected like every tenant row, by row-level security, and never
-- leave the API except once at creation (endpoints) or on the owner's
-- request (the account secret).

CREATE TABLE webhook_endpoints (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    -- The event types sent to it; empty means every type.
    events TEXT[] NOT NULL DEFAULT '{}',
    secret TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_webhook_endpoints_user ON webhook_endpoints(user_id, created_at);

-- The account's signing secret: it signs the webhooks of generation
-- requests that name their own webhook_url.
CREATE TABLE webhook_secrets (
    user_id UUID PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- An event as sent: its id is derived from what happened (the job, the
-- period, the notice), so a workflow that emits it again adds nothing.
CREATE TABLE webhook_events (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    -- json, not jsonb: the body exactly as signed and sent, byte for byte.
    payload JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_webhook_events_user ON webhook_events(user_id, created_at);

CREATE TABLE webhook_deliveries (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    event_id UUID NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
    -- NULL for a generation request's own webhook_url.
    endpoint_id UUID REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INT NOT NULL DEFAULT 0,
    replay_of UUID REFERENCES webhook_deliveries(id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_attempt_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);
CREATE INDEX idx_webhook_deliveries_user ON webhook_deliveries(user_id, created_at DESC);
CREATE INDEX idx_webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, created_at DESC);

CREATE TABLE webhook_attempts (
    delivery_id UUID NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt INT NOT NULL CHECK (attempt > 0),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    started_at TIMESTAMPTZ NOT NULL,
    duration_ms INT NOT NULL,
    -- NULL when no HTTP answer came (refused address, timeout, reset).
    status_code INT,
    -- The start of the receiver's answer, at most a few KiB.
    response_excerpt TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, attempt)
);

-- +goose StatementBegin
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['webhook_endpoints', 'webhook_secrets', 'webhook_events', 'webhook_deliveries',
                             'webhook_attempts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I TO easel_api
            USING (user_id = easel_scope_user() OR easel_scope_admin())
            WITH CHECK (user_id = easel_scope_user() OR easel_scope_admin())', t || '_tenant', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE IF EXISTS webhook_attempts, webhook_deliveries, webhook_events, webhook_secrets, webhook_endpoints;
