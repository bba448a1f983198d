"""SQL for assets, their EXIF rows and embeddings, and ingest errors (writes by the ingest pipeline,
plus read helpers anyone can use).

An index run holds one dedicated connection (`IngestConnection`): its temporary tables carry the scan
(`scanned`), the work list (`todo`) and each batch's rows (`stage`), so memory in Python stays flat however
big the library is. Each batch is one transaction: asset, EXIF and embedding rows of a file commit
together or not at all, so a SIGKILL at any moment leaves no half-written photo.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import dict_row

from photosearch.db.pool import Database

# (column, postgres type) of the staging table, in COPY order. Asset columns, then EXIF, then the vector.
STAGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "uuid"),
    ("original_path", "text"),
    ("original_file_name", "text"),
    ("checksum", "bytea"),
    ("file_size", "int8"),
    ("file_created_at", "timestamptz"),
    ("file_modified_at", "timestamptz"),
    ("local_date_time", "timestamptz"),
    ("width", "int4"),
    ("height", "int4"),
    ("thumbhash", "bytea"),
    ("thumbnail_path", "text"),
    ("preview_path", "text"),
    ("sidecar_path", "text"),
    ("make", "text"),
    ("model", "text"),
    ("lens_model", "text"),
    ("exposure_time", "text"),
    ("f_number", "float4"),
    ("focal_length", "float4"),
    ("iso", "int4"),
    ("orientation", "int2"),
    ("exif_image_width", "int4"),
    ("exif_image_height", "int4"),
    ("latitude", "float8"),
    ("longitude", "float8"),
    ("city", "text"),
    ("state", "text"),
    ("country", "text"),
    ("time_zone", "text"),
    ("date_time_original", "timestamptz"),
    ("description", "text"),
    ("rating", "int2"),
    ("embedding", "vector"),
)
_FIRST_EXIF = [c for c, _ in STAGE_COLUMNS].index("make")
_ASSET_COLS = [c for c, _ in STAGE_COLUMNS[1:_FIRST_EXIF]]
_EXIF_COLS = [c for c, _ in STAGE_COLUMNS[_FIRST_EXIF:-1]]


@dataclass(frozen=True)
class ScanCounts:
    seen: int
    todo: int
    unchanged: int
    known_errors: int
    offline: int
    back_online: int
    swept_at: datetime | None = None


class IngestConnection:
    """One connection for one index run (autocommit; explicit transactions per batch)."""

    def __init__(self, db: Database) -> None:
        self.conn = psycopg.connect(db.dsn, autocommit=True, prepare_threshold=None)
        register_vector(self.conn)
        self._stage_ready = False

    def close(self) -> None:
        """Release the run's advisory locks first: closing only asks the server to end the session, which frees
        them a moment later, and a run started right after (the next `photosearch index`) would find its library
        still locked."""
        if not self.conn.closed and self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            try:
                self.conn.execute("SELECT pg_advisory_unlock_all()")
            except psycopg.Error:
                pass  # the connection is gone: so are its locks
        self.conn.close()

    def __enter__(self) -> IngestConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- locking ---------------------------------------------------------------------------------

    def try_lock_library(self, library_id: UUID) -> bool:
        """Session advisory lock: two runs on one library would race on the same files."""
        row = self.conn.execute("SELECT pg_try_advisory_lock(hashtext('ingest'), hashtext(%s))", (str(library_id),))
        return bool(row.fetchone()[0])

    # ---- scan → work list ------------------------------------------------------------------------

    def begin_scan(self) -> None:
        self.conn.execute("DROP TABLE IF EXISTS scanned, todo")
        self.conn.execute("CREATE TEMP TABLE scanned (n bigserial, path text NOT NULL, size int8, mtime timestamptz)")

    def add_scanned(self, rows: Iterable[tuple[str, int, datetime]]) -> None:
        with self.conn.cursor() as cur, cur.copy("COPY scanned (path, size, mtime) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["text", "int8", "timestamptz"])
            for r in rows:
                cp.write_row(r)

    def finish_scan(self, library_id: UUID, roots: list[str] | None = None) -> ScanCounts:
        """Mark-and-sweep against the scan: what is gone goes offline, what came back comes online, and
        the files that need work (new, changed, not embedded, not a known unchanged failure) go to `todo`.
        With `roots`, only paths under those folders are swept (a partial scan of the library)."""
        c = self.conn
        params = {"lib": library_id, "roots": roots}
        with c.transaction():
            c.execute("CREATE UNIQUE INDEX ON scanned (path)")
            c.execute("ANALYZE scanned")
            seen = c.execute("SELECT count(*) FROM scanned").fetchone()[0]
            offline = c.execute(
                "UPDATE assets a SET is_offline = true, offline_since = now(), updated_at = now()"
                " WHERE a.library_id = %(lib)s AND NOT a.is_offline"
                " AND NOT EXISTS (SELECT 1 FROM scanned s WHERE s.path = a.original_path)"
                " AND (%(roots)s::text[] IS NULL OR EXISTS (SELECT 1 FROM unnest(%(roots)s::text[]) r"
                "  WHERE starts_with(a.original_path, rtrim(r, '/') || '/')))",
                params,
            ).rowcount
            back = c.execute(
                "UPDATE assets a SET is_offline = false, updated_at = now(),"
                " deleted_at = CASE WHEN a.offline_since IS NOT NULL THEN NULL ELSE a.deleted_at END,"
                " offline_since = NULL"
                " FROM scanned s WHERE a.library_id = %s AND a.original_path = s.path AND a.is_offline"
                " AND a.file_size = s.size AND a.file_modified_at = s.mtime AND a.indexed_at IS NOT NULL",
                (library_id,),
            ).rowcount
            c.execute(
                "DELETE FROM ingest_errors e WHERE e.library_id = %(lib)s"
                " AND NOT EXISTS (SELECT 1 FROM scanned s WHERE s.path = e.path)"
                " AND (%(roots)s::text[] IS NULL OR EXISTS (SELECT 1 FROM unnest(%(roots)s::text[]) r"
                "  WHERE starts_with(e.path, rtrim(r, '/') || '/')))",
                params,
            )
            c.execute(
                "CREATE TEMP TABLE todo AS"
                " SELECT s.n, s.path, s.size, s.mtime, a.id AS asset_id,"
                "  CASE WHEN a.indexed_at IS NOT NULL THEN a.checksum END AS known_checksum,"
                "  (e.id IS NOT NULL AND e.file_size = s.size AND e.file_modified_at = s.mtime) AS known_error"
                " FROM scanned s"
                " LEFT JOIN assets a ON a.library_id = %(lib)s AND a.original_path = s.path"
                " LEFT JOIN ingest_errors e ON e.library_id = %(lib)s AND e.path = s.path"
                " WHERE a.id IS NULL OR a.file_size <> s.size OR a.file_modified_at <> s.mtime"
                "  OR a.indexed_at IS NULL",
                {"lib": library_id},
            )
            known_errors = c.execute("DELETE FROM todo WHERE known_error").rowcount
            c.execute("CREATE UNIQUE INDEX ON todo (n)")
            todo = c.execute("SELECT count(*) FROM todo").fetchone()[0]
            swept_at = c.execute("SELECT now()").fetchone()[0]
        return ScanCounts(seen, todo, seen - todo - known_errors, known_errors, offline, back, swept_at)

    def todo_page(self, after_n: int, limit: int) -> list[tuple[int, str, int, datetime, UUID | None, bytes | None]]:
        """Keyset paging through the work list (no cursor held open across batch transactions)."""
        return self.conn.execute(
            "SELECT n, path, size, mtime, asset_id, known_checksum FROM todo WHERE n > %s ORDER BY n LIMIT %s",
            (after_n, limit),
        ).fetchall()

    # ---- batch writes ----------------------------------------------------------------------------

    def embedded_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM smart_search").fetchone()[0]

    def assets_by_checksum(self, owner_id: UUID, checksums: Sequence[bytes]) -> dict[bytes, list[dict[str, Any]]]:
        """The owner's assets with these contents (several paths may hold the same bytes)."""
        out: dict[bytes, list[dict[str, Any]]] = {}
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT id, library_id, original_path, checksum, is_offline FROM assets"
                " WHERE owner_id = %s AND checksum = ANY(%s) ORDER BY is_offline DESC, id",
                (owner_id, list(checksums)),
            )
            for r in cur.fetchall():
                out.setdefault(bytes(r["checksum"]), []).append(r)
        return out

    def _ensure_stage(self) -> None:
        if self._stage_ready:
            return
        cols = ", ".join(f"{c} {t}" for c, t in STAGE_COLUMNS)
        self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS stage ({cols}) ON COMMIT DELETE ROWS")  # noqa: S608
        self._stage_ready = True

    def write_batch(
        self,
        owner_id: UUID,
        library_id: UUID,
        rows: Sequence[Sequence[Any]],
        errors: Sequence[tuple[str, str, str, int | None, datetime | None]] = (),
        delete_ids: Sequence[UUID] = (),
    ) -> None:
        """One transaction: stage rows by binary COPY, then upsert assets, EXIF and embeddings from it,
        clear the files' old errors, record new ones. `rows` follow STAGE_COLUMNS; embedding may be None
        (same content as stored: keep the old vector)."""
        self._ensure_stage()
        c = self.conn
        asset_cols = ", ".join(_ASSET_COLS)
        exif_cols = ", ".join(_EXIF_COLS)
        with c.transaction():
            if delete_ids:
                c.execute("DELETE FROM assets WHERE id = ANY(%s)", (list(delete_ids),))
            if rows:
                with c.cursor() as cur:
                    names = ", ".join(col for col, _ in STAGE_COLUMNS)
                    with cur.copy(f"COPY stage ({names}) FROM STDIN (FORMAT BINARY)") as cp:  # noqa: S608
                        cp.set_types([t for _, t in STAGE_COLUMNS])
                        for r in rows:
                            cp.write_row(r)
                updates = ", ".join(f"{col} = EXCLUDED.{col}" for col in _ASSET_COLS if col != "thumbhash")
                c.execute(
                    f"INSERT INTO assets (id, owner_id, library_id, {asset_cols}, indexed_at)"  # noqa: S608
                    f" SELECT id, %(owner)s, %(lib)s, {asset_cols},"
                    "  CASE WHEN embedding IS NOT NULL THEN now() END FROM stage"
                    f" ON CONFLICT (id) DO UPDATE SET {updates}, library_id = EXCLUDED.library_id,"
                    "  thumbhash = COALESCE(EXCLUDED.thumbhash, assets.thumbhash),"
                    "  indexed_at = COALESCE(EXCLUDED.indexed_at, assets.indexed_at),"
                    "  is_offline = false, offline_since = NULL, updated_at = now()",
                    {"owner": owner_id, "lib": library_id},
                )
                exif_updates = ", ".join(f"{col} = EXCLUDED.{col}" for col in _EXIF_COLS)
                c.execute(
                    f"INSERT INTO exif (asset_id, {exif_cols}) SELECT id, {exif_cols} FROM stage"  # noqa: S608
                    f" ON CONFLICT (asset_id) DO UPDATE SET {exif_updates}, updated_at = now()"
                )
                c.execute(
                    "INSERT INTO smart_search (asset_id, embedding) SELECT id, embedding FROM stage"
                    " WHERE embedding IS NOT NULL"
                    " ON CONFLICT (asset_id) DO UPDATE SET embedding = EXCLUDED.embedding"
                )
                c.execute(
                    "DELETE FROM ingest_errors e USING stage s WHERE e.library_id = %s AND e.path = s.original_path",
                    (library_id,),
                )
            if errors:
                with c.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO ingest_errors (library_id, path, reason, detail, file_size, file_modified_at)"
                        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (library_id, path) DO UPDATE SET"
                        " reason = EXCLUDED.reason, detail = EXCLUDED.detail, file_size = EXCLUDED.file_size,"
                        " file_modified_at = EXCLUDED.file_modified_at, occurred_at = now()",
                        [(library_id, *e) for e in errors],
                    )

    def record_error(self, library_id: UUID, path: str, reason: str, detail: str) -> None:
        self.write_batch(UUID(int=0), library_id, [], [(path, reason, detail, None, None)])

    # ---- end of run ------------------------------------------------------------------------------

    def trash_offline(self, library_id: UUID, days: int) -> int:
        """Move assets offline for more than `days` to the trash (they come back if the file does)."""
        return self.conn.execute(
            "UPDATE assets SET deleted_at = now(), updated_at = now() WHERE library_id = %s AND is_offline"
            " AND deleted_at IS NULL AND offline_since < now() - make_interval(days => %s)",
            (library_id, days),
        ).rowcount

    def count_offline_since(self, library_id: UUID, since: datetime) -> int:
        """Assets that went offline in this run's sweep and stayed offline (moves brought the rest back)."""
        return self.conn.execute(
            "SELECT count(*) FROM assets WHERE library_id = %s AND is_offline AND offline_since >= %s",
            (library_id, since),
        ).fetchone()[0]

    def mark_refreshed(self, library_id: UUID) -> None:
        self.conn.execute("UPDATE libraries SET refreshed_at = now() WHERE id = %s", (library_id,))

    def unused_checksums(self, checksums: Sequence[bytes]) -> list[bytes]:
        """Of these checksums, the ones no asset has any more (their thumbnails can go)."""
        rows = self.conn.execute(
            "SELECT c FROM unnest(%s::bytea[]) AS c WHERE NOT EXISTS (SELECT 1 FROM assets WHERE checksum = c)",
            (list(checksums),),
        ).fetchall()
        return [bytes(r[0]) for r in rows]


