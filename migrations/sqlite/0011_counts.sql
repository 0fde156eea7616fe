-- Kept counts (issue 15): how many inquiries, and how many of them unread, per
-- UTC day received, form, status and category, so that the console's tabs and
-- dashboard and `GET /stats` read a few hundred rows instead of counting the
-- whole table, kept in the transaction of every change; the table holds no
-- personal data. A day is received_at / 86400000.
--
-- New inquiries are counted by the writer, one upsert per key and batch (the
-- only place that inserts them): an AFTER INSERT trigger, even an empty one,
-- makes SQLite keep a statement journal for every insert, which measured about
-- 20 us per submission. Every other change (rare, and not on the submission
-- path) is counted by the triggers below.
CREATE TABLE inquiry_counts (
    day      INTEGER NOT NULL,
    form     TEXT    NOT NULL,
    status   TEXT    NOT NULL,
    category TEXT    NOT NULL,
    n        INTEGER NOT NULL,
    -- Of n, those nobody has opened yet (no console_triage.read_at).
    unread   INTEGER NOT NULL,
    PRIMARY KEY (day, form, status, category)
) WITHOUT ROWID;

INSERT INTO inquiry_counts (day, form, status, category, n, unread)
SELECT i.received_at / 86400000, i.form, i.status, i.category, count(*), count(*) - count(t.read_at)
FROM inquiries i LEFT JOIN console_triage t ON t.inquiry_id = i.id
GROUP BY 1, 2, 3, 4;

CREATE TRIGGER inquiry_counts_update AFTER UPDATE OF received_at, form, status, category ON inquiries
WHEN OLD.received_at / 86400000 IS NOT NEW.received_at / 86400000 OR OLD.form IS NOT NEW.form
  OR OLD.status IS NOT NEW.status OR OLD.category IS NOT NEW.category
BEGIN
    UPDATE inquiry_counts
    SET n = n - 1,
        unread = unread - (NOT EXISTS (SELECT 1 FROM console_triage t WHERE t.inquiry_id = OLD.id AND t.read_at IS NOT NULL))
    WHERE day = OLD.received_at / 86400000 AND form = OLD.form AND status = OLD.status AND category = OLD.category;
    INSERT INTO inquiry_counts (day, form, status, category, n, unread)
    VALUES (NEW.received_at / 86400000, NEW.form, NEW.status, NEW.category, 1,
            NOT EXISTS (SELECT 1 FROM console_triage t WHERE t.inquiry_id = NEW.id AND t.read_at IS NOT NULL))
    ON CONFLICT DO UPDATE SET n = n + 1, unread = unread + excluded.unread;
END;

-- Before the delete: its triage row (read or not) goes with it by the foreign key.
CREATE TRIGGER inquiry_counts_delete BEFORE DELETE ON inquiries BEGIN
    UPDATE inquiry_counts
    SET n = n - 1,
        unread = unread - (NOT EXISTS (SELECT 1 FROM console_triage t WHERE t.inquiry_id = OLD.id AND t.read_at IS NOT NULL))
    WHERE day = OLD.received_at / 86400000 AND form = OLD.form AND status = OLD.status AND category = OLD.category;
END;

-- An inquiry opened for the first time (read_at never goes back to NULL).
CREATE TRIGGER inquiry_counts_read AFTER INSERT ON console_triage WHEN NEW.read_at IS NOT NULL BEGIN
    UPDATE inquiry_counts SET unread = unread - 1
    WHERE (day, form, status, category) =
          (SELECT received_at / 86400000, form, status, category FROM inquiries WHERE id = NEW.inquiry_id);
END;

CREATE TRIGGER inquiry_counts_read_later AFTER UPDATE OF read_at ON console_triage
WHEN OLD.read_at IS NULL AND NEW.read_at IS NOT NULL BEGIN
    UPDATE inquiry_counts SET unread = unread - 1
    WHERE (day, form, status, category) =
          (SELECT received_at / 86400000, form, status, category FROM inquiries WHERE id = NEW.inquiry_id);
END;
