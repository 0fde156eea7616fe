-- The PostgreSQL schema: the same tables and columns as SQLite's migrations
-- 0001-0005 taken together. Times are Unix milliseconds (UTC) in BIGINT; seq gives a
-- stable newest-first order for keyset pagination; id is the public UUIDv7.

-- Search folds accents with the unaccent extension when the server has it (it is
-- a trusted extension: a database owner may create it). Without it, search is
-- still case-insensitive, but not accent-insensitive.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS unaccent;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'unaccent is not available: search will not fold accents';
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'unaccent') THEN
        EXECUTE format(
            'CREATE FUNCTION inquiryd_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT '
            'RETURN %I.unaccent(%L::regdictionary, t)',
            (SELECT nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE extname = 'unaccent'),
            (SELECT n.nspname || '.unaccent' FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
              WHERE extname = 'unaccent'));
    ELSE
        CREATE FUNCTION inquiryd_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT RETURN t;
    END IF;
END
$$;

CREATE TABLE inquiries (
    seq          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    received_at  BIGINT  NOT NULL,
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
    consent      BOOLEAN,
    page         TEXT,
    client_ip    TEXT,
    spam_flags   TEXT    NOT NULL DEFAULT '[]',
    note         TEXT,
    dedupe_hash  BYTEA,
    updated_at   BIGINT  NOT NULL,
    -- The full-text index of the same fields as SQLite's: the document is
    -- prepared by the service (store::search: punctuation split, Chinese and
    -- Japanese characters standing alone) and stored as
    -- to_tsvector('simple', inquiryd_fold(document)). NULL while indexing is off.
    search       tsvector
);

CREATE INDEX inquiries_status ON inquiries (status, seq);
CREATE INDEX inquiries_category ON inquiries (category, seq);
CREATE INDEX inquiries_email ON inquiries (email_norm, seq);
CREATE INDEX inquiries_received ON inquiries (received_at);
CREATE INDEX inquiries_search ON inquiries USING gin (search);

CREATE TABLE notifications (
    id              TEXT    PRIMARY KEY,
    inquiry_id      TEXT    NOT NULL REFERENCES inquiries (id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL CHECK (kind IN ('staff', 'receipt')),
    recipients      TEXT    NOT NULL,
    message_id      TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    smtp_response   TEXT,
    sent_at         BIGINT,
    created_at      BIGINT  NOT NULL
);

CREATE INDEX notifications_inquiry ON notifications (inquiry_id);
-- Only what a claim looks at: rows waiting or being sent.
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status IN ('pending', 'sending');

-- Every delivery attempt, with the server's answer or the error.
CREATE TABLE notification_attempts (
    seq             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id TEXT    NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    attempt         BIGINT  NOT NULL,
    at              BIGINT  NOT NULL,
    outcome         TEXT    NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
    detail          TEXT    NOT NULL
);

CREATE INDEX notification_attempts_notification ON notification_attempts (notification_id, seq);

CREATE TABLE idempotency_keys (
    key          TEXT    PRIMARY KEY,
    request_hash BYTEA   NOT NULL,
    inquiry_id   TEXT    NOT NULL,
    received_at  BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL
);

CREATE INDEX idempotency_keys_inquiry ON idempotency_keys (inquiry_id);

-- Admin tokens: only a SHA-256 of each token is kept.
CREATE TABLE admin_tokens (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    scope        TEXT    NOT NULL CHECK (scope IN ('read', 'write')),
    token_hash   BYTEA   NOT NULL UNIQUE,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

-- Who did what, when: never personal data (ids and counts only).
CREATE TABLE audit_log (
    seq    BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     BIGINT  NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT,
    detail TEXT    NOT NULL DEFAULT '{}'
);

-- Facts about the database itself (whether the search index is complete, when
-- the retention purge last ran).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('search_index', 'complete');
