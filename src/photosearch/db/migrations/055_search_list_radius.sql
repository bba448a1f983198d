-- Search: each list's radius, as the smallest cosine between its centroid and a row assigned to it at training.
-- A probe keeps adding lists while a list's best possible similarity to the query (from the centroid's
-- similarity and this radius: search.planner.list_bounds) can beat the page's last row. -1 = not known (lists
-- trained before this column existed): the bound then ignores the radius, which only makes it larger.
ALTER TABLE search_centroids ADD COLUMN min_cosine real NOT NULL DEFAULT -1;
