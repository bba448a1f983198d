-- A counter that every statement changing smart_search's embeddings bumps (one added, replaced or removed). The
-- API server keeps the search lists' vectors in memory (search/resident.py) and ranks candidates there with numpy
-- instead of reading ~1 µs per row in PostgreSQL. It reads this counter with each search's context and uses that
-- copy only while the counter (and the lists' training, search_lists.trained_at) still say it is current. A
-- statement trigger, so a batch of ingested photos bumps it once; a writer's bump becomes visible exactly when its
-- rows do, and readers never wait for it (MVCC).
INSERT INTO system_metadata (key, value) VALUES ('search_version', '0') ON CONFLICT (key) DO NOTHING;

CREATE FUNCTION search_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE system_metadata SET value = to_jsonb((value #>> '{}')::bigint + 1) WHERE key = 'search_version';
    RETURN NULL;
END $$;
CREATE TRIGGER search_version_bump AFTER INSERT OR DELETE OR TRUNCATE ON smart_search
    FOR EACH STATEMENT EXECUTE FUNCTION search_version_bump();

-- An UPDATE bumps it only when an embedding changed: the filter columns smart_search copies from assets
-- (migration 011) change whenever a photo is favourited or archived, which the in-memory copy does not hold
-- (PostgreSQL applies the filters). Compared through the statement's transition tables, because a trigger with
-- a column list (UPDATE OF embedding) would forbid changing the column's type on a model switch.
CREATE FUNCTION search_version_bump_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed_new n JOIN changed_old o USING (asset_id)
               WHERE n.embedding IS DISTINCT FROM o.embedding) THEN
        UPDATE system_metadata SET value = to_jsonb((value #>> '{}')::bigint + 1) WHERE key = 'search_version';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER search_version_bump_update AFTER UPDATE ON smart_search
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION search_version_bump_update();