# ---- reads for everyone --------------------------------------------------------------------------

_ASSET_SELECT = (
    "SELECT a.id, a.owner_id, a.library_id, a.type, a.original_path, a.original_file_name, a.checksum,"
    " a.file_size, a.file_created_at, a.file_modified_at, a.local_date_time, a.width, a.height,"
    " a.is_favorite, a.is_archived, a.visibility, a.is_offline, a.deleted_at, a.thumbhash,"
    " a.thumbnail_path, a.preview_path, a.sidecar_path, a.created_at, a.updated_at, a.indexed_at,"
    " e.make, e.model, e.lens_model, e.exposure_time, e.f_number, e.focal_length, e.iso, e.orientation,"
    " e.exif_image_width, e.exif_image_height, e.latitude, e.longitude, e.city, e.state, e.country,"
    " e.time_zone, e.date_time_original, e.description, e.rating"
    " FROM assets a LEFT JOIN exif e ON e.asset_id = a.id"
)


def get_asset_by_path(db: Database, library_id: UUID, path: str) -> dict | None:
    """`path` as stored (see `photosearch.ingest.scan.db_path`)."""
    with db.cursor() as cur:
        cur.execute(_ASSET_SELECT + " WHERE a.library_id = %s AND a.original_path = %s", (library_id, path))
        return cur.fetchone()


