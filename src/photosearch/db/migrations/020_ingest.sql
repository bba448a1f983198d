-- Ingest bookkeeping: when an asset went offline (for the trash-after-N-days rule), and the size/mtime
-- a failed file had, so an unchanged bad file is not decoded again on every run.
ALTER TABLE assets ADD COLUMN offline_since timestamptz;
ALTER TABLE ingest_errors ADD COLUMN file_size bigint;
ALTER TABLE ingest_errors ADD COLUMN file_modified_at timestamptz;
-- Duplicate detection looks assets up by checksum within an owner; (owner_id, checksum) is already unique.
CREATE INDEX assets_offline_since_idx ON assets (library_id, offline_since) WHERE is_offline;
