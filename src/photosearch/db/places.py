"""SQL for filling place names and time zones of already indexed photos from their GPS position."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import psycopg

# A located photo needs work when it names no place, or its date taken has no zone (a naive EXIF date:
# date_time_original holds the wall clock as if UTC). A place far from any town stays empty and is looked at
# again next time; a lookup costs microseconds.
_TODO = (
    "SELECT e.asset_id, e.latitude, e.longitude,"
    " (e.city IS NULL AND e.state IS NULL AND e.country IS NULL) AS need_place,"
    " CASE WHEN e.time_zone IS NULL THEN e.date_time_original END AS naive_taken"
    " FROM exif e WHERE e.latitude IS NOT NULL AND e.longitude IS NOT NULL AND e.asset_id > %s"
    " AND ((e.city IS NULL AND e.state IS NULL AND e.country IS NULL)"
    "  OR (e.time_zone IS NULL AND e.date_time_original IS NOT NULL))"
    " ORDER BY e.asset_id LIMIT %s"
)


def located_without_place(
    conn: psycopg.Connection, after: UUID, limit: int
) -> list[tuple[UUID, float, float, bool, datetime | None]]:
    """Keyset page of located photos missing a place or a zone: (id, lat, lon, need_place, naive date)."""
    return conn.execute(_TODO, (after, limit)).fetchall()


def write_places(
    conn: psycopg.Connection,
    places: Sequence[tuple[UUID, str | None, str | None, str | None]],
    zones: Sequence[tuple[UUID, str, datetime, datetime]],
) -> None:
    """One transaction: place names (id, city, state, country); zones (id, zone, old instant, new instant).
    The asset's date taken moves with date_time_original only where it was that date (not the file's mtime)."""
    with conn.transaction():
        if places:
            ids, city, state, country = (list(c) for c in zip(*places, strict=True))
            conn.execute(
                "UPDATE exif e SET city = v.city, state = v.state, country = v.country, updated_at = now()"
                " FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[]) AS v(id, city, state, country)"
                " WHERE e.asset_id = v.id",
                (ids, city, state, country),
            )
        if zones:
            ids, zone, old, new = (list(c) for c in zip(*zones, strict=True))
            params = (ids, zone, old, new)
            conn.execute(
                "UPDATE exif e SET time_zone = v.zone, date_time_original = v.new, updated_at = now()"
                " FROM unnest(%s::uuid[], %s::text[], %s::timestamptz[], %s::timestamptz[]) AS v(id, zone, old, new)"
                " WHERE e.asset_id = v.id AND e.time_zone IS NULL",
                params,
            )
            conn.execute(
                "UPDATE assets a SET file_created_at = v.new, updated_at = now()"
                " FROM unnest(%s::uuid[], %s::text[], %s::timestamptz[], %s::timestamptz[]) AS v(id, zone, old, new)"
                " WHERE a.id = v.id AND a.file_created_at = v.old",
                params,
            )