def list_assets(db: Database, library_id: UUID, *, include_offline: bool = True) -> list[dict]:
    with db.cursor() as cur:
        cur.execute(
            _ASSET_SELECT + " WHERE a.library_id = %s AND (%s OR NOT a.is_offline) ORDER BY a.original_path",
            (library_id, include_offline),
        )
        return cur.fetchall()


def get_embedding(db: Database, asset_id: UUID) -> Any:
    with db.cursor() as cur:
        cur.execute("SELECT embedding FROM smart_search WHERE asset_id = %s", (asset_id,))
        row = cur.fetchone()
    return row["embedding"] if row else None


def list_ingest_errors(
    db: Database, *, library_id: UUID | None = None, owner_id: UUID | None = None, limit: int = 1000
) -> list[dict]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT l.name AS library, e.path, e.reason, e.detail, e.occurred_at FROM ingest_errors e"
            " JOIN libraries l ON l.id = e.library_id"
            " WHERE (%(lib)s::uuid IS NULL OR e.library_id = %(lib)s::uuid)"
            " AND (%(owner)s::uuid IS NULL OR l.owner_id = %(owner)s::uuid)"
            " ORDER BY l.name, e.path LIMIT %(limit)s",
            {"lib": library_id, "owner": owner_id, "limit": limit},
        )
        return cur.fetchall()


def asset_counts(db: Database, library_id: UUID) -> dict[str, int]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT count(*) AS assets, count(*) FILTER (WHERE a.is_offline) AS offline,"
            " count(s.asset_id) AS embedded, count(DISTINCT a.original_path) AS paths,"
            " (SELECT count(*) FROM ingest_errors WHERE library_id = %(lib)s) AS errors"
            " FROM assets a LEFT JOIN smart_search s ON s.asset_id = a.id WHERE a.library_id = %(lib)s",
            {"lib": library_id},
        )
        return cur.fetchone()


def refresh_planner_statistics(conn: psycopg.Connection) -> None:
    """ANALYZE the tables the search planner estimates from; autovacuum may take minutes to notice a bulk load."""
    for table in ("assets", "exif", "smart_search", "search_ivf"):
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
