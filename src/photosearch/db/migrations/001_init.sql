-- Core schema, shaped like immich's users / asset_entity / exif_info / smart_search (snake_case).
CREATE EXTENSION IF NOT EXISTS vector;

-- Key/value facts about this installation, e.g. the active embedding model and its dimension.
CREATE TABLE system_metadata (
    key   text PRIMARY KEY,
    value jsonb NOT NULL
);

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text NOT NULL,
    email         text NOT NULL UNIQUE,
    is_admin      boolean NOT NULL DEFAULT false,
    password_hash text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Only a hash of the secret is kept; `prefix` lets a user recognise a key in listings.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL,
    prefix       text NOT NULL,
    key_hash     text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

CREATE TABLE libraries (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name               text NOT NULL,
    import_paths       text[] NOT NULL DEFAULT '{}',
    exclusion_patterns text[] NOT NULL DEFAULT '{}',
    include_hidden     boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    refreshed_at       timestamptz,
    UNIQUE (owner_id, name)
);

CREATE TABLE assets (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    library_id         uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    type               text NOT NULL DEFAULT 'IMAGE' CHECK (type IN ('IMAGE', 'VIDEO')),
    original_path      text NOT NULL,
    original_file_name text NOT NULL,
    checksum           bytea NOT NULL,
    file_size          bigint NOT NULL,
    file_created_at    timestamptz NOT NULL,
    file_modified_at   timestamptz NOT NULL,
    local_date_time    timestamptz NOT NULL,  -- "date taken" by immich's priority rules
    width              integer,
    height             integer,
    is_favorite        boolean NOT NULL DEFAULT false,
    is_archived        boolean NOT NULL DEFAULT false,
    visibility         text NOT NULL DEFAULT 'timeline' CHECK (visibility IN ('timeline', 'hidden', 'locked')),
    is_offline         boolean NOT NULL DEFAULT false,
    deleted_at         timestamptz,
    thumbhash          bytea,
    thumbnail_path     text,
    preview_path       text,
    sidecar_path       text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    indexed_at         timestamptz,
    CONSTRAINT assets_library_path_uq UNIQUE (library_id, original_path),
    CONSTRAINT assets_owner_checksum_uq UNIQUE (owner_id, checksum)
);
CREATE INDEX assets_owner_taken_idx ON assets (owner_id, local_date_time DESC);
CREATE INDEX assets_owner_created_idx ON assets (owner_id, file_created_at DESC);
CREATE INDEX assets_owner_flags_idx ON assets (owner_id, is_favorite, is_archived, visibility) WHERE deleted_at IS NULL;
CREATE INDEX assets_library_idx ON assets (library_id);
CREATE INDEX assets_deleted_idx ON assets (owner_id, deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX assets_offline_idx ON assets (owner_id) WHERE is_offline;

CREATE TABLE exif (
    asset_id           uuid PRIMARY KEY REFERENCES assets (id) ON DELETE CASCADE,
    make               text,
    model              text,
    lens_model         text,
    exposure_time      text,
    f_number           real,
    focal_length       real,
    iso                integer,
    orientation        smallint,
    exif_image_width   integer,
    exif_image_height  integer,
    latitude           double precision,
    longitude          double precision,
    city               text,
    state              text,
    country            text,
    time_zone          text,
    date_time_original timestamptz,
    description        text,
    rating             smallint CHECK (rating BETWEEN -1 AND 5),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX exif_make_model_idx ON exif (make, model);
CREATE INDEX exif_lens_idx ON exif (lens_model);
CREATE INDEX exif_place_idx ON exif (country, state, city);
CREATE INDEX exif_rating_idx ON exif (rating) WHERE rating IS NOT NULL;
CREATE INDEX exif_gps_idx ON exif (latitude, longitude) WHERE latitude IS NOT NULL;

-- Embeddings live in their own narrow table (as in immich) so an exact scan reads little besides vectors.
-- The dimension follows the active model; changing it is an explicit re-embed (photosearch models use).
CREATE TABLE smart_search (
    asset_id  uuid PRIMARY KEY REFERENCES assets (id) ON DELETE CASCADE,
    embedding vector(512) NOT NULL
);

INSERT INTO system_metadata (key, value)
VALUES ('embedding', '{"model": "ViT-B-32__openai", "dim": 512}');

-- One row per file that could not be ingested (latest reason wins); cleared when the file ingests fine.
CREATE TABLE ingest_errors (
    id          bigserial PRIMARY KEY,
    library_id  uuid NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    path        text NOT NULL,
    reason      text NOT NULL,
    detail      text,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (library_id, path)
);
