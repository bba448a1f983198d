"""Search SQL: filter compilation, match estimates, the exact and approximate kNN queries, hydration. The in-memory
copy's reads are in db.resident, the users directory in db.user_directory, duplicates SQL in db.duplicates.

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
from photosearch.db.embedding import hnsw_order
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
    for entry in FILTERS:
        for template, values, join in entry.where(FilterInput(q, owner_ids, exclude_asset)):
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


# ---- the kNN queries -------------------------------------------------------------------------------


@dataclass
class Ranked:
    ids: list[UUID]
    distances: list[float]
    scanned: int | None = None  # exact/quantized: filtered rows seen (None = not bounded)
    hits: dict[UUID, dict] = field(default_factory=dict)  # the page's asset/EXIF fields, from the same statement


def _distance(metric: str, column: str = "s.embedding") -> sql.Composable:
    return sql.SQL("{} {} %(q)s").format(sql.SQL(column), sql.SQL(OPERATORS[metric]))


def _with_hits(query: sql.Composable) -> sql.Composable:
    """The page's rows joined to their asset/EXIF fields in the same statement: one round trip and one plan
    instead of a second query per search (~2 ms at 1M rows)."""
    return sql.SQL(
        "SELECT k.*, {cols} FROM ({q}) k JOIN assets a ON a.id = k.id JOIN users u ON u.id = a.owner_id"
        " LEFT JOIN exif e ON e.asset_id = a.id ORDER BY k.distance, k.id"
    ).format(cols=sql.SQL(HIT_COLUMNS), q=query)


def _ranked(rows: list, width: int, **extra: Any) -> Ranked:
    """Ranked from rows of _with_hits(query), whose first `width` columns are the path's own."""
    hits = {r[0]: dict(zip(HIT_NAMES, r[width:], strict=True)) for r in rows}
    return Ranked([r[0] for r in rows], [float(r[1]) for r in rows], hits=hits, **extra)


def _scanned(
    conn: psycopg.Connection,
    rows: list,
    where: Where,
    bound: int | None,
    settings: Settings | None,
    lists: Sequence[int] | None = None,
) -> int | None:
    """Filtered rows a bounded exact/quantized query saw: carried in column 2 of every row, or counted
    separately (in the probed `lists`) when the page came back empty (e.g. everything beyond `max_distance`)."""
    if rows:
        return int(rows[0][2])
    return count_matches(conn, where, bound + 1, lists=lists, settings=settings) if bound is not None else None


def exact_search(
    conn: psycopg.Connection,
    vector: np.ndarray,
    where: Where,
    *,
    metric: str,
    limit: int,
    offset: int = 0,
    max_distance: float | None = None,
    bound: int | None = None,
    settings: Settings | None = None,
) -> Ranked:
    """Filter first (B-tree/bitmap scans of smart_search's filter columns, or of exif/assets), compute the
    distance of just those rows, then top-k. Recall 1.0 by construction.

    With `bound`, at most bound+1 rows are gathered; `scanned > bound` tells the caller the estimate was
    wrong and the result is not complete (it then switches to the approximate path).
    """
    cap = sql.SQL("LIMIT {}").format(sql.Literal(int(bound) + 1)) if bound is not None else sql.SQL("")
    cutoff = sql.SQL("WHERE f.distance <= %(maxd)s") if max_distance is not None else sql.SQL("")
    # The CTE has no ORDER BY, so the HNSW index is never used here: this path is exact.
    query = sql.SQL(
        "WITH f AS MATERIALIZED (SELECT s.asset_id AS id, {dist} AS distance FROM {frm} WHERE {where} {cap})"
        " SELECT f.id, f.distance, (SELECT count(*) FROM f) AS scanned FROM f {cutoff}"
        " ORDER BY f.distance, f.id LIMIT %(lim)s OFFSET %(off)s"
    ).format(frm=where.from_clause, where=where.clause, cap=cap, dist=_distance(metric), cutoff=cutoff)
    params = {**where.params, "q": vector, "lim": limit, "off": offset, "maxd": max_distance}
    rows = _fetch(conn, _with_hits(query), params, settings)
    return _ranked(rows, 3, scanned=_scanned(conn, rows, where, bound, settings))


