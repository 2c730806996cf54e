-- +goose Up
-- Billing: subscriptions kept in sync by their workflows, payments linked to
-- the grant they bought (so a refund can claw it back), and Stripe webhook
-- events recorded once.

-- At most one live subscription per user: a second POST /v1/subscriptions
-- races into this index instead of creating a second billing workflow.
-- 'incomplete' waits for the customer's payment method.
CREATE UNIQUE INDEX uq_user_subs_live ON user_subscriptions(user_id)
    WHERE status IN ('incomplete', 'trialing', 'active', 'past_due');
CREATE INDEX idx_user_subs_customer ON user_subscriptions(stripe_customer_id);
CREATE INDEX idx_user_subs_due ON user_subscriptions(current_period_end)
    WHERE status IN ('trialing', 'active');

ALTER TABLE user_subscriptions
    -- The plan a downgrade switches to at the period end.
    ADD COLUMN pending_plan_id UUID REFERENCES subscription_plans(id),
    -- The SetupIntent the web app confirms to save a card.
    ADD COLUMN setup_intent_id VARCHAR(255),
    ADD COLUMN ended_at TIMESTAMPTZ;

ALTER TABLE payments
    -- Not a foreign key: the workflow's id is written before or without a row
    -- in tests and imports; the id is a user_subscriptions id in practice.
    ADD COLUMN subscription_id VARCHAR(255),
    -- The grant this payment bought; a refund claws back what is unspent.
    ADD COLUMN credit_id UUID REFERENCES credits(id),
    ADD COLUMN refunded_at TIMESTAMPTZ,
    ADD COLUMN disputed_at TIMESTAMPTZ;
CREATE INDEX idx_payments_subscription ON payments(subscription_id);

-- A failed charge attempt, for the billing team (GET /v1/admin/billing).
CREATE TABLE payment_failures (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id),
    subscription_id VARCHAR(255) NOT NULL,
    idempotency_key VARCHAR(255) NOT NULL UNIQUE,
    stripe_payment_intent_id VARCHAR(255),
    amount DECIMAL(10,2) NOT NULL,
    code VARCHAR(100) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_payment_failures_created ON payment_failures(created_at DESC);

-- Every Stripe webhook event, stored once by its id: a redelivery finds its
-- row and changes nothing.
CREATE TABLE stripe_events (
    id VARCHAR(255) PRIMARY KEY,
    type VARCHAR(100) NOT NULL,
    subscription_id VARCHAR(255),
    received_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

ALTER TABLE user_notices DROP CONSTRAINT user_notices_kind_check;
ALTER TABLE user_notices ADD CONSTRAINT user_notices_kind_check
    CHECK (kind IN ('low_balance', 'downgraded', 'suspended', 'payment_failed'));

-- +goose Down
ALTER TABLE user_notices DROP CONSTRAINT user_notices_kind_check;
DELETE FROM user_notices WHERE kind <> 'low_balance';
ALTER TABLE user_notices ADD CONSTRAINT user_notices_kind_check CHECK (kind IN ('low_balance'));
DROP TABLE IF EXISTS stripe_events, payment_failures;
DROP INDEX IF EXISTS idx_payments_subscription;
ALTER TABLE payments DROP COLUMN IF EXISTS subscription_id, DROP COLUMN IF EXISTS credit_id,
    DROP COLUMN IF EXISTS refunded_at, DROP COLUMN IF EXISTS disputed_at;
ALTER TABLE user_subscriptions DROP COLUMN IF EXISTS pending_plan_id, DROP COLUMN IF EXISTS setup_intent_id,
    DROP COLUMN IF EXISTS ended_at;
DROP INDEX IF EXISTS idx_user_subs_due, idx_user_subs_customer, uq_user_subs_live;
