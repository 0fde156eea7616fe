-- Double-click detection looks a submission up by its normalized email (an
-- index that filters already need) and compares the dedupe hash there, so the
-- separate index on the hash, a random insert per submission, goes.
DROP INDEX IF EXISTS inquiries_dedupe;
