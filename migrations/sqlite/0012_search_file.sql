-- The search index moves to a file of its own (`<database>-search`, see
-- src/store/sqlite/index.rs), written by a thread of its own, so that indexing
-- no longer holds this file's write lock. Its rows are indexed there again at
-- the next start. secure_delete is on, so the dropped index's pages are zeroed.
DROP TABLE IF EXISTS inquiries_fts;
DELETE FROM meta WHERE key = 'search_index';

-- Which search file belongs to this database: `inquiryd backup` gives its
-- copy a new epoch, so that a restored copy does not trust the index of the
-- database it replaced.
INSERT INTO meta (key, value) VALUES ('search_epoch', lower(hex(randomblob(16))));
