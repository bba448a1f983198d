-- Search: a log of the photos whose search rows changed, so the server's in-memory copy (search/resident.py)
-- applies just those rows (read again, the old ones dropped) instead of reading the whole library again, which
-- held two copies in memory at once and left searches in PostgreSQL for as long as the reload took. Every insert,
-- update and delete of search_ivf (which triggers keep in step with smart_search and exif), and every rename or
-- changed added-time of an asset, logs the asset id with its transaction; statement triggers, one INSERT per
-- statement. A copy remembers the snapshot it was read in and later reads the entries of the transactions that
-- snapshot did not see (pg_visible_in_snapshot: exact, where a sequence number would miss a transaction that took
-- its number before another but committed after it). The server deletes entries its copy has applied once they
-- are a few minutes old, and a training of the lists (which re-reads every copy) all of them.
CREATE TABLE search_changes (
    xid      xid8 NOT NULL DEFAULT pg_current_xact_id(),
    asset_id uuid NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION search_changes_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_changes (asset_id) SELECT asset_id FROM changed_new;
    RETURN NULL;
END $$;
CREATE FUNCTION search_changes_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_changes (asset_id) SELECT asset_id FROM changed_old;
    RETURN NULL;
END $$;
CREATE FUNCTION search_changes_assets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_changes (asset_id)
    SELECT n.id FROM changed_new n JOIN changed_old o USING (id)
    WHERE n.original_file_name IS DISTINCT FROM o.original_file_name OR n.created_at IS DISTINCT FROM o.created_at;
    RETURN NULL;
END $$;
CREATE TRIGGER search_changes_insert AFTER INSERT ON search_ivf
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION search_changes_new();
CREATE TRIGGER search_changes_update AFTER UPDATE ON search_ivf
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION search_changes_new();
CREATE TRIGGER search_changes_delete AFTER DELETE ON search_ivf
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION search_changes_old();
CREATE TRIGGER search_changes_assets AFTER UPDATE ON assets
    REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new
    FOR EACH STATEMENT EXECUTE FUNCTION search_changes_assets();
