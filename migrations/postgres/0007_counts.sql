-- Kept counts (issue 15): how many inquiries, and how many of them unread, per
-- UTC day received, form, status and category, so that the console's tabs and
-- dashboard and `GET /stats` read a few hundred rows instead of counting the
-- whole table, kept in the transaction of every change; the table holds no
-- personal data. A day is received_at / 86400000.
--
-- Each key is split over shards (0-15) that readers add up: a transaction
-- writes to one shard, so concurrent transactions (one per request, several
-- replicas) seldom wait for the same row lock until each other's commit.
-- New inquiries are counted by the code that inserts them (one upsert per key
-- and transaction, in key order): a statement trigger with a transition table
-- cost 40 % of the one-transaction-per-request rate. Every other change (rare,
-- not on the submission path) is counted by the triggers below; a statement
-- writes its keys in key order, so it cannot deadlock with a submission. A
-- delete is counted row by row, before the row goes (its triage row, which
-- says whether it was read, goes with it by the foreign key).
CREATE TABLE inquiry_counts (
    day      BIGINT   NOT NULL,
    form     TEXT     NOT NULL,
    status   TEXT     NOT NULL,
    category TEXT     NOT NULL,
    shard    SMALLINT NOT NULL,
    -- A shard's n and unread may be negative; the sum over shards is not.
    n        BIGINT   NOT NULL,
    -- Of n, those nobody has opened yet (no console_triage.read_at).
    unread   BIGINT   NOT NULL,
    PRIMARY KEY (day, form, status, category, shard)
);

INSERT INTO inquiry_counts (day, form, status, category, shard, n, unread)
SELECT i.received_at / 86400000, i.form, i.status, i.category, 0, count(*), count(*) - count(t.read_at)
FROM inquiries i LEFT JOIN console_triage t ON t.inquiry_id = i.id
GROUP BY 1, 2, 3, 4;

-- The shard this session writes to.
CREATE FUNCTION inquiry_counts_shard() RETURNS SMALLINT LANGUAGE sql STABLE AS $$
    SELECT (pg_backend_pid() % 16)::SMALLINT
$$;

CREATE FUNCTION inquiry_counts_is_unread(inquiry TEXT) RETURNS BIGINT LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN EXISTS (SELECT 1 FROM console_triage t WHERE t.inquiry_id = inquiry AND t.read_at IS NOT NULL)
                THEN 0 ELSE 1 END::BIGINT
$$;

-- Adds n and unread to one key in this session's shard.
CREATE FUNCTION inquiry_counts_add(k_day BIGINT, k_form TEXT, k_status TEXT, k_category TEXT, d_n BIGINT, d_unread BIGINT)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO inquiry_counts (day, form, status, category, shard, n, unread)
    VALUES (k_day, k_form, k_status, k_category, inquiry_counts_shard(), d_n, d_unread)
    ON CONFLICT (day, form, status, category, shard)
    DO UPDATE SET n = inquiry_counts.n + excluded.n, unread = inquiry_counts.unread + excluded.unread
$$;

CREATE FUNCTION inquiry_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Only the rows whose day, form, status or category changed: most updates
    -- change none of them (a note, the search document).
    WITH moved AS (
        SELECT o.received_at / 86400000 AS old_day, o.form AS old_form, o.status AS old_status,
               o.category AS old_category, n.received_at / 86400000 AS new_day, n.form AS new_form,
               n.status AS new_status, n.category AS new_category, inquiry_counts_is_unread(o.id) AS unread
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE (o.received_at / 86400000, o.form, o.status, o.category)
              IS DISTINCT FROM (n.received_at / 86400000, n.form, n.status, n.category)
    )
    INSERT INTO inquiry_counts (day, form, status, category, shard, n, unread)
    SELECT day, form, status, category, inquiry_counts_shard(), sum(n), sum(unread)
    FROM (
        SELECT old_day AS day, old_form AS form, old_status AS status, old_category AS category,
               -1 AS n, -unread AS unread
        FROM moved
        UNION ALL
        SELECT new_day, new_form, new_status, new_category, 1, unread FROM moved
    ) AS changes
    GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 OR sum(unread) <> 0 ORDER BY 1, 2, 3, 4
    ON CONFLICT (day, form, status, category, shard)
    DO UPDATE SET n = inquiry_counts.n + excluded.n, unread = inquiry_counts.unread + excluded.unread;
    RETURN NULL;
END
$$;

CREATE FUNCTION inquiry_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM inquiry_counts_add(OLD.received_at / 86400000, OLD.form, OLD.status, OLD.category,
                               -1, -inquiry_counts_is_unread(OLD.id));
    RETURN OLD;
END
$$;

CREATE FUNCTION inquiry_counts_read() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.read_at IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.read_at IS NULL) THEN
        PERFORM inquiry_counts_add(i.received_at / 86400000, i.form, i.status, i.category, 0, -1)
        FROM inquiries i WHERE i.id = NEW.inquiry_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER inquiry_counts_update AFTER UPDATE ON inquiries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION inquiry_counts_updated();
CREATE TRIGGER inquiry_counts_delete BEFORE DELETE ON inquiries
    FOR EACH ROW EXECUTE FUNCTION inquiry_counts_deleted();
CREATE TRIGGER inquiry_counts_read AFTER INSERT OR UPDATE OF read_at ON console_triage
    FOR EACH ROW EXECUTE FUNCTION inquiry_counts_read();

-- The dashboard counts failed emails (SQLite's notifications_due index covers it).
CREATE INDEX notifications_failed ON notifications (created_at) WHERE status = 'failed';
