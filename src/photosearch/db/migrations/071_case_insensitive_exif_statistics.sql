-- Statistics of the lower-cased camera and place names on search_ivf, for the planner's estimates of those filters
-- (EXPLAIN, db/search.py estimate_matches). Migration 070's indexes on lower(column) are partial (WHERE column IS
-- NOT NULL), and PostgreSQL keeps no statistics for the expressions of partial indexes, so without these it
-- guessed 0.5 % of the rows for any name (50k photos: 250 estimated, 1,110 real for one city).
CREATE STATISTICS IF NOT EXISTS search_ivf_lower_city ON (lower(city)) FROM search_ivf;
CREATE STATISTICS IF NOT EXISTS search_ivf_lower_state ON (lower(state)) FROM search_ivf;
CREATE STATISTICS IF NOT EXISTS search_ivf_lower_country ON (lower(country)) FROM search_ivf;
CREATE STATISTICS IF NOT EXISTS search_ivf_lower_make ON (lower(make)) FROM search_ivf;
CREATE STATISTICS IF NOT EXISTS search_ivf_lower_model ON (lower(model)) FROM search_ivf;
CREATE STATISTICS IF NOT EXISTS search_ivf_lower_lens ON (lower(lens_model)) FROM search_ivf;
