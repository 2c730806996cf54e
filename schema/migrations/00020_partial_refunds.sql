-- +goose Up
-- Partial refunds. Stripe sends charge.refunded for every refund of a
-- charge, partial or whole, with the charge's cumulative amount_refunded.
-- A payment keeps what has been refunded of it and how many credits its
-- refunds have clawed back, so each refund takes back its share of the
-- grant once, whatever order the events arrive in.
ALTER TABLE payments
    ADD COLUMN refunded_cents BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN clawed_back_credits INTEGER NOT NULL DEFAULT 0;

UPDATE payments SET refunded_cents = round(amount * 100)::bigint WHERE refunded_at IS NOT NULL;

-- +goose Down
ALTER TABLE payments DROP COLUMN IF EXISTS refunded_cents, DROP COLUMN IF EXISTS clawed_back_credits;
