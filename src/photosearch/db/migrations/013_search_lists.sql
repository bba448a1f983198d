-- Search: an inverted file (IVF) for the mid-selectivity path: every embedding also lives in a narrow,
-- half-precision copy tagged with its list (nearest k-means centroid, trained by photosearch.search.lists).
--
-- Why: the "quantized" path of migration 012 ranked EVERY filtered row by a binary code, then re-ranked 1,000
-- rows exactly. At 1M rows a 1-10 % filter means 10k-100k rows, and PostgreSQL's per-row cost put it at
-- 30-170 ms (EXIF filters also paid an index probe per row). Here the path reads only the filtered rows of the
-- lists nearest the query (~2,000 rows), ranks them by their half-precision vector, and re-scores the top few
-- at full precision: ~7 ms at 1M (README "Search benchmark"). Until lists are trained (small libraries) every
-- row is in list 0 and the path ranks all filtered rows.
--
-- Kept in sync by triggers (smart_search insert/update, exif insert/update; deletes cascade), so writers never
-- see it. It lives apart from smart_search so re-training rewrites this 1 KB row, not the 2 KB embedding row
-- and its HNSW entry, and so training can CLUSTER it by list (a probe then reads a few contiguous pages).

CREATE TABLE search_centroids (
    list_id  smallint PRIMARY KEY,
    centroid vector NOT NULL
);
ALTER TABLE search_centroids ALTER COLUMN centroid SET STORAGE PLAIN;

CREATE TABLE search_ivf (
    asset_id        uuid PRIMARY KEY REFERENCES smart_search (asset_id) ON DELETE CASCADE,
    list_id         smallint NOT NULL DEFAULT 0,
    owner_id        uuid,
    local_date_time timestamptz,
    library_id      uuid,
    type            text,
    is_favorite     boolean,
    is_archived     boolean,
    visibility      text,
    is_offline      boolean,
    deleted_at      timestamptz,
    make            text,
    model           text,
    lens_model      text,
    city            text,
    state           text,
    country         text,
    rating          smallint,
    latitude        double precision,
    longitude       double precision,
    embedding       halfvec NOT NULL
);
ALTER TABLE search_ivf ALTER COLUMN embedding SET STORAGE PLAIN;

-- The nearest list of a vector (0 while no lists are trained). Centroids are unit vectors, so the largest inner
-- product is the nearest by cosine.
CREATE FUNCTION search_list_of(v vector) RETURNS smallint LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT list_id FROM search_centroids ORDER BY centroid <#> v LIMIT 1), 0::smallint)
$$;

CREATE FUNCTION search_ivf_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.embedding IS NOT DISTINCT FROM OLD.embedding THEN
        UPDATE search_ivf SET owner_id = NEW.owner_id, library_id = NEW.library_id, type = NEW.type,
            local_date_time = NEW.local_date_time, is_favorite = NEW.is_favorite, is_archived = NEW.is_archived,
            visibility = NEW.visibility, is_offline = NEW.is_offline, deleted_at = NEW.deleted_at
        WHERE asset_id = NEW.asset_id;
        RETURN NULL;
    END IF;
    INSERT INTO search_ivf AS c (asset_id, list_id, owner_id, local_date_time, library_id, type, is_favorite,
        is_archived, visibility, is_offline, deleted_at, make, model, lens_model, city, state, country, rating,
        latitude, longitude, embedding)
    SELECT NEW.asset_id, search_list_of(NEW.embedding), NEW.owner_id, NEW.local_date_time, NEW.library_id,
        NEW.type, NEW.is_favorite, NEW.is_archived, NEW.visibility, NEW.is_offline, NEW.deleted_at, e.make,
        e.model, e.lens_model, e.city, e.state, e.country, e.rating, e.latitude, e.longitude, NEW.embedding::halfvec
    FROM (SELECT 1) one LEFT JOIN exif e ON e.asset_id = NEW.asset_id
    ON CONFLICT (asset_id) DO UPDATE SET list_id = EXCLUDED.list_id, embedding = EXCLUDED.embedding,
        owner_id = EXCLUDED.owner_id, library_id = EXCLUDED.library_id, type = EXCLUDED.type,
        local_date_time = EXCLUDED.local_date_time, is_favorite = EXCLUDED.is_favorite,
        is_archived = EXCLUDED.is_archived, visibility = EXCLUDED.visibility, is_offline = EXCLUDED.is_offline,
        deleted_at = EXCLUDED.deleted_at;
    RETURN NULL;
