-- +goose Up
-- Signing secrets can be rotated (docs/webhooks.md): the new secret signs at
-- once, and the one it replaced keeps signing beside it until
-- previous_secret_until, so a receiver can switch without dropping a
-- webhook (Standard Webhooks carries several signatures in one header).
ALTER TABLE webhook_endpoints
    ADD COLUMN previous_secret TEXT,
    ADD COLUMN previous_secret_until TIMESTAMPTZ;
ALTER TABLE webhook_secrets
    ADD COLUMN previous_secret TEXT,
    ADD COLUMN previous_secret_until TIMESTAMPTZ;

-- +goose Down
ALTER TABLE webhook_secrets DROP COLUMN previous_secret, DROP COLUMN previous_secret_until;
ALTER TABLE webhook_endpoints DROP COLUMN previous_secret, DROP COLUMN previous_secret_until;
