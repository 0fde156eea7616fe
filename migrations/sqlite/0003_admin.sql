-- Admin tokens (only a SHA-256 of each token is kept), the audit log, and the
-- full-text index over inquiries.

CREATE TABLE admin_tokens (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    scope        TEXT    NOT NULL CHECK (scope IN ('read', 'write')),
    token_hash   BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- Who did what, when: never personal data (ids and counts only).
CREATE TABLE audit_log (
    seq    INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT,
    detail TEXT    NOT NULL DEFAULT '{}'
);

-- Contentless: the indexed text is the inquiry's, with every CJK character
-- spaced out so the unicode61 tokenizer indexes them one by one (a phrase query
-- then finds words of any length, two-character Chinese words included).
-- A row is removed with the 'delete' command and its document, recomputed from
-- the inquiry; secure-delete then removes its terms from the index at once
-- instead of leaving them behind delete markers.
CREATE VIRTUAL TABLE inquiries_fts USING fts5 (
    body,
    content = '',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO inquiries_fts (inquiries_fts, rank) VALUES ('secure-delete', 1);

-- Facts about the database itself (e.g. whether the search index is complete).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('search_index', 'complete');