@dataclass(frozen=True)
class Rescue:
    """The search lists whose matching rows an HNSW query also ranks (approximate_search)."""

    where: Where  # compiled with ivf=True
    lists: Sequence[int]
    pool: int


def _list_ranking(
    where: Where, metric: str, pool: str, *, lists: bool, cap: sql.Composable = sql.SQL(""), counted: bool = False
) -> sql.Composable:
    """CTEs p (the best `pool` by half-precision distance of the filtered rows of the lists in %(lists)s, or of
    every list) and r (those re-scored at full precision); with `counted`, first f (all those rows, kept so the
    statement can count them). p and r are MATERIALIZED: inlined, `ORDER BY distance LIMIT k` over smart_search
    would make the planner walk the HNSW index and drop the candidates it never reaches. f is kept only when
    counted: writing and re-reading ~23k candidates cost ~3 ms and counting them ~2 ms of a 27 ms far query
    (1M rows, 20 lists), and search_ivf has no vector index to walk."""
    rows = sql.SQL(
        "SELECT c.asset_id, c.embedding {op} %(q)s::halfvec AS d FROM {frm} WHERE {lists}{where} {cap}"
    ).format(op=sql.SQL(OPERATORS[metric]), frm=where.from_clause, lists=_in_lists(lists), where=where.clause, cap=cap)
    top = sql.SQL("SELECT f.asset_id FROM {} f ORDER BY f.d, f.asset_id LIMIT {}")
    if counted:
        ranking = sql.SQL("f AS MATERIALIZED ({}), p AS MATERIALIZED ({})").format(
            rows, top.format(sql.SQL("f"), sql.SQL(pool))
        )
    else:
        ranking = sql.SQL("p AS MATERIALIZED ({})").format(top.format(sql.SQL("({})").format(rows), sql.SQL(pool)))
    return sql.SQL("{ranking}, {rescored}").format(ranking=ranking, rescored=_rescored(metric))


def _rescored(metric: str) -> sql.Composable:
    """CTE r: the candidates in CTE p (column asset_id) re-scored at full precision from smart_search."""
    return sql.SQL(
        "r AS MATERIALIZED (SELECT s.asset_id AS id, {dist} AS distance"
        " FROM p JOIN smart_search s ON s.asset_id = p.asset_id)"
    ).format(dist=_distance(metric))


def quantized_search(
    conn: psycopg.Connection,
    vector: np.ndarray,
    where: Where,
    *,
    metric: str,
    pool: int,
    limit: int,
    lists: Sequence[int] | None = None,
    offset: int = 0,
    max_distance: float | None = None,
    bound: int | None = None,
    settings: Settings | None = None,
) -> Ranked:
    """Rank the filtered rows of the search `lists` given (every row when None) by their half-precision
    vectors in search_ivf (migration 013), then re-score the best `pool` at full precision. Exact up to
    float16 rounding (which only reorders near-ties, and the pool re-score puts those back) when every list
    is probed.

    `where` must be compiled with `ivf=True`. `bound` works as in exact_search: more than bound candidate
    rows → `scanned > bound`, result incomplete. Without a bound the candidates are not counted
    (`scanned` is None): the planner leaves it out where the filter cannot match more rows than it expects.
    """
    counted = bound is not None
    cap = sql.SQL("LIMIT {}").format(sql.Literal(int(bound) + 1)) if counted else sql.SQL("")
    cutoff = sql.SQL("WHERE r.distance <= %(maxd)s") if max_distance is not None else sql.SQL("")
    query = sql.SQL(
        "WITH {ranking} SELECT r.id, r.distance, {scanned} AS scanned FROM r {cutoff}"
        " ORDER BY r.distance, r.id LIMIT %(lim)s OFFSET %(off)s"
    ).format(
        ranking=_list_ranking(where, metric, "%(pool)s", lists=lists is not None, cap=cap, counted=counted),
        scanned=sql.SQL("(SELECT count(*) FROM f)" if counted else "NULL::bigint"),
        cutoff=cutoff,
    )
    params = {
        **where.params,
        "q": vector,
        "pool": pool,
        "lists": list(lists) if lists is not None else None,
        "lim": limit,
        "off": offset,
        "maxd": max_distance,
    }
    rows = _fetch(conn, _with_hits(query), params, settings)
    if not counted:  # column 2 is NULL
        return _ranked(rows, 3)
    return _ranked(rows, 3, scanned=_scanned(conn, rows, where, bound, settings, lists))


