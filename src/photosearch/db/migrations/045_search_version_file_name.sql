-- The in-memory copy (search/resident.py) also holds every photo's file name, lower-cased, so a file-name filter
-- finds its rows with one bytes.find pass (1M photos: ILIKE on every asset row took 0.8-1.4 s). A rename must then
-- make the copy stale: file names live in `assets` only, so this trigger is on assets (042's is on search_ivf).
CREATE TRIGGER search_version_bump_file_name AFTER UPDATE OF original_file_name ON assets
    FOR EACH ROW
    WHEN (OLD.original_file_name IS DISTINCT FROM NEW.original_file_name)
    EXECUTE FUNCTION metadata_counter_bump('search_version');
