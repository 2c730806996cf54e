-- +goose Up
-- Job lifecycle. 'canceling': the user asked to cancel and the workflow has not yet released
-- the hold. The API shows it at once instead of 'running' until the GPU stops.
ALTER TABLE generations DROP CONSTRAINT generations_status_check;
ALTER TABLE generations ADD CONSTRAINT generations_status_check
    CHECK (status IN ('queued', 'running', 'canceling', 'completed', 'failed', 'canceled'));
DROP INDEX idx_generations_user_active;
CREATE INDEX idx_generations_user_active ON generations(user_id) WHERE status IN ('queued', 'running', 'canceling');


-- The hold reaper pages through pending holds by age.
CREATE INDEX idx_credit_holds_pending_created ON credit_holds(created_at, id) WHERE status = 'pending';

-- +goose Down
DROP INDEX idx_credit_holds_pending_created;
UPDATE generations SET status = 'running' WHERE status = 'canceling';
ALTER TABLE generations DROP CONSTRAINT generations_status_check;
ALTER TABLE generations ADD CONSTRAINT generations_status_check
    CHECK (status IN ('queued', 'running', 'completed', 'failed', 'canceled'));
DROP INDEX idx_generations_user_active;
CREATE INDEX idx_generations_user_active ON generations(user_id) WHERE status IN ('queued', 'running');
