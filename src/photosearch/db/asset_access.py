"""Owner-scoped asset lookups for the REST API: one asset with its EXIF and its library's roots
(what file serving needs to check a path), and the counts that explain an empty result page."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from photosearch.db.pool import Database


def asset_for_user(db: Database, asset_id: UUID, user_id: UUID | None) -> dict[str, Any] | None:
    """The asset if `user_id` owns it (None = any owner, for admins' tools), with EXIF columns and the
    library's `import_paths`; None when missing, deleted or someone else's."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT a.*, l.import_paths, e.make, e.model, e.lens_model, e.exposure_time, e.f_number,"
            " e.focal_length, e.iso, e.latitude, e.longitude, e.city, e.state, e.country, e.time_zone,"
            " e.date_time_original, e.description, e.rating FROM assets a"
            " JOIN libraries l ON l.id = a.library_id"
            " LEFT JOIN exif e ON e.asset_id = a.id"
            " WHERE a.id = %(id)s AND a.deleted_at IS NULL"
            " AND (%(owner)s::uuid IS NULL OR a.owner_id = %(owner)s::uuid)",
            {"id": asset_id, "owner": user_id},
        )
        return cur.fetchone()


def indexed_counts(db: Database, user_id: UUID) -> dict[str, int]:
    """How many live assets the user has, and how many of them have an embedding."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT count(*) AS assets, count(s.asset_id) AS embedded FROM assets a"
            " LEFT JOIN smart_search s ON s.asset_id = a.id"
            " WHERE a.owner_id = %s AND a.deleted_at IS NULL",
            (user_id,),
        )
        row = cur.fetchone()
    return {"assets": int(row["assets"]), "embedded": int(row["embedded"])}


def has_photos(db: Database, user_id: UUID) -> dict[str, bool]:
    """Whether the user has any live asset, and any with an embedding: what a page needs to choose its
    empty state (two index probes, not counts over a large library)."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT 1 FROM assets WHERE owner_id = %(u)s AND deleted_at IS NULL) AS assets,"
            " EXISTS (SELECT 1 FROM smart_search WHERE owner_id = %(u)s AND deleted_at IS NULL) AS embedded",
            {"u": user_id},
        )
        return cur.fetchone()


def library_names(db: Database, user_id: UUID) -> list[dict[str, Any]]:
    """The user's libraries, id and name only (no per-library counts)."""
    with db.cursor() as cur:
        cur.execute("SELECT id, name FROM libraries WHERE owner_id = %s ORDER BY created_at", (user_id,))
        return cur.fetchall()


def filter_options(db: Database, user_id: UUID) -> dict[str, list[str]]:
    """Distinct cameras and places among the user's assets, for the web UI's filter suggestions."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT e.make, e.model, e.lens_model, e.country, e.state, e.city FROM exif e"
            " JOIN assets a ON a.id = e.asset_id WHERE a.owner_id = %s AND a.deleted_at IS NULL LIMIT 2000",
            (user_id,),
        )
        rows = cur.fetchall()
    pick = lambda key: sorted({r[key] for r in rows if r[key]})[:200]  # noqa: E731
    return {k: pick(k) for k in ("make", "model", "lens_model", "country", "state", "city")}


def photo_places(db: Database, user_id: UUID, limit: int = 300) -> list[dict[str, Any]]:
    """Cities the user's geotagged photos were taken in, each with the mean of their coordinates: the
    web UI's "near place" filter turns a name into a point with these."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT e.city AS name, avg(e.latitude) AS lat, avg(e.longitude) AS lon, count(*) AS n FROM exif e"
            " JOIN assets a ON a.id = e.asset_id WHERE a.owner_id = %s AND a.deleted_at IS NULL"
            " AND e.city IS NOT NULL AND e.latitude IS NOT NULL GROUP BY e.city ORDER BY n DESC LIMIT %s",
            (user_id, limit),
        )
        return cur.fetchall()


def recent_assets(db: Database, user_id: UUID, limit: int, offset: int) -> list[dict[str, Any]]:
    """The user's timeline, newest first (live, unarchived, visible): what the web UI shows before a query."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT a.id, a.library_id, a.type, a.original_file_name, a.original_path, a.file_size,"
            " a.file_created_at, a.local_date_time, a.width, a.height, a.is_favorite, a.is_archived, a.is_offline,"
            " e.make, e.model, e.lens_model, e.latitude, e.longitude, e.city, e.state, e.country, e.rating,"
            " e.description FROM assets a LEFT JOIN exif e ON e.asset_id = a.id"
            " WHERE a.owner_id = %s AND a.deleted_at IS NULL AND NOT a.is_archived AND a.visibility = 'timeline'"
            " ORDER BY a.local_date_time DESC, a.id DESC LIMIT %s OFFSET %s",
            (user_id, limit, offset),
        )
        return cur.fetchall()


def update_asset_flags(
    db: Database, asset_id: UUID, user_id: UUID, *, is_favorite: bool | None = None, is_archived: bool | None = None
) -> bool:
    """Set favorite/archived on the user's own asset; False when it is not theirs (or gone)."""
    with db.cursor() as cur:
        cur.execute(
            "UPDATE assets SET is_favorite = coalesce(%(fav)s, is_favorite),"
            " is_archived = coalesce(%(arch)s, is_archived), updated_at = now()"
            " WHERE id = %(id)s AND owner_id = %(owner)s AND deleted_at IS NULL",
            {"fav": is_favorite, "arch": is_archived, "id": asset_id, "owner": user_id},
        )
        return cur.rowcount == 1


def assets_by_id_prefix(db: Database, hex_prefix: str, user_id: UUID, limit: int = 4) -> list[UUID]:
    """The caller's asset ids starting with `hex_prefix` (lower-case hex, no dashes): a range scan of the
    primary key between the prefix padded with 0s and with fs, so it costs the same at any library size."""
    lo = UUID(hex_prefix.ljust(32, "0"))
    hi = UUID(hex_prefix.ljust(32, "f"))
    with db.cursor() as cur:
        cur.execute(
            "SELECT id FROM assets WHERE id BETWEEN %s AND %s AND owner_id = %s ORDER BY id LIMIT %s",
            (lo, hi, user_id, limit),
        )
        return [r["id"] for r in cur.fetchall()]
