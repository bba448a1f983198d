"""Search SQL: filter compilation (from the table of filters, search/filters.py), planner settings, the search
context, match estimates and counts, hydration. The kNN statements are in db.knn, the in-memory copy's reads in
db.resident, the users directory in db.user_directory, duplicates SQL in db.duplicates.

Every value is a bound parameter (`%(pN)s`); identifiers never come from user input. Each kNN statement is
sent in one pipeline with its planner settings (`set_config(..., is_local => true)`): on a connection in
autocommit mode the pipeline is one implicit transaction, so the settings hold for that statement alone and
cost no round trip of their own (SearchService.search).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from photosearch.db.counters import counter_sql, counter_value
from photosearch.search.filters import FILTERS, FilterInput
from photosearch.search.filters import like_pattern as like_pattern  # the filters' own, for db.lexical

if TYPE_CHECKING:
    from photosearch.search.query import SearchQuery

# Operator per distance; the HNSW index is cosine. On L2-normalised embeddings (all CLIP towers) the three
# orders coincide, so the approximate path ranks candidates by cosine and re-scores with the chosen metric.
OPERATORS = {"cosine": "<=>", "l2": "<->", "ip": "<#>"}


@dataclass
class Where:
    """A compiled filter, named parameters. Over `smart_search s` (which carries copies of the common asset
    columns, migration 011) joining `assets a` / `exif e` only when a filter needs them; or, for the quantized
    path, over `search_ivf c` (migration 013), which also carries the EXIF filter columns."""

    clause: sql.Composable
    params: dict[str, Any] = field(default_factory=dict)
    needs_assets: bool = False
    needs_exif: bool = False
    conditions: int = 0
    ivf: bool = False

    @property
    def from_clause(self) -> sql.Composable:
        parts = ["search_ivf c" if self.ivf else "smart_search s"]
        if self.needs_assets:
            parts.append("JOIN assets a ON a.id = {}.asset_id".format("c" if self.ivf else "s"))
        if self.needs_exif:
            parts.append("LEFT JOIN exif e ON e.asset_id = s.asset_id")
        return sql.SQL(" ".join(parts))


class _Builder:
    def __init__(self, ivf: bool) -> None:
        self.parts: list[sql.Composable] = []
        self.params: dict[str, Any] = {}
        self.needs_exif = False
        self.needs_assets = False
        self.ivf = ivf

    def p(self, value: Any) -> sql.Placeholder:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return sql.Placeholder(name)

    def add(self, template: str, *values: Any, exif: bool = False, assets: bool = False) -> None:
        if self.ivf:  # search_ivf holds the smart_search and exif columns under the same names
            template = _S_OR_E.sub("c.", template)
            exif = False
        self.parts.append(sql.SQL(template).format(*(self.p(v) for v in values)))
        self.needs_exif |= exif
        self.needs_assets |= assets


_S_OR_E = re.compile(r"\b[se]\.")


def compile_filters(
    q: SearchQuery, owner_ids: Sequence[UUID] | None, exclude_asset: UUID | None = None, *, ivf: bool = False
) -> Where:
    """Turn the query's filters into a WHERE clause: each entry of the table of filters (search/filters.py) in
    order. `owner_ids=None` means every owner (admin, no filter). `ivf=True` compiles the same filters over
    search_ivf (the quantized path)."""
    b = _Builder(ivf)
    given = FilterInput(q, owner_ids, exclude_asset)
    for entry in FILTERS:
        for template, values, join in entry.where(given):
            b.add(template, *values, exif=join == "exif", assets=join == "assets")
    clause = sql.SQL(" AND ").join(b.parts) if b.parts else sql.SQL("true")
    return Where(
        clause=clause,
        params=b.params,
        needs_assets=b.needs_assets,
        needs_exif=b.needs_exif,
        conditions=len(b.parts),
        ivf=ivf,
    )


# ---- session settings ----------------------------------------------------------------------------


Settings = dict[str, str | int | float]


def set_local(conn: psycopg.Connection, settings: Settings) -> None:
    """`SET LOCAL` for each setting in one statement, bound (set_config) so no value is spliced into SQL."""
    if not settings:
        return
    calls = sql.SQL(", ").join(sql.SQL("set_config(%s, %s, true)") for _ in settings)
    params = [x for name, value in settings.items() for x in (name, str(value))]
    conn.execute(sql.SQL("SELECT {}").format(calls), params)


def _fetch(
    conn: psycopg.Connection, query: sql.Composable, params: dict[str, Any], settings: Settings | None
) -> list[tuple]:
    """Run `query` after its `settings`, sent together in one pipeline (one round trip, not two). In
    autocommit mode the pipeline is one implicit transaction, so the settings end with it; inside an explicit
    transaction they last until its end, as SET LOCAL does. Rows come back in binary: a 64-row page of hits
    (timestamps, uuids, text) converts ~1 ms faster than in text, on both sides."""
    if not settings:
        return conn.execute(query, params, binary=True).fetchall()
    with conn.pipeline():
        set_local(conn, settings)
        return conn.execute(query, params, binary=True).fetchall()


@dataclass(frozen=True)
class SearchContext:
    """What every search reads first: embedding dimension, embedded rows (statistics), search lists."""

    dim: int
    total: int
    lists: int  # trained search lists, 1 = none
    lists_version: str | None  # changes whenever the lists are re-trained (keys the centroid cache)
    index_type: str = "vector"  # the HNSW index: over vector or halfvec (db.embedding.hnsw_order)
    users_version: int | None = None  # bumped by every change to `users` (migration 040; keys the users cache)
    search_version: int | None = None  # bumped by every change to smart_search (migration 041; keys the resident copy)
    flags_version: int | None = None  # bumped when a favourite, trash or visibility flag changes (migration 043)


_CONTEXT = (
    "SELECT (SELECT value FROM system_metadata WHERE key = 'embedding'),"  # noqa: S608 - constant SQL
    " (SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = 'smart_search'::regclass),"
    " (SELECT value FROM system_metadata WHERE key = 'search_lists'),"
    f" {counter_sql('users_version')}, {counter_sql('search_version')}, {counter_sql('flags_version')}"
)


def estimate_matches(conn: psycopg.Connection, where: Where) -> int:
    """The planner's estimate of the rows `where` matches (EXPLAIN, no execution)."""
    return _plan_rows(conn.execute(_explain(where), where.params).fetchone()[0])