def uuid_array(ids: np.ndarray) -> str:
    """16-byte ids as a uuid[] literal ('{hex,hex,...}'), for a `%s::uuid[]` parameter: psycopg dumps a list of
    UUID objects one element at a time (~6 µs each: 0.8 ms for 138 candidates), this is one hex() call."""
    flat = np.ascontiguousarray(ids).tobytes().hex()
    return "{" + ",".join(flat[i : i + 32] for i in range(0, len(flat), 32)) + "}"


def candidate_search(
    conn: psycopg.Connection,
    vector: np.ndarray,
    where: Where,
    candidates: np.ndarray,
    *,
    metric: str,
    pool: int,
    limit: int,
    offset: int = 0,
    max_distance: float | None = None,
    settings: Settings | None = None,
) -> Ranked:
    """The rows of `candidates` (16-byte ids, best first, as ranked in memory: search/resident.py) that pass the
    filters, found by primary key; the first `pool` of those re-scored at full precision. `scanned` = how many
    candidates passed.

    `where` over smart_search (its rows carry the common filter columns and the full-precision vector): one
    index descent per candidate, filter and re-score in the same row. Over search_ivf (`ivf=True`, for filters on
    EXIF columns, which search_ivf carries): the filters there, then a second descent into smart_search for the
    first `pool`. At 1M rows an index descent is much of a candidate's cost (~7 µs: a random uuid B-tree in 6 GB
    of shared buffers); one descent instead of two saved 2-6 % end to end (search_ab.py)."""
    cutoff = sql.SQL("WHERE r.distance <= %(maxd)s") if max_distance is not None else sql.SQL("")
    if where.ivf:
        passed = sql.SQL(
            "SELECT c.asset_id, u.n FROM unnest(%(cand)s::uuid[]) WITH ORDINALITY AS u(id, n), {frm}"
            " WHERE c.asset_id = u.id AND {where}"
        ).format(frm=where.from_clause, where=where.clause)
        ranking = sql.SQL(
            "f AS MATERIALIZED ({passed}), p AS MATERIALIZED (SELECT f.asset_id FROM f ORDER BY f.n LIMIT %(pool)s),"
            " {rescored}"
        ).format(passed=passed, rescored=_rescored(metric))
    else:
        passed = sql.SQL(
            "SELECT s.asset_id, u.n, {dist} AS distance FROM unnest(%(cand)s::uuid[]) WITH ORDINALITY AS u(id, n),"
            " {frm} WHERE s.asset_id = u.id AND {where}"
        ).format(dist=_distance(metric), frm=where.from_clause, where=where.clause)
        ranking = sql.SQL(
            "f AS MATERIALIZED ({passed}), r AS MATERIALIZED"
            " (SELECT f.asset_id AS id, f.distance FROM f ORDER BY f.n LIMIT %(pool)s)"
        ).format(passed=passed)
    query = sql.SQL(
        "WITH {ranking} SELECT r.id, r.distance, (SELECT count(*) FROM f) AS scanned FROM r {cutoff}"
        " ORDER BY r.distance, r.id LIMIT %(lim)s OFFSET %(off)s"
    ).format(ranking=ranking, cutoff=cutoff)
    params = {
        **where.params,
        "cand": uuid_array(candidates),
        "q": vector,
        "pool": pool,
        "lim": limit,
        "off": offset,
        "maxd": max_distance,
    }
    rows = _fetch(conn, _with_hits(query), params, settings)
    if rows:
        return _ranked(rows, 3, scanned=int(rows[0][2]))
    count = sql.SQL("SELECT count(*) FROM ({}) f").format(passed)
    return _ranked(rows, 3, scanned=int(_fetch(conn, count, params, settings)[0][0]))


