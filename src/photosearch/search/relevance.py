""" "Relevant only": an adaptive cutoff per query, then the relevant photos in relevance or date order.

A flat distance threshold fails (CLIP's scores shift from query to query). The cutoff here comes from the
query's own score distribution: the ranked scores of its best matches (up to RELEVANT_MAX, filters applied) and
its scores on a random sample of the library (the background). The cut is at the largest gap between
consecutive ranked scores above the background's mean + FLOOR_Z standard deviations, each gap weighted by
log(1 + its rank): a group of photos that match (an event, a subject) stands apart from the rest by a drop in
score. (Measured against plain largest gap, a between-class-variance split and other weights on the synthetic
library: plain gaps cut inside events when the best photo stands out alone; recall 0.92 → 0.955 at noise 0.3.)
On the synthetic library, where an event's photos are the relevant set of a query built from that event, this
keeps precision and recall above 0.9 (tests/search/test_relevance.py, benchmarks/relevance_bench.py).

Complete with respect to the cutoff: every photo scoring at or above it (within the first RELEVANT_MAX, which
the plan says when reached) is in the result, whatever the page or the order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from photosearch.db.relevance import background_scores
from photosearch.search.query import MAX_K, SearchQuery

if TYPE_CHECKING:
    from photosearch.search.service import SearchHit, SearchPage, SearchService

RELEVANT_MAX = MAX_K
FLOOR_Z = 3.0
MIN_RELEVANT = 1


def cutoff(ranked: np.ndarray, background: np.ndarray) -> tuple[float, float]:
    """(cutoff score, floor): the midpoint of the largest gap between consecutive ranked scores (best first) among
    those above the floor = background mean + FLOOR_Z sd (the drop from the last of them to the background is no
    evidence: background photos sit below the floor by definition). When none stands out, the best one."""
    floor = float(background.mean() + FLOOR_Z * background.std()) if len(background) > 1 else -np.inf
    above = int((ranked > floor).sum())
    m = min(len(ranked), max(above, MIN_RELEVANT + 1))
    top = ranked[:m]
    if len(top) < 2:
        return (float(top[0]) if len(top) else np.inf), floor
    # a drop after many photos says more than one after the first (the best match often stands out alone)
    gaps = (top[:-1] - top[1:]) * np.log1p(np.arange(1, len(top)))
    i = int(np.argmax(gaps[MIN_RELEVANT - 1 :])) + MIN_RELEVANT - 1
    return float((top[i] + top[i + 1]) / 2), floor


def relevant_search(service: SearchService, query: SearchQuery, user: dict) -> SearchPage:
    from photosearch.search.service import _autocommit, cosine_of

    base = query.model_copy(update={"relevant_only": False, "order": "relevance", "k": RELEVANT_MAX, "page": 1})
    top = service.search(base, user)
    hits: list[SearchHit] = top.items
    cos = np.array([cosine_of(query.distance, h.distance) for h in hits], dtype=np.float64)
    with service.db.connection() as conn, _autocommit(conn):
        scope = service.owner_scope(conn, query, user)
        vec, _ = service.query_vector(conn, query, scope)
        total = top.plan.total_embeddings or RELEVANT_MAX
        background = background_scores(conn, vec, scope, total) if hits else np.zeros(0)
    cut, floor = cutoff(cos, background)
    relevant = [h for h, c in zip(hits, cos, strict=True) if c >= cut]
    if query.order == "date":
        relevant.sort(key=lambda h: h.local_date_time, reverse=True)
    elif query.order == "date_asc":
        relevant.sort(key=lambda h: h.local_date_time)
    items = relevant[query.offset : query.offset + query.k]
    plan = top.plan
    capped = len(relevant) == len(hits) == RELEVANT_MAX
    plan.reason += (
        f"; relevant only: {len(relevant)} photos score at least {cut:.4f} (the largest drop in the ranked scores"
        f" above the background's mean + {FLOOR_Z:g} sd, {floor:.4f}; {len(background)} photos sampled)"
        + (f"; the first {RELEVANT_MAX} by relevance" if capped else "")
    )
    plan.rows = len(items)
    more = query.offset + query.k < len(relevant)
    return type(top)(items=items, page=query.page, k=query.k, next_page=query.page + 1 if more else None, plan=plan)
