-- One search box (search/hybrid.py): a word of a query that is the name of the folder holding photos ("kyoto-2019")
-- finds them. This index holds each photo's folder name (the last folder of its path, lower-cased), so looking a
-- word up is an index probe, not a scan of every path (db/lexical.py: FOLDER is the same expression). The name
-- comes first in both indexes so that a probe serves every owner (an administrator) as well as one.
CREATE INDEX assets_folder_idx ON assets (lower(substring(original_path from '([^/\\]+)[/\\][^/\\]*$')), owner_id);
DROP INDEX IF EXISTS assets_file_name_prefix_idx;
CREATE INDEX assets_file_name_prefix_idx ON assets (lower(original_file_name) text_pattern_ops, owner_id);
