"""Approximate search: HNSW's iterative scan with the filter applied during the walk, the pool re-sorted by exact
distance, merged with the rows of the few search lists nearest the query (HNSW cannot reach some regions of a
large graph, whatever its beam: 1M rows, one query in 40 found 1 of its top 10; with 3 lists recall 0.953 → 0.98).
Right for broad filters. Then, in this order: a query HNSW's best match shows to be far from every photo ranks
every match instead; lists beyond those merged that could hold nearer rows are probed in PostgreSQL; a scan that
ended before it filled the page re-runs exactly (exact.fallback)."""

from __future__ import annotations

import math
import time

from photosearch.db import knn
from photosearch.search import exact
from photosearch.search.plan import Decision, PlanInput, PlannerConfig, is_broad, quantized_pool
from photosearch.search.run import Run, cosine_of, in_postgres, ms


def settings(cfg: PlannerConfig, depth: int, selectivity: float, ef_override: int | None, lists: int = 1) -> Decision:
    pool = max(int(math.ceil(depth * cfg.pool_factor)), cfg.pool_min, depth)
    ef_min = cfg.ef_search_rescued if lists > cfg.hnsw_rescue_probes > 0 else cfg.ef_search_min
    ef = ef_override if ef_override is not None else max(ef_min, cfg.ef_per_row * depth)
    if ef_override is None and selectivity < 0.5:
        ef = max(ef, cfg.ef_search_filtered)
    ef = min(1000, ef)
    # The iterative scan must visit about depth / selectivity tuples to find `depth` matching ones.
    need = int(4 * pool / max(selectivity, 1e-6))
    scan = min(cfg.max_scan_tuples_max, max(cfg.max_scan_tuples_min, need))
    return Decision(
        strategy="approximate",
        reason="",
        ef_search=ef,
        pool=pool,
        max_scan_tuples=scan,
        hnsw_settings={
            "hnsw.ef_search": ef,
            "hnsw.iterative_scan": "relaxed_order",
            "hnsw.max_scan_tuples": scan,
            "hnsw.scan_mem_multiplier": cfg.scan_mem_multiplier,
        },
    )


def propose(p: PlanInput) -> Decision:
    """Everything the other strategies decline: broad filters, with no copy in memory to rank them."""
    d = settings(p.cfg, p.depth, p.selectivity, p.ef_override, p.lists)
    d.reason = (
        f"~{p.estimated} matching rows ({p.selectivity:.1%}): HNSW iterative scan, pool of {d.pool} re-sorted exactly"
    )
    return d


def forced(p: PlanInput) -> Decision:
    d = settings(p.cfg, p.depth, p.selectivity, p.ef_override, p.lists)
    d.reason = "forced by the query"
    return d


def run(r: Run, d: Decision) -> knn.Ranked:
    q, plan = r.query, r.plan
    plan.ef_search, plan.pool, plan.max_scan_tuples = d.ef_search, d.pool, d.max_scan_tuples
    t = time.perf_counter()
    nearest = r.nearest(r.config.hnsw_rescue_probes or None)
    rescue = None if nearest is None else knn.Rescue(r.ivf, nearest, 2 * q.depth)
    ranked, found, best = knn.approximate_search(
        r.conn,
        r.vec,
        r.where,
        pool=d.pool or q.depth,
        max_distance=q.max_distance,
        index_type=r.ctx.index_type,
        rescue=rescue,
        settings={**r.settings, **d.hnsw_settings},
        **r.common,
    )
    r.timings["approximate"] = ms(t)
    similarity = None if best is None else cosine_of(q.distance, best)
    if found >= q.depth and similarity is not None and _far_after_all(r, similarity):
        return _rank_every_match(r, similarity)
    extra = [] if rescue is None or q.strategy != "auto" else r.beyond([*rescue.lists], ranked)
    if found >= q.depth and extra and rescue is not None:
        probed = _probe_beyond(r, rescue, extra)
        if probed is not None:
            return probed
    if found >= q.depth:
        if rescue is not None:
            plan.probes = len(rescue.lists)
            plan.reason += f"; merged with the rows of the {len(rescue.lists)} search lists nearest the query"
        return ranked
    return exact.fallback(r, found)


def _far_after_all(r: Run, similarity: float) -> bool:
    """No lists told how far the query is beforehand, but its best match says it: far from every photo (15k rows,
    text-like vectors: HNSW recall@10 0.975). Not after an escalation (that found more rows than ranking all of
    them suits), nor for a forced strategy."""
    return (
        r.scores is None
        and similarity < r.config.far_score
        and r.query.strategy == "auto"
        and r.plan.fallback is None
        and r.estimated <= r.config.quantized_max_rows
    )


def _rank_every_match(r: Run, similarity: float) -> knn.Ranked:
    """Rank every match by half-precision distance instead, as text queries do."""
    pool = quantized_pool(r.config, r.query.depth)
    t = time.perf_counter()
    ranked = knn.quantized_search(
        r.conn, r.vec, r.ivf, pool=pool, max_distance=r.query.max_distance, settings=r.settings, **r.common
    )
    r.timings["quantized"] = ms(t)
    r.plan.strategy, r.plan.pool = "quantized", pool
    r.plan.fallback = (
        f"HNSW's best match is at cosine {similarity:.2f} < {r.config.far_score}: a far query,"
        " ranked every match instead"
    )
    return ranked


def _probe_beyond(r: Run, rescue: knn.Rescue, extra: list[int]) -> knn.Ranked | None:
    """Lists beyond the few merged in could hold rows nearer than the page's last (HNSW's beam may have missed
    them): probe every list the distance says, in PostgreSQL. A filter's rows cluster where no centroid shows
    (planner.probes_for): unless it is broad, and its estimate held (no escalation), every match is ranked."""
    plan = r.plan
    broad = is_broad(r.config, r.estimated, r.ctx.total) and plan.fallback is None
    wider = r.widened([*rescue.lists], extra) if broad else None
    note = f"{len(extra)} lists beyond the {len(rescue.lists)} merged could hold rows nearer"
    r.note(f"{note} than the page's last: probed {len(wider) if wider else 'all'}")
    plan.strategy, plan.ef_search, plan.max_scan_tuples = "quantized", None, None
    pool = quantized_pool(r.config, r.query.depth)
    probe = Decision("quantized", "wider probe", pool=pool, probes=wider and len(wider), lists=wider)
    return in_postgres(r, probe)[1]
