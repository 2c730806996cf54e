-- +goose Up
-- The ledger's hold and settle in fewer statements (docs/benchmarks.md,
-- section 1). At 2 cores a hold+settle pair was bound by the Postgres CPU
-- of its statements: easel_hold ran seven (the lock, four reads, the insert
-- and its foreign-key check), easel_settle nine or more (two reads, the
-- lock, the grants loop with an update and an insert per grant, the post).
-- Now a hold is the lock, one read and the insert; a settle is two reads
-- around the lock and one statement that draws the grants, records the
-- usage and posts the hold. The rules are unchanged: the same lock, the
-- same checks in the same order, soonest-expiring grants first.

-- Nothing reads credit_transactions by created_at alone (audits go by user
-- or by grant), and every usage row paid for this index's entry.
DROP INDEX IF EXISTS idx_credit_tx_created;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION easel_hold(p_job uuid, p_user uuid, p_amount integer, p_max_concurrent integer, p_ttl interval)
RETURNS TABLE (outcome text, amount integer, settled_amount integer, status text,
               expires_at timestamptz, created_at timestamptz, active integer, available integer)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    h credit_holds%ROWTYPE;
BEGIN
    -- Every ledger change of a user queues behind this lock (easel_lock_user).
    PERFORM pg_advisory_xact_lock(hashtextextended(p_user::text, 0));
    -- One read after the lock: does the user exist, is there a hold for this
    -- job already, what is pending, and what do the valid grants hold.
    SELECT EXISTS (SELECT 1 FROM users u WHERE u.id = p_user) AS user_found,
           ch.id IS NOT NULL AS hold_found, ch.user_id AS hold_user, ch.amount AS hold_amount,
           COALESCE(ch.settled_amount, 0) AS hold_settled, ch.status::text AS hold_status,
           ch.expires_at AS hold_expires, ch.created_at AS hold_created,
           pending.n AS n_active, pending.credits AS n_held, granted.credits AS n_granted
      INTO r
      FROM (SELECT 1) AS one
      LEFT JOIN credit_holds ch ON ch.id = p_job
      CROSS JOIN LATERAL (SELECT count(*)::integer AS n, COALESCE(sum(p.amount), 0)::integer AS credits
                            FROM credit_holds p WHERE p.user_id = p_user AND p.status = 'pending') AS pending
      CROSS JOIN LATERAL (SELECT COALESCE(sum(c.total_credits - c.used_credits), 0)::integer AS credits
                            FROM credits c
                           WHERE c.user_id = p_user AND c.valid_from <= now() AND c.valid_until > now()) AS granted;
    IF NOT r.user_found THEN
        RETURN QUERY SELECT 'no_user', 0, 0, '', NULL::timestamptz, NULL::timestamptz, 0, 0;
        RETURN;
    END IF;
    IF r.hold_found THEN
        RETURN QUERY SELECT CASE WHEN r.hold_user = p_user THEN 'existing' ELSE 'other_user' END,
            r.hold_amount, r.hold_settled, r.hold_status, r.hold_expires, r.hold_created, 0, 0;
        RETURN;
    END IF;
    IF p_max_concurrent > 0 AND r.n_active >= p_max_concurrent THEN
        RETURN QUERY SELECT 'busy', 0, 0, '', NULL::timestamptz, NULL::timestamptz, r.n_active, 0;
        RETURN;
    END IF;
    IF r.n_granted - r.n_held < p_amount THEN
        RETURN QUERY SELECT 'insufficient', 0, 0, '', NULL::timestamptz, NULL::timestamptz, r.n_active,
            greatest(r.n_granted - r.n_held, 0);
        RETURN;
    END IF;
    INSERT INTO credit_holds (id, user_id, amount, expires_at)
        VALUES (p_job, p_user, p_amount, now() + p_ttl) RETURNING * INTO h;
    RETURN QUERY SELECT 'held', h.amount, 0, h.status::text, h.expires_at, h.created_at, r.n_active + 1,
        r.n_granted - r.n_held - p_amount;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION easel_settle(p_job uuid, p_amount integer)
RETURNS TABLE (outcome text, user_id uuid, amount integer, settled_amount integer, status text,
               expires_at timestamptz, created_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    h credit_holds%ROWTYPE;
    drawn integer;
BEGIN
    SELECT * INTO h FROM credit_holds ch WHERE ch.id = p_job;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'not_found', NULL::uuid, 0, 0, '', NULL::timestamptz, NULL::timestamptz;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended(h.user_id::text, 0));
    -- Read again under the lock: a settle or release may have just posted or
    -- voided it. Under the lock nothing else changes this hold or the
    -- user's grants, so plain reads suffice.
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
    -- Draw p_amount from the soonest-expiring grants (grants valid when the
    -- hold was taken still count): each grant gives what it has left, up to
    -- what the grants before it did not cover. One usage transaction per
    -- grant drawn, and the hold posted, in the same statement.
    WITH grants AS (
        SELECT c.id, c.total_credits - c.used_credits AS remaining,
               sum(c.total_credits - c.used_credits)
                   OVER (ORDER BY c.valid_until, c.created_at, c.id) AS through
          FROM credits c
         WHERE c.user_id = h.user_id AND c.used_credits < c.total_credits
           AND c.valid_from <= now() AND c.valid_until > h.created_at
    ), draws AS (
        SELECT g.id, least(g.remaining, p_amount - (g.through - g.remaining))::integer AS take
          FROM grants g WHERE g.through - g.remaining < p_amount
    ), used AS (
        UPDATE credits c SET used_credits = c.used_credits + d.take
          FROM draws d WHERE c.id = d.id
        RETURNING d.id, d.take
    ), usage AS (
        INSERT INTO credit_transactions (user_id, credit_id, amount, transaction_type, description, reference_id)
        SELECT h.user_id, u.id, -u.take, 'usage', 'generation ' || p_job, p_job::text FROM used u
    ), posted AS (
        UPDATE credit_holds ch SET status = 'posted', settled_amount = p_amount WHERE ch.id = p_job
    )
    SELECT COALESCE(sum(u.take), 0)::integer INTO drawn FROM used u;
    IF drawn <> p_amount THEN
        RAISE EXCEPTION 'ledger short by % credits for hold %', p_amount - drawn, p_job;
    END IF;
    RETURN QUERY SELECT 'settled', h.user_id, h.amount, p_amount, 'posted'::text, h.expires_at, h.created_at;
END;
$$;
-- +goose StatementEnd

-- +goose Down
CREATE INDEX IF NOT EXISTS idx_credit_tx_created ON credit_transactions(created_at);

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION easel_hold(p_job uuid, p_user uuid, p_amount integer, p_max_concurrent integer, p_ttl interval)
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
CREATE OR REPLACE FUNCTION easel_settle(p_job uuid, p_amount integer)
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
