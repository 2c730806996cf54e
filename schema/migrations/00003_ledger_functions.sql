-- +goose Up
-- The ledger's hold, settle and release as functions, so each is one round
-- trip instead of six to nine: at 2 cores the ledger was bound by statement
-- overhead (docs/benchmarks.md). Each statement inside a function takes a new
-- snapshot under READ COMMITTED, so the reads after the user-row lock see
-- every hold committed before it, exactly as the statements did from Go.

-- Settles rewrite used_credits; an index whose predicate named it made every
-- settle a non-HOT update. Grants per user are few, so the plain index serves.
DROP INDEX IF EXISTS idx_credits_user_valid;
CREATE INDEX idx_credits_user_valid ON credits(user_id, valid_until);
ALTER TABLE credits SET (fillfactor = 80);

-- +goose StatementBegin
-- easel_lock_user serialises the ledger changes of one user until the end of
-- the transaction: every write to a user's credits and holds happens under
-- it (easel_hold, easel_settle, easel_release, store.Grant), so the
-- functions read those rows without row locks. An advisory lock, unlike
-- SELECT ... FOR UPDATE on the user's row, writes nothing: no WAL record and
-- no dirtied page per call. Two users whose ids hash alike merely queue
-- behind each other.
CREATE FUNCTION easel_lock_user(p_user uuid) RETURNS void
LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtextextended(p_user::text, 0));
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- easel_hold reserves p_amount credits for job p_job. outcome is one of:
-- held (new hold), existing (this job's hold, unchanged), insufficient,
-- busy (p_max_concurrent pending holds already), no_user, other_user.
CREATE FUNCTION easel_hold(p_job uuid, p_user uuid, p_amount integer, p_max_concurrent integer, p_ttl interval)
RETURNS TABLE (outcome text, amount integer, settled_amount integer, status text,
               expires_at timestamptz, created_at timestamptz, active integer, available integer)
LANGUAGE plpgsql AS $$
DECLARE
    h credit_holds%ROWTYPE;
    n_active integer;
    n_held integer;
    n_granted integer;
BEGIN
    -- Every ledger change of a user queues behind this lock.
    PERFORM easel_lock_user(p_user);
    PERFORM 1 FROM users u WHERE u.id = p_user;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no_user', 0, 0, '', NULL::timestamptz, NULL::timestamptz, 0, 0;
        RETURN;
    END IF;
    SELECT * INTO h FROM credit_holds ch WHERE ch.id = p_job;
    IF FOUND THEN
        RETURN QUERY SELECT CASE WHEN h.user_id = p_user THEN 'existing' ELSE 'other_user' END,
            h.amount, COALESCE(h.settled_amount, 0), h.status::text, h.expires_at, h.created_at, 0, 0;
        RETURN;
    END IF;
    SELECT count(*), COALESCE(sum(ch.amount), 0) INTO n_active, n_held
        FROM credit_holds ch WHERE ch.user_id = p_user AND ch.status = 'pending';
    IF p_max_concurrent > 0 AND n_active >= p_max_concurrent THEN
        RETURN QUERY SELECT 'busy', 0, 0, '', NULL::timestamptz, NULL::timestamptz, n_active, 0;
        RETURN;
    END IF;
    SELECT COALESCE(sum(c.total_credits - c.used_credits), 0) INTO n_granted
        FROM credits c WHERE c.user_id = p_user AND c.valid_from <= now() AND c.valid_until > now();
    IF n_granted - n_held < p_amount THEN
        RETURN QUERY SELECT 'insufficient', 0, 0, '', NULL::timestamptz, NULL::timestamptz, n_active,
            greatest(n_granted - n_held, 0);
        RETURN;
    END IF;
    INSERT INTO credit_holds (id, user_id, amount, expires_at)
        VALUES (p_job, p_user, p_amount, now() + p_ttl) RETURNING * INTO h;
    RETURN QUERY SELECT 'held', h.amount, 0, h.status::text, h.expires_at, h.created_at, n_active + 1,
        n_granted - n_held - p_amount;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- easel_settle posts job p_job's pending hold at p_amount (0..held), drawing
-- on the soonest-expiring grants first (grants valid when the hold was taken
-- still count) and writing one usage transaction per grant drawn. outcome is
-- settled, posted (already settled: unchanged), voided, not_found or
-- bad_amount. A ledger that cannot cover the amount raises an error.
CREATE FUNCTION easel_settle(p_job uuid, p_amount integer)
RETURNS TABLE (outcome text, user_id uuid, amount integer, settled_amount integer, status text,
               expires_at timestamptz, created_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    h credit_holds%ROWTYPE;
    g record;
    owner uuid;
    left_to_draw integer := p_amount;
    take integer;
BEGIN
    SELECT ch.user_id INTO owner FROM credit_holds ch WHERE ch.id = p_job;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found', NULL::uuid, 0, 0, '', NULL::timestamptz, NULL::timestamptz;
        RETURN;
    END IF;
    PERFORM easel_lock_user(owner);
    -- Under the user's lock no other transaction changes this hold or these
    -- grants, so plain reads suffice: no row locks, no WAL for them.
    SELECT * INTO h FROM credit_holds ch WHERE ch.id = p_job;
    IF h.status <> 'pending' THEN
        RETURN QUERY SELECT CASE WHEN h.status = 'posted' THEN 'posted' ELSE 'voided' END,
            h.user_id, h.amount, COALESCE(h.settled_amount, 0), h.status::text, h.expires_at, h.created_at;
        RETURN;
    END IF;
    IF p_amount < 0 OR p_amount > h.amount THEN
        RETURN QUERY SELECT 'bad_amount', h.user_id, h.amount, 0, h.status::text, h.expires_at, h.created_at;
        RETURN;
    END IF;
    IF left_to_draw > 0 THEN
        FOR g IN
            SELECT c.id, c.total_credits - c.used_credits AS remaining FROM credits c
            WHERE c.user_id = owner AND c.used_credits < c.total_credits
              AND c.valid_from <= now() AND c.valid_until > h.created_at
            ORDER BY c.valid_until, c.created_at
        LOOP
            take := least(g.remaining, left_to_draw);
            UPDATE credits SET used_credits = used_credits + take WHERE id = g.id;
            INSERT INTO credit_transactions (user_id, credit_id, amount, transaction_type, description, reference_id)
                VALUES (owner, g.id, -take, 'usage', 'generation ' || p_job, p_job::text);
            left_to_draw := left_to_draw - take;
            EXIT WHEN left_to_draw = 0;
        END LOOP;
    END IF;
    IF left_to_draw > 0 THEN
        RAISE EXCEPTION 'ledger short by % credits for hold %', left_to_draw, p_job;
    END IF;
    UPDATE credit_holds SET status = 'posted', settled_amount = p_amount WHERE id = p_job;
    RETURN QUERY SELECT 'settled', h.user_id, h.amount, p_amount, 'posted'::text, h.expires_at, h.created_at;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
-- easel_release voids job p_job's hold if it is pending and returns the
-- hold as it now stands; no row when there is no such hold.
CREATE FUNCTION easel_release(p_job uuid)
RETURNS TABLE (user_id uuid, amount integer, settled_amount integer, status text,
               expires_at timestamptz, created_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    h credit_holds%ROWTYPE;
BEGIN
    SELECT * INTO h FROM credit_holds ch WHERE ch.id = p_job;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM easel_lock_user(h.user_id);
    SELECT * INTO h FROM credit_holds ch WHERE ch.id = p_job;
    IF h.status = 'pending' THEN
        UPDATE credit_holds SET status = 'voided' WHERE id = p_job RETURNING * INTO h;
    END IF;
    RETURN QUERY SELECT h.user_id, h.amount, COALESCE(h.settled_amount, 0), h.status::text, h.expires_at, h.created_at;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION IF EXISTS easel_release(uuid);
DROP FUNCTION IF EXISTS easel_settle(uuid, integer);
DROP FUNCTION IF EXISTS easel_hold(uuid, uuid, integer, integer, interval);
DROP FUNCTION IF EXISTS easel_lock_user(uuid);
ALTER TABLE credits RESET (fillfactor);
DROP INDEX IF EXISTS idx_credits_user_valid;
CREATE INDEX idx_credits_user_valid ON credits(user_id, valid_until) WHERE used_credits < total_credits;
