-- The in-memory copy (search/resident.py) also holds each photo's flags: favourite, in the trash, on the
-- timeline. With them, "favourites" searches rank only those rows in numpy instead of PostgreSQL reading each one
-- where it lies (1M photos, favourites taken in a year: 2,923 rows on as many heap pages, ~15 ms), and the
-- default filters (not trashed, on the timeline) need no EXPLAIN to estimate. Favouriting, archiving and trashing
-- are common actions, so they must not make the whole copy stale (re-reading 1M vectors takes ~10 s): they bump a
-- counter of their own, and the server re-reads only the flags of the photos whose flags are not the default
-- ones (smart_search's partial indexes find them) while the vectors stay. Inserts and deletes already bump
-- search_version (migration 041), which replaces the whole copy.
INSERT INTO system_metadata (key, value) VALUES ('flags_version', '0') ON CONFLICT (key) DO NOTHING;

CREATE TRIGGER flags_version_bump AFTER UPDATE ON search_ivf
    FOR EACH ROW
    WHEN ((OLD.is_favorite, OLD.deleted_at IS NULL, OLD.visibility)
          IS DISTINCT FROM (NEW.is_favorite, NEW.deleted_at IS NULL, NEW.visibility))
    EXECUTE FUNCTION metadata_counter_bump('flags_version');  -- migration 042's
