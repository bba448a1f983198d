-- The in-memory copy (search/resident.py) also holds which photos are favourites, so "favourites" searches rank
-- only those rows in numpy instead of PostgreSQL reading each one where it lies (1M photos, favourites taken in
-- a year: 2,923 rows on as many heap pages, ~15 ms). Favouriting is a common action, so it must not make the
-- whole copy stale (re-reading 1M vectors takes ~10 s): it bumps a counter of its own, and the server re-reads
-- only the favourites (their ids, ~0.1 s) while the vectors stay. Inserts and deletes already bump
-- search_version (migration 041), which replaces the whole copy.
INSERT INTO system_metadata (key, value) VALUES ('favorites_version', '0') ON CONFLICT (key) DO NOTHING;

CREATE FUNCTION favorites_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE system_metadata SET value = to_jsonb((value #>> '{}')::bigint + 1) WHERE key = 'favorites_version';
    RETURN NULL;
END $$;
CREATE TRIGGER favorites_version_bump AFTER UPDATE ON search_ivf
    FOR EACH ROW WHEN (OLD.is_favorite IS DISTINCT FROM NEW.is_favorite)
    EXECUTE FUNCTION favorites_version_bump();
