"""SQL for libraries: folders of photos with one owner each, never overlapping another library's folders."""

from __future__ import annotations

import os
from pathlib import PurePath
from uuid import UUID

import psycopg

from photosearch.db.accounts import Conflict, NotFound
from photosearch.db.pool import Database


def _overlap(a: str, b: str) -> bool:
    pa, pb = PurePath(a), PurePath(b)
    return pa == pb or pa.is_relative_to(pb) or pb.is_relative_to(pa)


def check_overlap(cur: psycopg.Cursor, import_paths: list[str], library_id: UUID | None = None) -> None:
    """Refuse folders that are, contain, or sit inside another library's folder (symlinks resolved): the
    same file in two libraries would be indexed twice, possibly for two owners."""
    cur.execute("LOCK TABLE libraries IN SHARE ROW EXCLUSIVE MODE")  # two creations cannot both pass
    cur.execute(
        "SELECT l.name, l.import_paths, u.email FROM libraries l JOIN users u ON u.id = l.owner_id"
        " WHERE %(lib)s::uuid IS NULL OR l.id <> %(lib)s::uuid",
        {"lib": library_id},
    )
    for other in cur.fetchall():
        for theirs in other["import_paths"]:
            for mine in import_paths:
                if _overlap(os.path.realpath(mine), os.path.realpath(theirs)) or _overlap(mine, theirs):
                    how = "is" if os.path.realpath(mine) == os.path.realpath(theirs) else "overlaps"
                    raise Conflict(
                        f"folder {mine} {how} {theirs} of library {other['name']!r} (owner {other['email']});"
                        " a folder can belong to one library only"
                    )


def create_library(
    db: Database,
    owner_id: UUID,
    name: str,
    import_paths: list[str],
    exclusion_patterns: list[str] | None = None,
) -> dict:
    """Create a library; refused when a folder overlaps another library's (`check_overlap`)."""
    with db.cursor() as cur:
        check_overlap(cur, import_paths)
        try:
            cur.execute(
                "INSERT INTO libraries (owner_id, name, import_paths, exclusion_patterns)"
                " VALUES (%s, %s, %s, %s) RETURNING *",
                (owner_id, name, import_paths, exclusion_patterns or []),
            )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(f"a library named {name!r} already exists") from exc
        return cur.fetchone()


def update_library_paths(db: Database, library_id: UUID, import_paths: list[str]) -> dict:
    """Replace a library's folders; a folder inside another of the same library is dropped (the outer one
    covers it); overlapping another library's is refused."""
    kept = [p for p in import_paths if not any(q != p and PurePath(p).is_relative_to(q) for q in import_paths)]
    with db.cursor() as cur:
        check_overlap(cur, kept, library_id)
        cur.execute(
            "UPDATE libraries SET import_paths = %s, updated_at = now() WHERE id = %s RETURNING *",
            (list(dict.fromkeys(kept)), library_id),
        )
        return cur.fetchone()


def give_library(db: Database, library_id: UUID, to_user_id: UUID) -> dict:
    """Hand a library and its photos to another user. Moving assets.owner_id reaches the search tables by
    trigger (migrations 011/013) and bumps search_version (042/046), so searches see the new owner at once.
    Refused when the receiver already has a library of that name or one of the same photos (same content)."""
    with db.cursor() as cur:
        cur.execute("SELECT * FROM libraries WHERE id = %s FOR UPDATE", (library_id,))
        lib = cur.fetchone()
        if lib is None:
            raise NotFound(f"no library {library_id}")
        if lib["owner_id"] == to_user_id:
            return {**lib, "assets": 0}
        cur.execute(
            "SELECT count(*) AS n FROM assets a JOIN assets b ON b.checksum = a.checksum AND b.owner_id = %s"
            " WHERE a.library_id = %s",
            (to_user_id, library_id),
        )
        dupes = cur.fetchone()["n"]
        if dupes:
            raise Conflict(
                f"the receiver already has {dupes} of library {lib['name']!r}'s photos (same content) in"
                " another library; remove them there first"
            )
        try:
            cur.execute(
                "UPDATE libraries SET owner_id = %s, updated_at = now() WHERE id = %s RETURNING *",
                (to_user_id, library_id),
            )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(f"the receiver already has a library named {lib['name']!r}; rename one first") from exc
        row = cur.fetchone()
        cur.execute(
            "UPDATE assets SET owner_id = %s, updated_at = now() WHERE library_id = %s", (to_user_id, library_id)
        )
        return {**row, "assets": cur.rowcount}


def list_libraries(db: Database, owner_id: UUID | None = None) -> list[dict]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT l.*, u.email AS owner_email,"
            " (SELECT count(*) FROM assets a WHERE a.library_id = l.id AND a.deleted_at IS NULL) AS assets"
            " FROM libraries l JOIN users u ON u.id = l.owner_id"
            " WHERE %(owner)s::uuid IS NULL OR l.owner_id = %(owner)s::uuid ORDER BY l.created_at",
            {"owner": owner_id},
        )
        return cur.fetchall()


def get_library(db: Database, ident: str | UUID, owner_id: UUID | None = None) -> dict:
    """By id or name; scoped to an owner when given."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT * FROM libraries WHERE (id::text = %(i)s OR name = %(i)s)"
            " AND (%(owner)s::uuid IS NULL OR owner_id = %(owner)s::uuid) ORDER BY created_at LIMIT 1",
            {"i": str(ident), "owner": owner_id},
        )
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no library {ident!r}")
    return row


def delete_library(db: Database, library_id: UUID) -> int:
    """Delete a library and (by cascade) its assets; returns how many assets went with it."""
    with db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM assets WHERE library_id = %s", (library_id,))
        n = cur.fetchone()["n"]
        cur.execute("DELETE FROM libraries WHERE id = %s", (library_id,))
        return n
