-- Uploaded files (issue 19). Each file's metadata (name, size, type, sha256)
-- is part of the inquiry's `fields` value for its field; this table says which
-- inquiry names which stored file (`files_dir/<sha256>`), so that a file shared
-- by two inquiries is removed only with the last, and an orphan is found by a
-- lookup instead of a scan of every inquiry.
CREATE TABLE files (
    inquiry_id TEXT NOT NULL REFERENCES inquiries (id) ON DELETE CASCADE,
    sha256     TEXT NOT NULL,
    PRIMARY KEY (inquiry_id, sha256)
) WITHOUT ROWID;

CREATE INDEX files_by_sha256 ON files (sha256);