def begin_search(conn: psycopg.Connection) -> SearchContext:
    """Read the SearchContext. The estimate of the filters' matches (estimate_matches) is a statement of its own,
    sent after it when needed: here a psycopg pipeline of the two cost more (0.72 ms) than sending them one after
    the other (0.60 ms), and a search whose filters the in-memory copy holds needs no EXPLAIN."""
    row = conn.execute(_CONTEXT, prepare=True).fetchone()  # same text every time: plan it once
    embedding, lists = row[0] or {}, row[2] or {}
    return SearchContext(
        dim=int(embedding.get("dim") or 0),
        total=int(row[1] or 0),
        lists=int(lists.get("lists") or 1),
        lists_version=lists.get("trained_at"),
        index_type=str(embedding.get("index_type") or "vector"),
        users_version=counter_value(row[3]),
        search_version=counter_value(row[4]),
        flags_version=counter_value(row[5]),
    )


def centroids(conn: psycopg.Connection) -> np.ndarray:
    """The search lists' centroids, row i = list i (an empty array before training)."""
    rows = conn.execute("SELECT centroid FROM search_centroids ORDER BY list_id").fetchall()
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([np.asarray(r[0].to_numpy(), dtype=np.float32) for r in rows])


def list_radii(conn: psycopg.Connection) -> np.ndarray:
    """Each search list's radius (migration 055: the smallest cosine between its centroid and a row of it at
    training; -1 = not known), row i = list i."""
    rows = conn.execute("SELECT min_cosine FROM search_centroids ORDER BY list_id").fetchall()
    return np.array([r[0] for r in rows], dtype=np.float32)


