-- Text read in photos (OCR), one row per asset once read. `checksum` is the content the text was read from: a
-- changed file is read again. A photo that failed keeps a row with its error, so it is not retried until it
-- changes. `words` serves word search (to_tsvector 'simple': every language, no stemming); substring search
-- (scripts without spaces, parts of words) reads `text` with ILIKE: the table holds only the photos' text.
CREATE TABLE asset_text (
    asset_id    uuid PRIMARY KEY REFERENCES assets (id) ON DELETE CASCADE,
    checksum    bytea NOT NULL,
    text        text NOT NULL DEFAULT '',
    error       text,
    read_at     timestamptz NOT NULL DEFAULT now(),
    words       tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED
);
CREATE INDEX asset_text_words_idx ON asset_text USING gin (words);
