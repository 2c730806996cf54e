-- +goose Up
-- A checkout (a paid subscription waiting for its first payment, status
-- 'incomplete') lives beside the free subscription it will replace: the free
-- plan stays in effect until the paid one is charged. So a user has at most
-- one subscription in effect and at most one open checkout.
DROP INDEX IF EXISTS uq_user_subs_live;
CREATE UNIQUE INDEX uq_user_subs_in_effect ON user_subscriptions(user_id)
    WHERE status IN ('trialing', 'active', 'past_due');
CREATE UNIQUE INDEX uq_user_subs_checkout ON user_subscriptions(user_id)
    WHERE status = 'incomplete';

-- +goose Down
DROP INDEX IF EXISTS uq_user_subs_checkout, uq_user_subs_in_effect;
UPDATE user_subscriptions c SET status = 'canceled', ended_at = COALESCE(c.ended_at, now())
    WHERE c.status = 'incomplete' AND EXISTS (SELECT 1 FROM user_subscriptions e
        WHERE e.user_id = c.user_id AND e.status IN ('trialing', 'active', 'past_due'));
CREATE UNIQUE INDEX uq_user_subs_live ON user_subscriptions(user_id)
    WHERE status IN ('incomplete', 'trialing', 'active', 'past_due');
