-- A counter that every statement changing `smart_search` bumps (an embedding added, replaced or removed), and
-- that re-training the search lists bumps too. The API server keeps the search lists' vectors in memory
-- (search/resident.py) and ranks candidates there with numpy instead of reading ~1 µs per row in PostgreSQL; it
-- reads this counter with each search's context and uses that copy only while the counter still says it is
-- current. A statement trigger, so a batch of ingested photos bumps it once; it lives in a row of its own so
-- readers never wait for a writer (MVCC), and a writer's bump becomes visible exactly when its rows do.
INSERT INTO system_metadata (key, value) VALUES ('search_version', '0') ON CONFLICT (key) DO NOTHING;

CREATE FUNCTION search_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE system_metadata SET value = to_jsonb((value #>> '{}')::bigint + 1) WHERE key = 'search_version';
    RETURN NULL;
END $$;
CREATE TRIGGER search_version_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON smart_search
    FOR EACH STATEMENT EXECUTE FUNCTION search_version_bump();
