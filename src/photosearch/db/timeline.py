"""The web timeline and the owner's bulk actions: keyset pages by date taken, month buckets for the
scrubber, favourite/archive/trash/restore on many assets at once, and the trash itself.

Every statement is scoped to one owner. Timeline pages use a (local_date_time, id) cursor rather than
OFFSET, so a jump to any month of a 100k library reads one page from the (owner, date) index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from photosearch.db.pool import Database

TIMELINE_COLUMNS = (
    "a.id, a.library_id, a.type, a.original_file_name, a.original_path, a.file_size, a.file_created_at,"
    " a.local_date_time, a.width, a.height, a.is_favorite, a.is_archived, a.is_offline, a.deleted_at,"
    " e.make, e.model, e.lens_model, e.latitude, e.longitude, e.city, e.state, e.country, e.rating, e.description"
)
_ON_TIMELINE = "a.deleted_at IS NULL AND NOT a.is_archived AND a.visibility = 'timeline'"
# Actions of POST /api/assets/bulk -> the SET clause they run (all constant SQL, never user text).
ACTIONS = {
    "favorite": "is_favorite = true",
    "unfavorite": "is_favorite = false",
    "archive": "is_archived = true",
    "unarchive": "is_archived = false",
    "trash": "deleted_at = now()",
    "restore": "deleted_at = NULL",
}


def timeline_page(
    db: Database,
    user_id: UUID,
    limit: int,
    *,
    cursor: tuple[datetime, UUID] | None = None,
    before: datetime | None = None,
    newer_than: tuple[datetime, UUID] | None = None,
) -> list[dict[str, Any]]:
    """One page of the owner's timeline, newest first.

    `cursor`: rows after this (date, id) in timeline order (the next page). `before`: rows taken before
    this instant (a scrubber jump). `newer_than`: the rows just above this (date, id), for scrolling
    back up after a jump; still returned newest first."""
    params: dict[str, Any] = {"owner": user_id, "limit": limit}
    where = ["a.owner_id = %(owner)s", _ON_TIMELINE]
    order = "a.local_date_time DESC, a.id DESC"
    if cursor is not None:
        where.append("(a.local_date_time, a.id) < (%(c_ts)s, %(c_id)s)")
        params.update(c_ts=cursor[0], c_id=cursor[1])
    if before is not None:
        where.append("a.local_date_time < %(before)s")
        params["before"] = before
    if newer_than is not None:
        where.append("(a.local_date_time, a.id) > (%(n_ts)s, %(n_id)s)")
        params.update(n_ts=newer_than[0], n_id=newer_than[1])
        order = "a.local_date_time ASC, a.id ASC"
    sql = (
        f"SELECT {TIMELINE_COLUMNS} FROM assets a LEFT JOIN exif e ON e.asset_id = a.id"  # noqa: S608 - constants
        f" WHERE {' AND '.join(where)} ORDER BY {order} LIMIT %(limit)s"
    )
    with db.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    return rows[::-1] if newer_than is not None else rows


def month_buckets(db: Database, user_id: UUID) -> list[dict[str, Any]]:
    """How many timeline photos each month holds, newest month first (dates taken, read as UTC like
    the rest of the timeline). Grouped on the truncated timestamp; only the ~100s of groups are formatted."""
    month = "date_trunc('month', a.local_date_time AT TIME ZONE 'UTC')"
    sql = f"SELECT {month} AS m, count(*)::int AS n FROM assets a WHERE a.owner_id = %s AND {_ON_TIMELINE}"  # noqa: S608
    with db.cursor() as cur:
        cur.execute(
            f"SELECT to_char(m, 'YYYY-MM') AS month, n AS count FROM ({sql} GROUP BY 1) b ORDER BY m DESC",  # noqa: S608
            (user_id,),
        )
        return cur.fetchall()


def bulk_update(db: Database, user_id: UUID, ids: list[UUID], action: str) -> int:
    """Apply one of ACTIONS to the owner's assets among `ids`; how many changed. Restoring touches
    only trashed assets, everything else only live ones."""
    live = "deleted_at IS NOT NULL" if action == "restore" else "deleted_at IS NULL"
    sql = f"UPDATE assets SET {ACTIONS[action]}, updated_at = now() WHERE owner_id = %s AND id = ANY(%s) AND {live}"  # noqa: S608
    with db.cursor() as cur:
        cur.execute(sql, (user_id, ids))
        return cur.rowcount


def trash_page(db: Database, user_id: UUID, limit: int, offset: int) -> list[dict[str, Any]]:
    """The owner's trash, most recently trashed first."""
    sql = f"SELECT {TIMELINE_COLUMNS} FROM assets a LEFT JOIN exif e ON e.asset_id = a.id"  # noqa: S608
    with db.cursor() as cur:
        cur.execute(
            sql
            + " WHERE a.owner_id = %s AND a.deleted_at IS NOT NULL ORDER BY a.deleted_at DESC, a.id LIMIT %s OFFSET %s",
            (user_id, limit, offset),
        )
        return cur.fetchall()


def empty_trash(db: Database, user_id: UUID) -> list[dict[str, Any]]:
    """Delete the owner's trashed assets from the index; returns their paths and library kinds so the
    caller can remove uploaded originals (files in the owner's folders are never touched)."""
    with db.cursor() as cur:
        cur.execute(
            "DELETE FROM assets a USING libraries l WHERE l.id = a.library_id AND a.owner_id = %s"
            " AND a.deleted_at IS NOT NULL RETURNING a.original_path, l.name AS library_name, l.import_paths",
            (user_id,),
        )
        return cur.fetchall()


def assets_for_download(db: Database, user_id: UUID, ids: list[UUID]) -> list[dict[str, Any]]:
    """The owner's live assets among `ids` with their library roots (for the path check), in `ids` order."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT a.id, a.original_path, a.original_file_name, l.import_paths FROM assets a"
            " JOIN libraries l ON l.id = a.library_id"
            " JOIN unnest(%s::uuid[]) WITH ORDINALITY AS want(id, n) ON want.id = a.id"
            " WHERE a.owner_id = %s AND a.deleted_at IS NULL ORDER BY want.n",
            (ids, user_id),
        )
        return cur.fetchall()
