"""The quantized probe: rank the filtered rows of the search lists nearest the query by their half-precision
vectors (search_ivf, clustered by list), re-score the best `pool` at full precision. Complete for the page: a
probe whose lists hold too few matches is widened 4×, and one whose page's last row could be beaten by a row of a
list not probed (run.Run.beyond) takes those lists in too; more matches than its bound escalate to HNSW."""

from __future__ import annotations

import time

from photosearch.db import knn
from photosearch.search.plan import Decision, PlanInput, probes_for
from photosearch.search.run import Run, escalated, wider_probe


def propose(p: PlanInput) -> Decision | None:
    """With lists trained, a filter that is not broad, or a far query: probe the lists nearest the query."""
    cfg, estimated, lists, far = p.cfg, p.estimated, p.lists, p.far
    if not (lists > 1 and (not p.broad or far)):
        return None
    probes = probes_for(cfg, estimated, lists, p.q_pool, bool(far), broad=p.broad)
    seen = estimated * (probes or lists) // lists
    why = f"{far}: probe more lists, not HNSW; " if far else ""
    # No bound when the filter is broad (≥ half the rows: it cannot match more than twice the estimate) or the
    # probed lists are small enough to read whole: the candidates need not be kept and counted then (1M, far
    # query: 27 → 23 ms).
    unbounded = p.broad or (probes is not None and probes * p.total / lists <= cfg.unbounded_probe_rows)
    return Decision(
        "quantized",
        f"~{estimated} matching rows ({p.selectivity:.1%}), {why}rank the ~{seen} in the {probes or lists} of"
        f" {lists} search lists nearest the query by half-precision distance, re-score the best {p.q_pool}",
        pool=p.q_pool,
        probes=probes,
        bound=None if unbounded else p.bounded(max(seen, cfg.candidates_target, p.q_pool)),
    )


def propose_unlisted(p: PlanInput) -> Decision | None:
    """No lists yet (a small library, or a first ingest not finished): nothing tells how far a page's rows may
    lie, so every match is ranked, up to unlisted_rank_max_rows. HNSW was faster (15k rows, image-like: 1 ms
    against 21 ms) but missed rows of deep pages and of queries far from every photo (100k: recall@10 0.0 for
    some) and could repeat a row across pages."""
    cfg, estimated, far = p.cfg, p.estimated, p.far
    unlisted = max(cfg.quantized_max_rows, cfg.unlisted_rank_max_rows)
    if not (p.lists <= 1 and (estimated <= unlisted or (estimated <= cfg.quantized_max_rows and (not p.broad or far)))):
        return None
    why = f" ({far})" if far else ""
    return Decision(
        "quantized",
        f"~{estimated} matching rows, no search lists{why}: rank every one by half-precision distance,"
        f" re-score the best {p.q_pool} at full precision",
        pool=p.q_pool,
        bound=p.bounded(unlisted),
    )


def forced(p: PlanInput) -> Decision:
    probes = probes_for(p.cfg, p.estimated, p.lists, p.q_pool, bool(p.far), broad=p.broad)
    return Decision("quantized", "forced by the query", pool=p.q_pool, probes=probes)


def step(r: Run, d: Decision) -> tuple[Decision | None, knn.Ranked]:
    """Run `d`: (None, the page) when complete, or (the next decision, the incomplete page)."""
    t = time.perf_counter()
    probed = d.lists if d.lists is not None else r.nearest(d.probes)
    ranked = knn.quantized_search(
        r.conn,
        r.vec,
        r.ivf,
        pool=d.pool or 200,
        lists=probed,
        bound=d.bound,
        max_distance=r.query.max_distance,
        settings=r.settings,
        **r.common,
    )
    r.plan.pool, r.plan.probes = d.pool, None if probed is None else len(probed)
    r.add_time("quantized", t)
    following = escalated(r, d, ranked)
    if following is not None:
        return following, ranked
    if probed is not None and len(ranked.ids) < r.query.k:
        # The probed lists held too few matching rows (a filter concentrated in far lists): probe 4x more, up to
        # every list, which is complete.
        wider = None if len(probed) * 4 >= r.lists else r.widened(probed, r.nearest(len(probed) * 4))
        seen = "too few" if ranked.scanned is None else ranked.scanned
        r.note(f"{seen} candidates in {len(probed)} lists: probed {len(wider) if wider else 'all'}")
        return wider_probe(d.pool, wider), ranked
    extra = r.beyond(probed, ranked)
    if extra:
        # Lists beyond the probe could hold rows nearer than the page's last (a deep page, a far query): probe them
        # too, as far as the distance says, however many rows that is.
        wider = r.widened(probed or [], extra)
        probed_now = len(wider) if wider else "all"
        r.note(f"{len(extra)} more lists could hold rows nearer than the page's last: probed {probed_now}")
        return wider_probe(d.pool, wider), ranked
    return None, ranked
