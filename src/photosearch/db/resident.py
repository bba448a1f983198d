"""SQL of the search service's in-memory copy (photosearch.search.resident): the whole load of search_ivf with the
filter columns the copy checks itself, the rows the change log names, the flag re-read and the values filters are
compared by (PostgreSQL's own lower() and hashes, so the copy and the SQL filters agree)."""

from __future__ import annotations

import math
from typing import NamedTuple
from uuid import UUID

import numpy as np
import psycopg
from psycopg import sql

from photosearch.db.binary_copy import fill, records
from photosearch.db.counters import counter_sql, counter_value
from photosearch.search.filters import FLAG_ATTRIBUTES, HELD_ATTRIBUTES, HELD_COLUMNS, HELD_TEXT


class ResidentRows(NamedTuple):
    """What resident_lists reads: search_ivf in list order, with the filter columns the copy checks itself."""

    key: tuple[str | None, int | None]  # (trained_at, search_version), as SearchContext has them
    ids: np.ndarray  # (n,) 16-byte UUIDs
    vectors: np.ndarray  # (n, dim) float32
    offsets: np.ndarray  # (lists + 1,) int64: list i is rows offsets[i]:offsets[i+1]
    owners: np.ndarray  # (n,) int64: the first 8 bytes of owner_id (0 = none)
    taken: np.ndarray  # (n,) int64: local_date_time in µs since 2000-01-01 UTC (int64 min = none)
    texts: dict[str, np.ndarray]  # HELD_TEXT column -> (n,) int64: hashtextextended(lower(value), 0) (0 = none)
    favorites: np.ndarray  # (n,) bool: is_favorite
    live: np.ndarray  # (n,) bool: deleted_at IS NULL (not in the trash)
    timeline: np.ndarray  # (n,) bool: visibility = 'timeline'
    flags_version: int | None  # system_metadata.flags_version, read in the same snapshot
    attributes: dict[str, np.ndarray]  # HELD_ATTRIBUTES name -> (n,) int8 rating (-2 = none; -1 = rejected) or bool
    columns: dict[str, np.ndarray]  # HELD_COLUMNS name -> (n,) int64 library prefix (0 = none) or float32 (NaN = none)
    assets: AssetColumns | None = None  # what `assets` holds of every row (asset_columns)
    snapshot: str | None = None  # the snapshot it was read in (pg_snapshot text): later changes are the log's
    changed: np.ndarray | None = None  # (m,) 16-byte UUIDs: read with `since`, every id the log names (gone or not)
    store: np.ndarray | None = None  # the array `vectors` is the first rows of, with room for rows added later


class AssetColumns(NamedTuple):
    """What the copy holds from `assets` (not in search_ivf), in asset_id order: the ids, every file name
    lower-cased by PostgreSQL as one blob (each name followed by a NUL byte, which PostgreSQL text cannot contain;
    None unless the database is UTF-8), and the time each photo was added."""

    ids: np.ndarray  # (m,) 16-byte UUIDs
    names: bytes | None
    created: np.ndarray  # (m,) int64: created_at in µs since 2000-01-01 UTC


# What the copy holds beyond the owner, the date, the flags, the file names and added times: the table of filters
# (search/filters.py) says, per filter: EXIF texts as hashes (HELD_TEXT), a byte each (HELD_ATTRIBUTES: name -> (the
# search_ivf expression, its dtype); archived and offline are flags, re-read with the others by flag_rows), and the
# library (the first 8 bytes of its id, as the owner) and the GPS coordinates (float32; NaN = none) (HELD_COLUMNS:
# name -> (the search_ivf expression, its record fields, the copy's dtype)).
# per row beyond the vector: id, owner, taken, the text hashes, the flags and attributes; the id, date and owner
# orders and the sorted dates
RESIDENT_ROW_BYTES = 16 + 2 * 8 + 8 * len(HELD_TEXT) + 3 + len(HELD_ATTRIBUTES) + 8 + 4 + 4 + 16 + 8 + 8 + 8
# what asset_columns adds: an id while read, the name's row and end offset and ~24 bytes of name, created_at and its
# order and sorted copy
RESIDENT_NAME_BYTES = 16 + 8 + 8 + 24 + 3 * 8