def approximate_search(
    conn: psycopg.Connection,
    vector: np.ndarray,
    where: Where,
    *,
    metric: str,
    pool: int,
    limit: int,
    offset: int = 0,
    max_distance: float | None = None,
    index_type: str = "vector",
    rescue: Rescue | None = None,
    settings: Settings | None = None,
) -> tuple[Ranked, int, float | None]:
    """HNSW candidates (the filter applied during the iterative scan), re-sorted by exact distance.

    Returns (page, pool rows found, best distance found). `settings` carry hnsw.*; fewer pool rows than
    needed means the scan gave up (max_scan_tuples) or the filter matches few rows: the caller falls back to
    exact. The best distance tells how far the query is from the library.
    `index_type` (from begin_search) picks the index's own ORDER BY expression; with "halfvec" the candidates
    come in half-precision order and the re-sort by the full-precision distance makes the page exact.
    `rescue`: also rank the matching rows of a few search lists (as quantized_search does) and cut the page
    from the union, in the same statement: HNSW cannot reach some regions of a large graph, whatever its beam.
    """
    cutoff = sql.SQL("WHERE c.distance <= %(maxd)s") if max_distance is not None else sql.SQL("")
    order = hnsw_order(index_type, len(vector))
    hnsw = sql.SQL(
        "SELECT s.asset_id AS id, {dist} AS distance FROM {frm} WHERE {where} ORDER BY {order} LIMIT %(pool)s"
    ).format(frm=where.from_clause, where=where.clause, dist=_distance(metric), order=order)
    params = {**where.params, "q": vector, "pool": pool, "lim": limit, "off": offset, "maxd": max_distance}
    if rescue is None:
        query = sql.SQL(
            "SELECT c.id, c.distance, count(*) OVER () AS found, min(c.distance) OVER () AS best"
            " FROM ({hnsw}) c {cutoff} ORDER BY c.distance, c.id LIMIT %(lim)s OFFSET %(off)s"
        ).format(hnsw=hnsw, cutoff=cutoff)
    else:
        # Both filters come from the same query in the same order, so their parameters are the same.
        params.update({**rescue.where.params, "lists": list(rescue.lists), "rpool": rescue.pool})
        query = sql.SQL(
            "WITH h AS MATERIALIZED ({hnsw}), {lists}"
            " SELECT c.id, c.distance, (SELECT count(*) FROM h) AS found, min(c.distance) OVER () AS best"
            " FROM (SELECT id, distance FROM h UNION SELECT id, distance FROM r) c {cutoff}"
            " ORDER BY c.distance, c.id LIMIT %(lim)s OFFSET %(off)s"
        ).format(hnsw=hnsw, lists=_list_ranking(rescue.where, metric, "%(rpool)s", lists=True), cutoff=cutoff)
    rows = _fetch(conn, _with_hits(query), params, settings)
    found = int(rows[0][2]) if rows else 0
    best = float(rows[0][3]) if rows else None
    if max_distance is not None or not rows:
        # The cutoff (or an empty page) hides the pool size; count it separately.
        count = sql.SQL("SELECT count(*) FROM ({hnsw}) c").format(hnsw=hnsw)
        found = int(_fetch(conn, count, params, settings)[0][0])
    return _ranked(rows, 4), found, best


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
