-- The in-memory copy (search/resident.py) also holds each photo's rating, type (video or not), whether it has GPS
-- coordinates, and the archived and offline flags: a byte each. At 1M photos those filters ran in PostgreSQL's list
-- probe at 19-39 ms (rating >= 4, videos, archived); in memory they rank only their rows, as owner and date
-- filters do. The copy must then be stale when one of them changes: rating, type and coordinates join the columns
-- whose change bumps search_version (042's trigger, re-created with them), and archived and offline join the flags,
-- whose change bumps flags_version (043's trigger) and re-reads just the photos whose flags are not the common
-- ones (smart_search has a partial index for each).
DROP TRIGGER search_version_bump_held ON search_ivf;
CREATE TRIGGER search_version_bump_held AFTER UPDATE ON search_ivf
    FOR EACH ROW
    WHEN ((OLD.owner_id, OLD.local_date_time, OLD.city, OLD.state, OLD.country, OLD.make, OLD.model, OLD.lens_model,
           OLD.rating, OLD.type, OLD.latitude IS NULL OR OLD.longitude IS NULL)
          IS DISTINCT FROM
          (NEW.owner_id, NEW.local_date_time, NEW.city, NEW.state, NEW.country, NEW.make, NEW.model, NEW.lens_model,
           NEW.rating, NEW.type, NEW.latitude IS NULL OR NEW.longitude IS NULL))
    EXECUTE FUNCTION metadata_counter_bump('search_version');

DROP TRIGGER flags_version_bump ON search_ivf;
CREATE TRIGGER flags_version_bump AFTER UPDATE ON search_ivf
    FOR EACH ROW
    WHEN ((OLD.is_favorite, OLD.deleted_at IS NULL, OLD.visibility, OLD.is_archived, OLD.is_offline)
          IS DISTINCT FROM (NEW.is_favorite, NEW.deleted_at IS NULL, NEW.visibility, NEW.is_archived, NEW.is_offline))
    EXECUTE FUNCTION metadata_counter_bump('flags_version');
