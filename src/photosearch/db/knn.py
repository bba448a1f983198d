"""The kNN statements, one per strategy's way of reading rows: exact (every filtered row), quantized (the filtered
rows of the lists nearest the query, by half-precision distance), candidates (rows the in-memory copy ranked,
checked by primary key) and approximate (HNSW's iterative scan, merged with a few lists). Each returns the page
with its hits' asset and EXIF fields from the same statement, and is sent in one pipeline with its planner
settings (db.search._fetch)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
from psycopg import sql

from photosearch.db import search as sq  # (as a module: db.search may be importing this package as it loads)
from photosearch.db.embedding import hnsw_order


@dataclass
class Ranked:
    ids: list[UUID]
    distances: list[float]
    scanned: int | None = None  # exact/quantized: filtered rows seen (None = not bounded)
    hits: dict[UUID, dict] = field(default_factory=dict)  # the page's asset/EXIF fields, from the same statement


def _distance(metric: str, column: str = "s.embedding") -> sql.Composable:
    return sql.SQL("{} {} %(q)s").format(sql.SQL(column), sql.SQL(sq.OPERATORS[metric]))


def _with_hits(query: sql.Composable) -> sql.Composable:
    """The page's rows joined to their asset/EXIF fields in the same statement: one round trip and one plan
    instead of a second query per search (~2 ms at 1M rows)."""
    return sql.SQL(
        "SELECT k.*, {cols} FROM ({q}) k JOIN assets a ON a.id = k.id JOIN users u ON u.id = a.owner_id"
        " LEFT JOIN exif e ON e.asset_id = a.id ORDER BY k.distance, k.id"
    ).format(cols=sql.SQL(sq.HIT_COLUMNS), q=query)


def _ranked(rows: list, width: int, **extra: Any) -> Ranked:
    """Ranked from rows of _with_hits(query), whose first `width` columns are the path's own."""
    hits = {r[0]: dict(zip(sq.HIT_NAMES, r[width:], strict=True)) for r in rows}
    return Ranked([r[0] for r in rows], [float(r[1]) for r in rows], hits=hits, **extra)


def _scanned(
    conn: psycopg.Connection,
    rows: list,
    where: sq.Where,
    bound: int | None,
    settings: sq.Settings | None,
    lists: Sequence[int] | None = None,
) -> int | None:
    """Filtered rows a bounded exact/quantized query saw: carried in column 2 of every row, or counted
    separately (in the probed `lists`) when the page came back empty (e.g. everything beyond `max_distance`)."""
    if rows:
        return int(rows[0][2])
    return sq.count_matches(conn, where, bound + 1, lists=lists, settings=settings) if bound is not None else None


def exact_search(
    conn: psycopg.Connection,
    vector: np.ndarray,
    where: sq.Where,
    *,
    metric: str,
    limit: int,
    offset: int = 0,
    max_distance: float | None = None,
    bound: int | None = None,
    settings: sq.Settings | None = None,
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
    rows = sq._fetch(conn, _with_hits(query), params, settings)
    return _ranked(rows, 3, scanned=_scanned(conn, rows, where, bound, settings))


@dataclass(frozen=True)
class Rescue:
    """The search lists whose matching rows an HNSW query also ranks (approximate_search)."""

    where: sq.Where  # compiled with ivf=True
    lists: Sequence[int]
    pool: int


def _list_ranking(
    where: sq.Where, metric: str, pool: str, *, lists: bool, cap: sql.Composable = sql.SQL(""), counted: bool = False
) -> sql.Composable:
    """CTEs p (the best `pool` by half-precision distance of the filtered rows of the lists in %(lists)s, or of
    every list) and r (those re-scored at full precision); with `counted`, first f (all those rows, kept so the
    statement can count them). p and r are MATERIALIZED: inlined, `ORDER BY distance LIMIT k` over smart_search
    would make the planner walk the HNSW index and drop the candidates it never reaches. f is kept only when
    counted: writing and re-reading ~23k candidates cost ~3 ms and counting them ~2 ms of a 27 ms far query
    (1M rows, 20 lists), and search_ivf has no vector index to walk."""
    rows = sql.SQL(
        "SELECT c.asset_id, c.embedding {op} %(q)s::halfvec AS d FROM {frm} WHERE {lists}{where} {cap}"
    ).format(
        op=sql.SQL(sq.OPERATORS[metric]), frm=where.from_clause, lists=sq._in_lists(lists), where=where.clause, cap=cap
    )
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
    where: sq.Where,
    *,
    metric: str,
    pool: int,
    limit: int,
    lists: Sequence[int] | None = None,
    offset: int = 0,
    max_distance: float | None = None,
    bound: int | None = None,
    settings: sq.Settings | None = None,
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
    rows = sq._fetch(conn, _with_hits(query), params, settings)
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
    where: sq.Where,
    candidates: np.ndarray,
    *,
    metric: str,
    pool: int,
    limit: int,
    offset: int = 0,
    max_distance: float | None = None,
    settings: sq.Settings | None = None,
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
    rows = sq._fetch(conn, _with_hits(query), params, settings)
    if rows:
        return _ranked(rows, 3, scanned=int(rows[0][2]))
    count = sql.SQL("SELECT count(*) FROM ({}) f").format(passed)
    return _ranked(rows, 3, scanned=int(sq._fetch(conn, count, params, settings)[0][0]))


def approximate_search(
    conn: psycopg.Connection,
    vector: np.ndarray,
    where: sq.Where,
    *,
    metric: str,
    pool: int,
    limit: int,
    offset: int = 0,
    max_distance: float | None = None,
    index_type: str = "vector",
    rescue: Rescue | None = None,
    settings: sq.Settings | None = None,
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
    rows = sq._fetch(conn, _with_hits(query), params, settings)
    found = int(rows[0][2]) if rows else 0
    best = float(rows[0][3]) if rows else None
    if max_distance is not None or not rows:
        # The cutoff (or an empty page) hides the pool size; count it separately.
        count = sql.SQL("SELECT count(*) FROM ({hnsw}) c").format(hnsw=hnsw)
        found = int(sq._fetch(conn, count, params, settings)[0][0])
    return _ranked(rows, 4), found, best
