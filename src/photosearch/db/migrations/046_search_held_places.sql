-- The in-memory copy (search/resident.py) also holds each photo's library, GPS coordinates and the time it was
-- added, so library, bounding-box, radius and "added" filters rank only their rows in memory (1M photos: a city's
-- bounding box took 0.6-0.9 s in PostgreSQL, photos added before a date 0.6 s). The copy must be stale when one of
-- them changes: 044's trigger watched only whether coordinates were there; it now watches their values and the
-- library, and a trigger on assets watches created_at (045's watches the file name).
DROP TRIGGER search_version_bump_held ON search_ivf;
CREATE TRIGGER search_version_bump_held AFTER UPDATE ON search_ivf
    FOR EACH ROW
    WHEN ((OLD.owner_id, OLD.local_date_time, OLD.city, OLD.state, OLD.country, OLD.make, OLD.model, OLD.lens_model,
           OLD.rating, OLD.type, OLD.latitude, OLD.longitude, OLD.library_id)
          IS DISTINCT FROM
          (NEW.owner_id, NEW.local_date_time, NEW.city, NEW.state, NEW.country, NEW.make, NEW.model, NEW.lens_model,
           NEW.rating, NEW.type, NEW.latitude, NEW.longitude, NEW.library_id))
    EXECUTE FUNCTION metadata_counter_bump('search_version');

CREATE TRIGGER search_version_bump_created AFTER UPDATE OF created_at ON assets
    FOR EACH ROW
    WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION metadata_counter_bump('search_version');
