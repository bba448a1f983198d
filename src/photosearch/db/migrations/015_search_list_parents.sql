-- Search lists in two levels (photosearch.search.lists): ~sqrt(rows) parents, each split into 8 search lists.
-- A new row's list is the nearest list of its nearest parent, as training assigns them: 1,000 parent centroids
-- and 8 list centroids to compare instead of all 8,000 lists at 1M rows. Lists trained before this migration
-- have no parent, and keep the flat assignment until the next training.
CREATE TABLE search_list_parents (
    parent_id smallint PRIMARY KEY,
    centroid  vector NOT NULL
);
ALTER TABLE search_list_parents ALTER COLUMN centroid SET STORAGE PLAIN;
ALTER TABLE search_centroids ADD COLUMN parent_id smallint;
CREATE INDEX search_centroids_parent_idx ON search_centroids (parent_id);

CREATE OR REPLACE FUNCTION search_list_of(v vector) RETURNS smallint LANGUAGE sql STABLE AS $$
    SELECT coalesce(
        (SELECT c.list_id FROM search_centroids c
         WHERE c.parent_id = (SELECT p.parent_id FROM search_list_parents p ORDER BY p.centroid <#> v LIMIT 1)
         ORDER BY c.centroid <#> v LIMIT 1),
        (SELECT c.list_id FROM search_centroids c ORDER BY c.centroid <#> v LIMIT 1),
        0::smallint)
$$;

-- Near queries probe whole parents: one descent per parent (and owner) in this index, instead of one per list in
-- search_ivf_list_idx (1M rows, 100 parents' 800 lists, 4 owners: 6.4 ms against 11.4 ms). The divisor is
-- photosearch.db.search_lists.LISTS_PER_PARENT. Training CLUSTERs on search_ivf_list_idx, which keeps a
-- parent's lists together on disk too.
CREATE INDEX search_ivf_parent_idx ON search_ivf ((list_id / 8), owner_id, local_date_time);
