"""Exact search: filter first (PostgreSQL's indexes on the filter columns), compute the distance of every matching
row, keep the best. Recall 1.0 by construction; right for a few thousand matches (planner: exact_max_rows). Bounded
to bound_factor × its limit: more matches than that mean the estimate was wrong, and the search escalates to the
quantized probe (run.escalated)."""

from __future__ import annotations

import time

from photosearch.db import knn
from photosearch.search.plan import Decision, PlanInput
from photosearch.search.run import Run, escalated


def propose(p: PlanInput) -> Decision | None:
    """Few enough matches (exact_max_rows; fewer when the filter would join exif row by row)."""
    if p.estimated > p.exact_max:
        return None
    return Decision(
        "exact",
        f"~{p.estimated} matching rows ≤ {p.exact_max}: exact distances on each (recall 1.0)",
        bound=p.bounded(p.cfg.exact_max_rows),
    )


def forced(p: PlanInput) -> Decision:
    return Decision("exact", "forced by the query")


def step(r: Run, d: Decision) -> tuple[Decision | None, knn.Ranked]:
    """Run `d`: (None, the page) when complete, or (the escalation, the incomplete page)."""
    t = time.perf_counter()
    ranked = knn.exact_search(
        r.conn, r.vec, r.where, bound=d.bound, max_distance=r.query.max_distance, settings=r.settings, **r.common
    )
    r.add_time("exact", t)
    return escalated(r, d, ranked), ranked


def fallback(r: Run, found: int) -> knn.Ranked:
    """Every match ranked exactly, after HNSW's scan ended (max_scan_tuples, or few matches) before it found the
    `depth` rows the page needs: exact is complete."""
    t = time.perf_counter()
    ranked = knn.exact_search(
        r.conn, r.vec, r.where, max_distance=r.query.max_distance, settings=r.settings, **r.common
    )
    r.timings["exact_fallback"] = (time.perf_counter() - t) * 1000.0
    r.plan.fallback = f"HNSW found {found} of the {r.query.depth} rows needed: re-ran exactly"
    r.plan.strategy = "exact"
    return ranked