def resident_lists(
    conn: psycopg.Connection, budget_bytes: int, *, since: str | None = None, spare: float = 0.0
) -> ResidentRows | str:
    """Every row of search_ivf with its owner, date taken, EXIF place and camera, and flags (ResidentRows), read in one
    snapshot with the key it is current for; or why not, when it would take more than `budget_bytes`. Binary
    COPY of fixed-width rows, parsed by numpy in chunks: 1M x 512 in ~10 s, without a Python object per row. The
    texts come as 64-bit hashes (fixed width); a collision can only let a row through that PostgreSQL then
    filters out.

    `since` (a snapshot an earlier read returned): only the rows of the photos the change log (migration 056) names
    as changed since then, with those ids in `changed`. `spare`: room for that many more rows (a share of these)
    in the vectors' array (`store`), so changes can be added without a second copy."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    key_row = conn.execute(
        "SELECT (SELECT value->>'trained_at' FROM system_metadata WHERE key = 'search_lists'),"  # noqa: S608 - constant SQL
        f" {counter_sql('search_version')},"
        " (SELECT (value->>'dim')::int FROM system_metadata WHERE key = 'embedding'),"
        f" {counter_sql('flags_version')}, pg_current_snapshot()::text"
    ).fetchone()
    key = (key_row[0], counter_value(key_row[1]))
    dim = int(key_row[2] or 0)
    flags_version = counter_value(key_row[3])
    changed, only, params = None, sql.SQL(""), {}
    if since is not None:
        found = conn.execute(
            "SELECT DISTINCT asset_id FROM search_changes WHERE NOT pg_visible_in_snapshot(xid, %s::pg_snapshot)",
            (since,),
        ).fetchall()
        changed = np.array([r[0].bytes for r in found], dtype="V16")
        only, params = sql.SQL(" WHERE asset_id = ANY(%(ids)s)"), {"ids": [r[0] for r in found]}
    counts = conn.execute(
        sql.SQL("SELECT list_id, count(*) FROM search_ivf{} GROUP BY list_id ORDER BY list_id").format(only), params
    ).fetchall()
    n = sum(int(c) for _, c in counts)
    need = n * (dim * 4 * (1 + spare) + RESIDENT_ROW_BYTES + RESIDENT_NAME_BYTES)
    if need > budget_bytes:
        return f"{n} rows x {dim} dimensions need {need / 2**20:.0f} MB > the {budget_bytes / 2**20:.0f} MB allowed"
    sizes = np.zeros((max((int(x) for x, _ in counts), default=-1) + 1,), dtype=np.int64)
    for list_id, count in counts:
        sizes[int(list_id)] = int(count)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    store = np.empty((n + int(math.ceil(n * spare)), dim), dtype=np.float32)
    out = _columns(n, store)
    pos = 0
    with conn.cursor().copy(_copy_statement(only), params or None) as copy:
        for rows in records(copy, _record(dim)):
            pos = fill(out, rows, pos)
    if pos != n:
        raise RuntimeError(f"search_ivf changed while it was read: {pos} rows, expected {n}")
    return ResidentRows(
        key,
        out["id"],
        out["vec"],
        offsets,
        out["owner"],
        out["taken"],
        {column: out[column] for column in HELD_TEXT},
        out["favorite"],
        out["live"],
        out["timeline"],
        flags_version,
        {name: out[name] for name in HELD_ATTRIBUTES},
        {name: out[name] for name in HELD_COLUMNS},
        asset_columns(conn, params.get("ids")),
        key_row[4],
        changed,
        store,
    )


def _columns(n: int, store: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays a COPY of `n` rows is read into (db.binary_copy.fill), by _record's field names; the vectors
    into the first rows of `store`."""
    return {
        "id": np.empty(n, dtype="V16"),
        "vec": store[:n],
        "owner": np.empty(n, dtype=np.int64),
        "taken": np.empty(n, dtype=np.int64),
        **{column: np.empty(n, dtype=np.int64) for column in HELD_TEXT},
        "favorite": np.empty(n, dtype=bool),
        "live": np.empty(n, dtype=bool),
        "timeline": np.empty(n, dtype=bool),
        **{name: np.empty(n, dtype=dtype) for name, (_, dtype) in HELD_ATTRIBUTES.items()},
        **{name: np.empty(n, dtype=dtype) for name, (_, _, dtype) in HELD_COLUMNS.items()},
    }