END $$;
CREATE TRIGGER search_ivf_sync AFTER INSERT OR UPDATE ON smart_search
    FOR EACH ROW EXECUTE FUNCTION search_ivf_sync();

CREATE FUNCTION search_ivf_exif_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE search_ivf SET make = NEW.make, model = NEW.model, lens_model = NEW.lens_model, city = NEW.city,
        state = NEW.state, country = NEW.country, rating = NEW.rating, latitude = NEW.latitude,
        longitude = NEW.longitude
    WHERE asset_id = NEW.asset_id;
    RETURN NULL;
END $$;
CREATE TRIGGER search_ivf_exif_sync AFTER INSERT OR UPDATE ON exif
    FOR EACH ROW EXECUTE FUNCTION search_ivf_exif_sync();

INSERT INTO search_ivf (asset_id, list_id, owner_id, local_date_time, library_id, type, is_favorite, is_archived,
    visibility, is_offline, deleted_at, make, model, lens_model, city, state, country, rating, latitude, longitude,
    embedding)
SELECT s.asset_id, 0, s.owner_id, s.local_date_time, s.library_id, s.type, s.is_favorite, s.is_archived,
    s.visibility, s.is_offline, s.deleted_at, e.make, e.model, e.lens_model, e.city, e.state, e.country, e.rating,
    e.latitude, e.longitude, s.embedding::halfvec
FROM smart_search s LEFT JOIN exif e ON e.asset_id = s.asset_id;

-- The probe: lists first, then owner and date (the filters nearly every query has; PostgreSQL 18 skip-scans
-- the columns a query leaves out). Training CLUSTERs the table on this index.
CREATE INDEX search_ivf_list_idx ON search_ivf (list_id, owner_id, local_date_time);
-- When a filter matches so few rows that the probe would cover most lists, the path skips the lists and reads
-- every match (the planner's probes_for): by owner and date, or favourites (a few % of a library, a common filter).
CREATE INDEX search_ivf_owner_idx ON search_ivf (owner_id, local_date_time);
CREATE INDEX search_ivf_favorite_idx ON search_ivf (owner_id, local_date_time) WHERE is_favorite;
-- EXIF filters concentrate in a few lists (a city's photos look alike), so their probe often has to widen;
-- with the list second in the key it reads only the matching rows of each probed list, however many it takes.
CREATE INDEX search_ivf_city_idx ON search_ivf (city, list_id) WHERE city IS NOT NULL;
CREATE INDEX search_ivf_state_idx ON search_ivf (state, list_id) WHERE state IS NOT NULL;
CREATE INDEX search_ivf_country_idx ON search_ivf (country, list_id) WHERE country IS NOT NULL;
CREATE INDEX search_ivf_make_idx ON search_ivf (make, list_id) WHERE make IS NOT NULL;
CREATE INDEX search_ivf_model_idx ON search_ivf (model, list_id) WHERE model IS NOT NULL;
CREATE INDEX search_ivf_lens_idx ON search_ivf (lens_model, list_id) WHERE lens_model IS NOT NULL;

-- Migration 012's binary codes and their covering indexes are superseded by this table.
DROP INDEX IF EXISTS smart_search_live_code_idx;
DROP INDEX IF EXISTS smart_search_asset_code_idx;
DROP TRIGGER IF EXISTS smart_search_fill_code ON smart_search;
DROP FUNCTION IF EXISTS smart_search_fill_code();
ALTER TABLE smart_search DROP COLUMN IF EXISTS embedding_bq;
