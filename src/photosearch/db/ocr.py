"""SQL for text read in photos (OCR): the pass's work list and writes, and the text-only search."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from photosearch.db.search import Where
from photosearch.search.filters import like_pattern

OCR_FAILED = "ocr_failed"

# Photos of a library that have no text read from their current content: indexed, online, images.
_TODO = (
    " FROM assets a LEFT JOIN asset_text t ON t.asset_id = a.id"
    " WHERE a.library_id = %(lib)s AND a.indexed_at IS NOT NULL AND NOT a.is_offline AND a.type = 'IMAGE'"
    " AND (t.asset_id IS NULL OR t.checksum <> a.checksum)"
)


def count_unread(conn: psycopg.Connection, library_id: UUID) -> int:
    return conn.execute("SELECT count(*)" + _TODO, {"lib": library_id}).fetchone()[0]  # noqa: S608 - constant


def unread_page(conn: psycopg.Connection, library_id: UUID, after: UUID, limit: int) -> list[tuple]:
    """Keyset page: (id, checksum, original_path, preview_path, file_size, file_modified_at)."""
    return conn.execute(
        "SELECT a.id, a.checksum, a.original_path, a.preview_path, a.file_size, a.file_modified_at"  # noqa: S608
        + _TODO
        + " AND a.id > %(after)s ORDER BY a.id LIMIT %(limit)s",
        {"lib": library_id, "after": after, "limit": limit},
    ).fetchall()


def write_text(conn: psycopg.Connection, library_id: UUID, row: tuple, text: str, error: str | None) -> None:
    """One photo's result in one transaction (a killed pass loses at most the photo it was reading). A failure
    is also listed by `photosearch errors`; a success clears that."""
    aid, checksum, path, _, size, mtime = row
    with conn.transaction():
        conn.execute(
            "INSERT INTO asset_text (asset_id, checksum, text, error) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (asset_id) DO UPDATE SET checksum = EXCLUDED.checksum, text = EXCLUDED.text,"
            " error = EXCLUDED.error, read_at = now()",
            (aid, checksum, text, error),
        )
        if error is None:
            conn.execute(
                "DELETE FROM ingest_errors WHERE library_id = %s AND path = %s AND reason = %s",
                (library_id, path, OCR_FAILED),
            )
        else:
            conn.execute(
                "INSERT INTO ingest_errors (library_id, path, reason, detail, file_size, file_modified_at)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (library_id, path) DO UPDATE SET"
                " reason = EXCLUDED.reason, detail = EXCLUDED.detail, file_size = EXCLUDED.file_size,"
                " file_modified_at = EXCLUDED.file_modified_at, occurred_at = now()",
                (library_id, path, OCR_FAILED, error, size, mtime),
            )


def text_condition() -> str:
    """The filter "the photo shows this text": every word (in any order), or the text as a substring (no word
    breaks in CJK scripts; part of a word). Two placeholders: the text, then like_pattern(text)."""
    return (
        "EXISTS (SELECT 1 FROM asset_text t WHERE t.asset_id = s.asset_id"
        " AND (t.words @@ plainto_tsquery('simple', {}) OR t.text ILIKE {} ESCAPE '\\'))"
    )


def text_values(text: str) -> tuple[str, str]:
    return text, like_pattern(text)


def rank_by_text(
    conn: psycopg.Connection, where: Where, text: str, limit: int, offset: int
) -> list[tuple[UUID, float]]:
    """Photos matching the filters (which include the text filter), best text match first: the whole text as it
    was typed (substring) scores 1, every word 0.5 more, plus how dense the words are (ts_rank_cd, < 0.5); then
    newest first. Returns (id, score)."""
    params: dict[str, Any] = {**where.params, "_q": text, "_like": like_pattern(text), "_limit": limit, "_off": offset}
    query = sql.SQL(
        "SELECT s.asset_id, (t.text ILIKE %(_like)s ESCAPE '\\')::int"
        " + 0.5 * (t.words @@ plainto_tsquery('simple', %(_q)s))::int"
        " + 0.5 * ts_rank_cd(t.words, plainto_tsquery('simple', %(_q)s), 32) AS score"
        " FROM {from_} JOIN asset_text t ON t.asset_id = s.asset_id WHERE {clause}"
        " ORDER BY score DESC, s.local_date_time DESC, s.asset_id LIMIT %(_limit)s OFFSET %(_off)s"
    ).format(from_=where.from_clause, clause=where.clause)
    return [(r[0], float(r[1])) for r in conn.execute(query, params).fetchall()]


def text_of(conn: psycopg.Connection, ids: Sequence[UUID]) -> dict[UUID, str]:
    rows = conn.execute("SELECT asset_id, text FROM asset_text WHERE asset_id = ANY(%s)", (list(ids),)).fetchall()
    return {r[0]: r[1] for r in rows}
