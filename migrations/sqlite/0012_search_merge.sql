-- The search index's segments are merged by the writer while its queue is
-- empty, a step of 64 pages at a time (src/store/sqlite/search.rs, Merger),
-- not by FTS5 inside the commit of whichever batch crossed its threshold: after
-- every 64 leaf pages written FTS5 merged 64 pages per level at once, and at
-- 1,750 submissions/s that commit took 10-30 ms while submissions waited.
-- FTS5's crisis merge (16 segments on one level) still bounds the index when
-- the writer has no idle moment.
INSERT INTO inquiries_fts (inquiries_fts, rank) VALUES ('automerge', 0);
