-- Search: keep embeddings inline in the heap (no TOAST). A 512-d vector is 2,056 bytes, just over the
-- 2 KB TOAST threshold, so by default every distance computed outside the HNSW index first fetches two
-- chunks through the TOAST index (~5 buffer reads per row). Exact search over 1,000 filtered rows took
-- 39 ms that way and 5.5 ms inline (100k synthetic rows, see README "Search benchmark").
-- db.embedding.create_vector_index re-applies this after a dimension change (ALTER TYPE resets it).
ALTER TABLE smart_search ALTER COLUMN embedding SET STORAGE PLAIN;
-- Rows stored before this migration stay toasted until rewritten; rewrite them (a no-op on a new install).
UPDATE smart_search SET embedding = embedding::text::vector;
