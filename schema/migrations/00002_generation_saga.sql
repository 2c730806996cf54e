-- +goose Up
-- What the generation saga needs beyond the seed: one credit hold per job,
-- a generations row per job for history and listing, and the constraints
-- that make every ledger write idempotent under retries.

-- Money invariants the ledger relies on.
ALTER TABLE credits
    ADD CONSTRAINT credits_total_nonnegative CHECK (total_credits >= 0),
    ADD CONSTRAINT credits_used_in_range CHECK (used_credits >= 0 AND used_credits <= total_credits),
    ADD CONSTRAINT credits_window CHECK (valid_until > valid_from),
    -- A grant made on behalf of an outside event (a subscription period, an
    -- admin grant) carries that event's id so a retried grant is written once.
    ADD COLUMN reference_id VARCHAR(255) UNIQUE;

-- Consuming grants soonest-expiring first scans a user's live grants.
CREATE INDEX idx_credits_user_valid ON credits(user_id, valid_until) WHERE used_credits < total_credits;

-- One hold per job: the job id is the hold id.
CREATE TABLE credit_holds (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users(id),
    amount INTEGER NOT NULL CHECK (amount > 0),
    settled_amount INTEGER CHECK (settled_amount >= 0 AND settled_amount <= amount),
    status VARCHAR(10) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'posted', 'voided')),
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    CHECK ((status = 'posted') = (settled_amount IS NOT NULL))
);

CREATE INDEX idx_credit_holds_user_pending ON credit_holds(user_id) WHERE status = 'pending';
CREATE TRIGGER trg_credit_holds_updated_at BEFORE UPDATE ON credit_holds FOR EACH ROW EXECUTE FUNCTION update_updated_at();

-- A settle writes one transaction per grant it draws from; the unique key
-- makes a replayed settle impossible to double-count.
CREATE UNIQUE INDEX uq_credit_tx_reference ON credit_transactions(credit_id, transaction_type, reference_id);

-- One usage record per job.
CREATE UNIQUE INDEX uq_usage_job ON usage_records(job_id);

CREATE TABLE generations (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users(id),
    idempotency_key VARCHAR(255),
    request_hash VARCHAR(64) NOT NULL,
    workflow_id VARCHAR(255) NOT NULL,
    status VARCHAR(20) NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'completed', 'failed', 'canceled')),
    model VARCHAR(20) NOT NULL,
    params JSONB NOT NULL,
    plan VARCHAR(50) NOT NULL,
    gpu_tier VARCHAR(20) NOT NULL,
    batch_size INTEGER NOT NULL,
    images_produced INTEGER NOT NULL DEFAULT 0,
    credits_held INTEGER NOT NULL,
    credits_settled INTEGER,
    compute_seconds FLOAT,
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    UNIQUE (user_id, idempotency_key)
);

CREATE INDEX idx_generations_user_created ON generations(user_id, created_at DESC);
CREATE INDEX idx_generations_user_active ON generations(user_id) WHERE status IN ('queued', 'running');
CREATE TRIGGER trg_generations_updated_at BEFORE UPDATE ON generations FOR EACH ROW EXECUTE FUNCTION update_updated_at();

CREATE INDEX idx_images_session ON images(session_id);

-- Row-level security on images: a connection that is not the table owner
-- sees only the rows of the user named in the transaction's app.user_id.
CREATE POLICY images_owner ON images
    USING (user_id::text = current_setting('app.user_id', true))
    WITH CHECK (user_id::text = current_setting('app.user_id', true));

-- +goose Down
DROP POLICY IF EXISTS images_owner ON images;
DROP INDEX IF EXISTS idx_images_session;
DROP TABLE IF EXISTS generations;
DROP INDEX IF EXISTS uq_usage_job;
DROP INDEX IF EXISTS uq_credit_tx_reference;
DROP TABLE IF EXISTS credit_holds;
DROP INDEX IF EXISTS idx_credits_user_valid;
ALTER TABLE credits
    DROP COLUMN IF EXISTS reference_id,
    DROP CONSTRAINT IF EXISTS credits_window,
    DROP CONSTRAINT IF EXISTS credits_used_in_range,
    DROP CONSTRAINT IF EXISTS credits_total_nonnegative;
