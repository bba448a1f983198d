-- Camera and place filters compare case-insensitively (`--make canon` finds "Canon"): db/search.py's filters test
-- lower(column) = lower(value), and the in-memory copy holds hashes of the lower-cased values. The indexes the
-- filters use are re-created on lower(column), so the probes stay index scans and ANALYZE keeps statistics of the
-- lower-cased values for the planner's estimates (EXPLAIN).
DROP INDEX IF EXISTS search_ivf_city_idx;
DROP INDEX IF EXISTS search_ivf_state_idx;
DROP INDEX IF EXISTS search_ivf_country_idx;
DROP INDEX IF EXISTS search_ivf_make_idx;
DROP INDEX IF EXISTS search_ivf_model_idx;
DROP INDEX IF EXISTS search_ivf_lens_idx;
CREATE INDEX search_ivf_city_idx ON search_ivf (lower(city), list_id) WHERE city IS NOT NULL;
CREATE INDEX search_ivf_state_idx ON search_ivf (lower(state), list_id) WHERE state IS NOT NULL;
CREATE INDEX search_ivf_country_idx ON search_ivf (lower(country), list_id) WHERE country IS NOT NULL;
CREATE INDEX search_ivf_make_idx ON search_ivf (lower(make), list_id) WHERE make IS NOT NULL;
CREATE INDEX search_ivf_model_idx ON search_ivf (lower(model), list_id) WHERE model IS NOT NULL;
CREATE INDEX search_ivf_lens_idx ON search_ivf (lower(lens_model), list_id) WHERE lens_model IS NOT NULL;

DROP INDEX IF EXISTS exif_make_model_idx;
DROP INDEX IF EXISTS exif_lens_idx;
DROP INDEX IF EXISTS exif_place_idx;
CREATE INDEX exif_make_model_idx ON exif (lower(make), lower(model));
CREATE INDEX exif_lens_idx ON exif (lower(lens_model));
CREATE INDEX exif_place_idx ON exif (lower(country), lower(state), lower(city));