def _record(dim: int) -> np.dtype:
    """A row of _copy_statement's COPY BINARY (db.binary_copy): per row a field count (int2) and each field's length
    (int4) and bytes, big-endian: list_id int2, asset_id uuid, owner_id uuid (its first 8 bytes read as one int8),
    local_date_time (int8 µs), the HELD_TEXT hashes (int8 each), the flags (is_favorite, not trashed, on the
    timeline: bools), the HELD_ATTRIBUTES (int2 for an int8 one: the rating; else bools), the HELD_COLUMNS (the
    library uuid, its first 8 bytes read as one int8; latitude and longitude float4), embedding halfvec (int2 dim,
    int2 unused, dim x float16). NULLs are coalesced so every row has the same width."""
    return np.dtype(
        [("nf", ">i2"), ("l1", ">i4"), ("list", ">i2"), ("l2", ">i4"), ("id", "V16"), ("l3", ">i4"), ("owner", ">i8"),
         ("owner_lo", "V8"), ("l4", ">i4"), ("taken", ">i8"),
         *[f for column in HELD_TEXT for f in ((f"l_{column}", ">i4"), (column, ">i8"))], ("l6", ">i4"),
         ("favorite", "?"), ("l7", ">i4"), ("live", "?"), ("l8", ">i4"), ("timeline", "?"),
         *[f for name, (_, dtype) in HELD_ATTRIBUTES.items()
           for f in ((f"l_{name}", ">i4"), (name, ">i2" if np.dtype(dtype) == np.int8 else "?"))],
         *[f for name, (_, kinds, _) in HELD_COLUMNS.items()
           for f in ((f"l_{name}", ">i4"), *((name + "_lo" * i, kind) for i, kind in enumerate(kinds)))],
         ("l9", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("vec", ">f2", (dim,))]
    )  # fmt: skip


def _copy_statement(only: sql.Composable) -> sql.Composed:
    """The COPY of search_ivf's rows (`only`: a WHERE clause, or nothing) whose rows _record reads."""
    hashes = sql.SQL("").join(
        sql.SQL("coalesce(hashtextextended(lower({}), 0), 0), ").format(sql.Identifier(column)) for column in HELD_TEXT
    )
    return sql.SQL(
        "COPY (SELECT list_id, asset_id, coalesce(owner_id, '00000000-0000-0000-0000-000000000000'),"
        " coalesce(local_date_time, '-infinity'), {hashes} coalesce(is_favorite, false),"
        " deleted_at IS NULL, coalesce(visibility = 'timeline', false), {attributes}, {columns}, embedding"
        " FROM search_ivf{only} ORDER BY list_id) TO STDOUT (FORMAT BINARY)"
    ).format(
        hashes=hashes,
        attributes=sql.SQL(", ").join(sql.SQL(expr) for expr, _ in HELD_ATTRIBUTES.values()),
        columns=sql.SQL(", ").join(sql.SQL(expr) for expr, _, _ in HELD_COLUMNS.values()),
        only=only,
    )


def asset_columns(conn: psycopg.Connection, ids: list[UUID] | None = None) -> AssetColumns:
    """What the copy holds from `assets` for every search_ivf row (in the caller's snapshot). File names only in
    a UTF-8 database: there ILIKE lower-cases both sides with lower() and then compares bytes, so a name containing
    lower(needle) here is exactly a name ILIKE '%needle%' there. Aggregates in asset_id order, sent as bytea:
    ~4 s at 1M photos, no Python object per row. `ids`: only those photos'."""
    utf8 = conn.info.parameter_status("server_encoding") == "UTF8"
    names = "convert_to(lower(a.original_file_name), 'UTF8') || '\\x00'::bytea" if utf8 else "NULL::bytea"
    ids, blob, created = conn.execute(
        "SELECT string_agg(uuid_send(s.asset_id), ''::bytea ORDER BY s.asset_id),"  # noqa: S608 - constant SQL
        f" string_agg({names}, ''::bytea ORDER BY s.asset_id),"
        " string_agg(timestamptz_send(a.created_at), ''::bytea ORDER BY s.asset_id)"
        " FROM search_ivf s JOIN assets a ON a.id = s.asset_id"
        + ("" if ids is None else " WHERE s.asset_id = ANY(%s)"),
        None if ids is None else (ids,),
        binary=True,
    ).fetchone()
    return AssetColumns(
        np.frombuffer(ids or b"", dtype="V16"),
        bytes(blob or b"") if utf8 else None,
        np.frombuffer(created or b"", dtype=">i8").astype(np.int64),
    )


def prune_changes(conn: psycopg.Connection, snapshot: str, minutes: float = 5.0) -> int:
    """Delete the change log's entries that `snapshot` saw (a copy read in it has them) and that are older than
    `minutes` (another process's copy may not have them yet). Returns how many."""
    return conn.execute(
        "DELETE FROM search_changes WHERE pg_visible_in_snapshot(xid, %s::pg_snapshot)"
        " AND at < now() - make_interval(secs => %s)",
        (snapshot, minutes * 60),
    ).rowcount


def lowered(conn: psycopg.Connection, value: str) -> bytes:
    """`value` lower-cased by PostgreSQL, UTF-8: what a held file name is searched for."""
    return bytes(conn.execute("SELECT convert_to(lower(%s), 'UTF8')", (value,), binary=True).fetchone()[0])


class FlagRows(NamedTuple):
    """The photos whose flags are not the common ones (a favourite, in the trash, off the timeline, archived or
    offline)."""

    version: int | None  # system_metadata.flags_version, read in the same snapshot
    ids: np.ndarray  # (m,) 16-byte UUIDs
    favorite: np.ndarray  # (m,) bool
    live: np.ndarray  # (m,) bool: not in the trash
    timeline: np.ndarray  # (m,) bool: visibility = 'timeline'
    archived: np.ndarray  # (m,) bool
    offline: np.ndarray  # (m,) bool


_FLAGS = ("favorite", "live", "timeline", *FLAG_ATTRIBUTES)
# A row of flag_rows' binary COPY (db.binary_copy): the id, then each flag
_FLAG_RECORD = np.dtype(
    [("nf", ">i2"), ("l1", ">i4"), ("id", "V16"), ("l2", ">i4"), ("favorite", "?"), ("l3", ">i4"), ("live", "?"),
     ("l4", ">i4"), ("timeline", "?"), ("l5", ">i4"), ("archived", "?"), ("l6", ">i4"), ("offline", "?")]
)  # fmt: skip


def flag_rows(conn: psycopg.Connection) -> FlagRows:
    """What the in-memory copy re-reads when only flags changed (every other photo: not a favourite, not
    trashed, on the timeline, not archived, not offline), found through smart_search's partial indexes for
    each, in one snapshot. Binary COPY, so no Python object per row."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    version = conn.execute(f"SELECT {counter_sql('flags_version')}").fetchone()[0]  # noqa: S608 - constant
    with conn.cursor().copy(
        "COPY (SELECT asset_id, coalesce(is_favorite, false), deleted_at IS NULL,"
        " coalesce(visibility = 'timeline', false), coalesce(is_archived, false), coalesce(is_offline, false)"
        " FROM smart_search WHERE is_favorite OR deleted_at IS NOT NULL OR visibility <> 'timeline'"
        " OR is_archived OR is_offline) TO STDOUT (FORMAT BINARY)"
    ) as copy:
        rows = np.concatenate([np.zeros(0, dtype=_FLAG_RECORD), *records(copy, _FLAG_RECORD)])
    return FlagRows(counter_value(version), rows["id"].copy(), *(rows[name].copy() for name in _FLAGS))


def text_hash(conn: psycopg.Connection, value: str) -> int:
    """The hash resident_lists holds for an EXIF text `value`: of the value lower-cased, as the filters compare
    (PostgreSQL's own lower() and hash, so the copy and the SQL filters agree)."""
    return int(conn.execute("SELECT hashtextextended(lower(%s), 0)", (value,)).fetchone()[0])
