-- The HNSW index type of this installation: "vector" (full precision, the default) or "halfvec" (an
-- expression index on embedding::halfvec(dim), half the memory). Recorded here so every process (CLI, server,
-- ingest) orders by the index's own expression; changed with `photosearch db vector-index`.
UPDATE system_metadata SET value = value || '{"index_type": "vector"}'
WHERE key = 'embedding' AND NOT value ? 'index_type';
