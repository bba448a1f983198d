-- The in-memory copy of the search lists (search/resident.py) also holds filter columns of each row: the owner,
-- the date taken, and the EXIF place and camera (city, state, country, make, model, lens), so that numpy can rank
-- only the rows those filters match (owner-scoped, date-range, place and camera searches: a few thousand of a
-- probe's rows instead of PostgreSQL reading each by its list index). The copy must then be stale whenever one
-- of them changes, as it is when an embedding does (migration 041): a row trigger on search_ivf, which carries
-- them all (kept in sync from smart_search and exif by the triggers of migration 013), bumps search_version when
-- one of them differs. Its WHEN clause is checked per row without a call, so re-training the lists (an UPDATE of
-- list_id on every row) and favouriting a photo cost nothing; a statement trigger with transition tables would
-- keep both images of every row a training updates.
-- The counter to bump is the trigger's argument (043 uses the same function for the flags' counter).
CREATE FUNCTION metadata_counter_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE system_metadata SET value = to_jsonb((value #>> '{}')::bigint + 1) WHERE key = TG_ARGV[0];
    RETURN NULL;
END $$;
CREATE TRIGGER search_version_bump_held AFTER UPDATE ON search_ivf
    FOR EACH ROW
    WHEN ((OLD.owner_id, OLD.local_date_time, OLD.city, OLD.state, OLD.country, OLD.make, OLD.model, OLD.lens_model)
          IS DISTINCT FROM
          (NEW.owner_id, NEW.local_date_time, NEW.city, NEW.state, NEW.country, NEW.make, NEW.model, NEW.lens_model))
    EXECUTE FUNCTION metadata_counter_bump('search_version');