# ---- estimates -------------------------------------------------------------------------------------


def _explain(where: Where) -> sql.Composable:
    """The planner's row estimate for the filter (statistics only, no scan: ~0.2 ms), read by _plan_rows."""
    return sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM {} WHERE {}").format(where.from_clause, where.clause)


def _plan_rows(plan: Any) -> int:
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def count_matches(
    conn: psycopg.Connection,
    where: Where,
    limit: int | None = None,
    *,
    lists: Sequence[int] | None = None,
    settings: Settings | None = None,
) -> int:
    """Matching assets that have an embedding, counted up to `limit` (a bounded count stops early); with
    `lists` (a search_ivf `where`), only those in the given search lists."""
    inner = sql.SQL("SELECT 1 FROM {} WHERE {}{}").format(where.from_clause, _in_lists(lists is not None), where.clause)
    if limit is not None:
        inner = sql.SQL("{} LIMIT {}").format(inner, sql.Literal(int(limit)))
    params = {**where.params, "lists": list(lists) if lists is not None else None}
    return int(_fetch(conn, sql.SQL("SELECT count(*) FROM ({}) m").format(inner), params, settings)[0][0])


def _in_lists(some: bool) -> sql.Composable:
    """The search-list condition (with its trailing AND) of a search_ivf query, on the lists in %(lists)s when
    `some`; nothing for every list."""
    return sql.SQL("c.list_id = ANY(%(lists)s::int2[]) AND ") if some else sql.SQL("")


# ---- lookups -----------------------------------------------------------------------------------


HIT_COLUMNS = (
    "a.id, a.owner_id, u.name AS owner_name, a.library_id, a.type, a.original_path, a.original_file_name,"
    " a.file_size, a.local_date_time, a.file_created_at, a.created_at, a.updated_at, a.width, a.height,"
    " a.is_favorite, a.is_archived, a.visibility, a.is_offline, a.deleted_at, a.thumbnail_path, a.preview_path,"
    " e.make, e.model, e.lens_model, e.city, e.state, e.country, e.latitude, e.longitude, e.rating, e.description"
)


HIT_NAMES = [c.split(" AS ")[-1].split(".")[-1].strip() for c in HIT_COLUMNS.split(",")]


def hydrate(conn: psycopg.Connection, ids: Sequence[UUID]) -> dict[UUID, dict]:
    """Asset + EXIF fields for the hits of one page."""
    if not ids:
        return {}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {HIT_COLUMNS} FROM assets a JOIN users u ON u.id = a.owner_id"  # noqa: S608 - constant
            " LEFT JOIN exif e ON e.asset_id = a.id WHERE a.id = ANY(%s)",
            (list(ids),),
            prepare=True,  # planning this three-table join cost more than running it
        )
        return {r["id"]: r for r in cur.fetchall()}


def asset_embedding(conn: psycopg.Connection, asset_id: UUID) -> tuple[UUID, np.ndarray] | None:
    """(owner_id, embedding) of one asset, or None when it does not exist or has no embedding yet."""
    row = conn.execute(
        "SELECT a.owner_id, s.embedding FROM assets a JOIN smart_search s ON s.asset_id = a.id WHERE a.id = %s",
        (asset_id,),
    ).fetchone()
    if row is None:
        return None
    return row[0], np.asarray(row[1].to_numpy() if hasattr(row[1], "to_numpy") else row[1], dtype=np.float32)


def asset_exists(conn: psycopg.Connection, asset_id: UUID) -> UUID | None:
    row = conn.execute("SELECT owner_id FROM assets WHERE id = %s", (asset_id,)).fetchone()
    return row[0] if row else None


def embedding_dim(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT (value->>'dim')::int FROM system_metadata WHERE key = 'embedding'").fetchone()
    return int(row[0]) if row else 0
