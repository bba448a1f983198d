-- The web timeline pages by (date taken, id), newest first, over live, unarchived, visible photos; this
-- partial index serves the first page, every next page (keyset cursor) and a scrubber jump (`before`)
-- as one short index range, at any depth of a large library. It also answers the month buckets.
CREATE INDEX IF NOT EXISTS assets_timeline_idx ON assets (owner_id, local_date_time DESC, id DESC)
    WHERE deleted_at IS NULL AND NOT is_archived AND visibility = 'timeline';
