"""Search by the text in photos alone (`search --text KIRIN`, API `ocr_text` without a query): the photos whose
recognised text matches, best match first (db/ocr.py: rank_by_text), with every other filter applied by the
same compiled WHERE as a kNN search. With a CLIP query as well, `ocr_text` is just one more filter."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from photosearch.db import search as sq
from photosearch.db.ocr import rank_by_text
from photosearch.search.planner import QueryPlan
from photosearch.search.query import MAX_DEPTH, SearchQuery

if TYPE_CHECKING:
    from photosearch.search.service import SearchPage, SearchService

MAX_TEXT_SCORE = 2.0  # substring 1 + every word 0.5 + density < 0.5: distance = MAX_TEXT_SCORE - score


def text_search(service: SearchService, query: SearchQuery, user: dict) -> SearchPage:
    from photosearch.search.service import SearchHit, SearchPage, _autocommit

    t0 = time.perf_counter()
    assert query.ocr_text is not None
    with service.db.connection() as conn, _autocommit(conn):
        scope = service.owner_scope(conn, query, user)
        where = sq.compile_filters(query, scope)
        ranked = [] if scope == [] else rank_by_text(conn, where, query.ocr_text, query.k, query.offset)
        hits = sq.hydrate(conn, [i for i, _ in ranked])
    items = [
        SearchHit(**hits[i], distance=max(0.0, MAX_TEXT_SCORE - score), score=score) for i, score in ranked if i in hits
    ]
    if query.max_distance is not None:
        items = [h for h in items if h.distance <= query.max_distance]
    if query.order in ("date", "date_asc"):
        items.sort(key=lambda h: h.local_date_time, reverse=query.order == "date")
    plan = QueryPlan(
        strategy="text",
        reason="only text in photos to look for: the photos whose recognised text has every word or the text itself,"
        " ranked by that match (substring, words, their density), then newest first",
        filters=query.given_filters,
        rows=len(items),
        timings_ms={"total": round((time.perf_counter() - t0) * 1000, 3)},
    )
    full = len(ranked) == query.k and query.depth + query.k <= MAX_DEPTH
    return SearchPage(items=items, page=query.page, k=query.k, next_page=query.page + 1 if full else None, plan=plan)
