-- Console accounts and their sessions (issue 15). A password is kept only as
-- its Argon2id PHC string; a session only as the SHA-256 of its id.
CREATE TABLE console_users (
    id            TEXT    PRIMARY KEY,
    email         TEXT    NOT NULL,
    -- The address in the one normal form logins are compared in.
    email_norm    TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('viewer', 'triager', 'admin')),
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    disabled_at   INTEGER,
    last_login_at INTEGER,
    -- Consecutive failed logins; at [admin] lockout_failures the account is
    -- locked until locked_until.
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER
);

CREATE TABLE console_sessions (
    id_hash      BLOB    PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES console_users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);

CREATE INDEX console_sessions_user ON console_sessions (user_id);

-- Triage beyond status: read (unread until someone first opens it), assigned
-- to a user, marked replied. Goes with its inquiry when that is erased.
CREATE TABLE console_triage (
    inquiry_id TEXT    PRIMARY KEY REFERENCES inquiries (id) ON DELETE CASCADE,
    read_at    INTEGER,
    assignee   TEXT    REFERENCES console_users (id) ON DELETE SET NULL,
    replied_at INTEGER
);

CREATE INDEX console_triage_assignee ON console_triage (assignee) WHERE assignee IS NOT NULL;
