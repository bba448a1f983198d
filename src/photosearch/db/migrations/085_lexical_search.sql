-- One search box (search/hybrid.py): the words of a text query are also looked up in file names, descriptions and
-- folders. A file name is matched by its beginning ("IMG_2682" finds IMG_2682.heic), which this B-tree serves
-- (text_pattern_ops: LIKE 'prefix%' whatever the collation); descriptions by their words, which this GIN index
-- serves (to_tsvector 'simple': every language, no stemming, as the OCR text in asset_text).
CREATE INDEX assets_file_name_prefix_idx ON assets (owner_id, lower(original_file_name) text_pattern_ops);
CREATE INDEX exif_description_words_idx ON exif USING gin (to_tsvector('simple', coalesce(description, '')));
