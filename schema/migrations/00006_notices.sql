-- +goose Up
-- Notices sent to users (store/notices.go, notify/). One row per notice, so
-- support can answer "did we tell them?" and the sender's outcome is kept.
CREATE TABLE user_notices (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id),
    kind VARCHAR(30) NOT NULL CHECK (kind IN ('low_balance')),
    -- The available balance that triggered the notice.
    balance INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    -- Set once the sender accepted the notice; NULL with an error means the
    -- claim was taken but delivery failed (it is not retried: one per crossing).
    sent_at TIMESTAMPTZ,
    error TEXT
);

CREATE INDEX idx_user_notices_user ON user_notices(user_id, created_at DESC);

-- Whether the user has been told about the current low-balance episode. A
-- notice is sent only when this flips false -> true (a conditional upsert, so
-- two concurrent settles claim it once); it is re-armed when the balance is
-- seen at or above the threshold again. One row per user, written lazily.
CREATE TABLE user_notice_state (
    user_id UUID PRIMARY KEY REFERENCES users(id),
    low_balance_notified BOOLEAN NOT NULL DEFAULT FALSE,
    low_balance_notified_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- +goose Down
DROP TABLE IF EXISTS user_notice_state;
DROP TABLE IF EXISTS user_notices;
