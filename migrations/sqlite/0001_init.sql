-- Inquiries, their notification outbox, and idempotency keys.
-- seq gives a stable newest-first order for keyset pagination; id is the public,
-- non-sequential identifier (UUIDv7). Times are Unix milliseconds (UTC).

CREATE TABLE inquiries (
    seq          INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    received_at  INTEGER NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('new', 'in_progress', 'resolved', 'spam', 'archived')),
    category     TEXT    NOT NULL CHECK (category IN ('inquiry', 'question', 'commendation', 'other')),
    name         TEXT    NOT NULL,
    email        TEXT    NOT NULL,
    email_norm   TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    organization TEXT,
    country      TEXT,
    phone        TEXT,
    consent      INTEGER,
    page         TEXT,
    client_ip    TEXT,
    spam_flags   TEXT    NOT NULL DEFAULT '[]',
    note         TEXT,
    dedupe_hash  BLOB,
    updated_at   INTEGER NOT NULL
);

CREATE INDEX inquiries_status ON inquiries (status, seq);
CREATE INDEX inquiries_category ON inquiries (category, seq);
CREATE INDEX inquiries_email ON inquiries (email_norm, seq);
CREATE INDEX inquiries_received ON inquiries (received_at);
CREATE INDEX inquiries_dedupe ON inquiries (dedupe_hash) WHERE dedupe_hash IS NOT NULL;

CREATE TABLE notifications (
    id              TEXT    PRIMARY KEY,
    inquiry_id      TEXT    NOT NULL REFERENCES inquiries (id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL CHECK (kind IN ('staff', 'receipt')),
    recipients      TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    smtp_response   TEXT,
    sent_at         INTEGER,
    created_at      INTEGER NOT NULL
);

CREATE INDEX notifications_inquiry ON notifications (inquiry_id);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);

CREATE TABLE idempotency_keys (
    key          TEXT    PRIMARY KEY,
    request_hash BLOB    NOT NULL,
    inquiry_id   TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE INDEX idempotency_keys_inquiry ON idempotency_keys (inquiry_id);
