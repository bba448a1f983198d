-- Every path of a library is its own asset, even when another path holds the same bytes (as immich indexes an
-- external library): a second copy was refused as a "duplicate" error before, and a same-content overwrite of
-- two files left the second one's old photo behind. Checksums stay indexed for move detection and thumbnails.
ALTER TABLE assets DROP CONSTRAINT assets_owner_checksum_uq;
CREATE INDEX assets_owner_checksum_idx ON assets (owner_id, checksum);
-- Files refused as duplicates are indexed on the next run.
DELETE FROM ingest_errors WHERE reason = 'duplicate';
