"""Bulk loading of synthetic libraries (tests and benchmarks) with COPY; the search schema's filter columns are
filled here, search_ivf by the triggers of migration 013."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import numpy as np
import psycopg

from photosearch.db.assets import refresh_planner_statistics


def bulk_insert_synthetic(conn: psycopg.Connection, lib: Any, *, root: str = "/synthetic") -> dict[str, UUID]:
    """Insert a `photosearch.search.synthetic.SyntheticLibrary` with COPY: users, one library per owner,
    assets, exif and embeddings. Returns {owner name: user id}. The caller commits."""
    from datetime import timedelta

    from photosearch.search.synthetic import CAMERAS, CITIES

    owners: dict[str, UUID] = {}
    libraries: dict[str, UUID] = {}
    for name in lib.owner_names:
        uid = conn.execute(
            "INSERT INTO users (name, email) VALUES (%s, %s) ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name"
            " RETURNING id",
            (name, f"{name.lower()}@example.org"),
        ).fetchone()[0]
        owners[name] = uid
        libraries[name] = conn.execute(
            "INSERT INTO libraries (owner_id, name, import_paths) VALUES (%s, %s, %s) RETURNING id",
            (uid, f"{name} photos", [f"{root}/{name}"]),
        ).fetchone()[0]
    n = len(lib)
    with conn.cursor() as cur:
        with cur.copy(
            "COPY assets (id, owner_id, library_id, type, original_path, original_file_name, checksum, file_size,"
            " file_created_at, file_modified_at, local_date_time, created_at, updated_at, is_favorite, is_archived,"
            " is_offline, deleted_at, indexed_at) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(
                ["uuid", "uuid", "uuid", "text", "text", "text", "bytea", "int8"]
                + ["timestamptz"] * 5
                + ["bool", "bool", "bool", "timestamptz", "timestamptz"]
            )
            for i in range(n):
                owner = lib.owner_names[lib.owner[i]]
                taken = lib.taken[i]
                added = taken + timedelta(days=int(i % 30))
                copy.write_row(
                    (
                        lib.ids[i],
                        owners[owner],
                        libraries[owner],
                        "VIDEO" if lib.is_video[i] else "IMAGE",
                        f"{root}/{owner}/{lib.file_names[i]}",
                        lib.file_names[i],
                        lib.ids[i].bytes,
                        1_000_000 + i,
                        taken,
                        taken,
                        taken,
                        added,
                        added,
                        bool(lib.is_favorite[i]),
                        bool(lib.is_archived[i]),
                        bool(lib.is_offline[i]),
                        added if lib.deleted[i] else None,
                        added,
                    )
                )
        with cur.copy(
            "COPY exif (asset_id, make, model, lens_model, latitude, longitude, city, state, country, rating,"
            " date_time_original) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(
                ["uuid", "text", "text", "text", "float8", "float8", "text", "text", "text", "int2", "timestamptz"]
            )
            for i in range(n):
                cam = CAMERAS[lib.camera[i]] if lib.camera[i] >= 0 else (None, None, None)
                place = CITIES[lib.city[i]] if lib.city[i] >= 0 else (None, None, None)
                lat = None if np.isnan(lib.latitude[i]) else float(lib.latitude[i])
                lon = None if np.isnan(lib.longitude[i]) else float(lib.longitude[i])
                rating = None if lib.rating[i] < -1 else int(lib.rating[i])
                copy.write_row((lib.ids[i], *cam, lat, lon, *place[:3], rating, lib.taken[i]))
        with cur.copy(
            "COPY smart_search (asset_id, embedding, owner_id, library_id, type, local_date_time, is_favorite,"
            " is_archived, visibility, is_offline, deleted_at) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(
                ["uuid", "vector", "uuid", "uuid", "text", "timestamptz", "bool", "bool", "text", "bool", "timestamptz"]
            )
            for i in range(n):
                owner = lib.owner_names[lib.owner[i]]
                added = lib.taken[i] + timedelta(days=int(i % 30))
                copy.write_row(
                    (
                        lib.ids[i], lib.embeddings[i], owners[owner], libraries[owner],
                        "VIDEO" if lib.is_video[i] else "IMAGE", lib.taken[i], bool(lib.is_favorite[i]),
                        bool(lib.is_archived[i]), "timeline", bool(lib.is_offline[i]),
                        added if lib.deleted[i] else None,
                    )
                )  # fmt: skip
    refresh_planner_statistics(conn)
    return owners
