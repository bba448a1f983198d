"""The in-memory strategy: rank the probed lists' rows held in the server's memory (search/resident.py) with
numpy, then let PostgreSQL filter the best candidates by primary key and re-score the first of those that pass
(db.search.candidate_search). A filter the copy holds narrows the ranked rows first (HeldFilter), unless it is
broad (nearly every row passes: ranking whole lists is cheaper than gathering the rows that do).

Its own escalation: every list that could hold a row nearer than the last candidate is ranked before any
candidate is handed over; when fewer candidates pass than the page needs (a filter rarer near this query than
overall), more are handed over once (twice what the share that passed says is missing), and lists that could hold
a row nearer than the page's last are ranked too. When that still falls short it reports why, and the service
plans again in PostgreSQL."""

from __future__ import annotations

import math
import time

import numpy as np

from photosearch.db import knn
from photosearch.db import search as sq
from photosearch.search.plan import Decision, PlanInput, is_broad, probes_for, quantized_pool
from photosearch.search.resident import HeldFilter, ResidentLists
from photosearch.search.run import Run, ms


def propose(p: PlanInput) -> Decision | None:
    """With a current copy: a forced memory strategy, more matches than exact suits, or a filter the copy holds
    whose rows it reads few of (held_first: from memory_held_min_rows estimated matches up, or any number when no
    PostgreSQL index serves the filter, when the copy reads at most memory_held_scan_per_row rows per match)."""
    cfg = p.cfg
    held_first = (
        p.held
        and p.resident_rows is not None
        and (p.estimated >= cfg.memory_held_min_rows or p.unindexed)
        and (p.held_rows if p.held_rows is not None else p.resident_rows) <= cfg.memory_held_scan_per_row * p.estimated
    )
    if p.resident_rows is None or not (p.forced == "memory" or p.estimated > p.exact_max or held_first):
        return None
    return decision(p)


def decision(p: PlanInput) -> Decision | None:
    """Rank the lists a quantized probe would read, in memory, and hand the best `candidates` to PostgreSQL; None
    when that would rank too many rows or hand over too many candidates (forced: never None).

    A broad filter ranks every row of the probe and hands over depth / selectivity of them. A narrower filter
    qualifies only when the copy holds it (`held`: every filter but the updated dates): numpy then ranks just
    the probed rows that match (every matching row when the filter is too rare to probe), as PostgreSQL's
    indexes would find them, and a tenth over the page is enough (memory_held_margin). Other narrow filters are
    PostgreSQL's: memory would rank every row and then check candidates, more of them the rarer the filter is
    near the query (1M, example-image queries, a ~10 % date or city filter before the copy held those columns:
    memory 15-17 ms, the probe in PostgreSQL 8-11 ms)."""
    cfg, estimated, total, depth, lists, far = p.cfg, p.estimated, p.total, p.depth, p.lists, p.far
    resident_rows, forced, held, held_rows = p.resident_rows or 0, p.forced == "memory", p.held, p.held_rows
    selectivity = min(1.0, max(estimated, 1) / total) if total > 0 else 1.0
    broad = is_broad(cfg, estimated, total)
    probes = probes_for(cfg, estimated, lists, quantized_pool(cfg, depth), bool(far), broad=broad)
    scanned = resident_rows * (probes or lists) // max(lists, 1)  # the rows of the probed lists
    where = f"the {probes} of {lists} search lists nearest the query" if probes else "every list"
    if held and not broad and probes is None and held_rows is not None and held_rows < scanned:
        scanned, where = held_rows, "the copy's owner, date or file-name index"  # the rows it reads, not every row
    why = f" ({far})" if far else ""
    # without lists, every row is ranked (as unlisted_rank_max_rows has PostgreSQL do), numpy ~5× faster at it
    max_rows = cfg.memory_max_rows if lists > 1 else max(cfg.memory_max_rows, cfg.unlisted_rank_max_rows)
    if held and not broad:
        ranked = min(scanned, math.ceil(estimated * (probes or lists) / max(lists, 1)))
        candidates = int(math.ceil(cfg.memory_held_margin * depth)) + cfg.memory_slack
        fits = ranked <= max_rows and scanned <= cfg.memory_max_scan
        what = f"of the ~{scanned} rows of {where}, rank the ~{ranked} that match in memory (filters the copy holds)"
    else:
        ranked = scanned
        candidates = int(math.ceil(cfg.memory_margin * depth / selectivity)) + cfg.memory_slack
        candidates = min(max(ranked, 1), candidates)
        fits = broad and candidates <= cfg.memory_max_candidates and ranked <= max_rows
        what = f"rank the ~{ranked} rows of {where} in memory"
    if not (forced or fits):
        return None
    return Decision(
        "memory",
        f"~{estimated} matching rows ({selectivity:.1%}){why}: {what}, the best {candidates} filtered and"
        " re-scored at full precision",
        probes=probes,
        candidates=candidates,
        pool=quantized_pool(cfg, depth),
    )


def run(r: Run, d: Decision) -> tuple[knn.Ranked | None, str | None]:
    """(the page, None), or (None, why the copy could not fill it)."""
    copy = r.held.copy
    assert copy is not None
    r.plan.probes = d.probes
    # Candidates are checked in smart_search (one descent each, the full vector in the same row), unless a filter
    # is on EXIF columns, which search_ivf carries.
    checked = r.ivf if r.where.needs_exif or r.where.needs_assets else r.where
    held = None if is_broad(r.config, r.estimated, r.ctx.total) else r.held.filter
    lists = r.nearest(d.probes)
    t = time.perf_counter()
    rows, sims = copy.scores(r.vec, lists, held)
    count = min(d.candidates or r.query.depth, len(rows))
    # Before any candidate goes to PostgreSQL: every list that could hold a row nearer than the last candidate is
    # ranked too (planner.list_bounds; all of them when the probe holds fewer rows than the candidates).
    lists, rows, sims = _widen(r, copy, held, lists, rows, sims, count)
    r.plan.probes = None if lists is None else len(lists)
    r.timings["memory_rank"] = ms(t)
    return _hand_over(r, d, copy, held, checked, lists, rows, sims)


def _hand_over(
    r: Run,
    d: Decision,
    copy: ResidentLists,
    held: HeldFilter | None,
    checked: sq.Where,
    lists: list[int] | None,
    rows: np.ndarray,
    sims: np.ndarray,
) -> tuple[knn.Ranked | None, str | None]:
    """Hand the best candidates to PostgreSQL until enough pass the filters (at most three batches)."""
    q = r.query
    count = min(d.candidates or q.depth, len(rows))
    for attempt in (1, 2, 3):
        t = time.perf_counter()
        r.plan.pool = count  # candidates handed to PostgreSQL
        ranked = knn.candidate_search(
            r.conn,
            r.vec,
            checked,
            copy.top(rows, sims, count),
            pool=d.pool or quantized_pool(r.config, q.depth),
            max_distance=q.max_distance,
            settings=r.settings,
            **r.common,
        )
        r.add_time("memory", t)
        passed = ranked.scanned or 0
        if passed >= q.depth or (count >= len(rows) and lists is None):
            # enough rows passed, or every row was handed over; unless the page's last row is so far that lists
            # not ranked could hold nearer ones (more candidates failed the filters than expected)
            extra = r.beyond(lists, ranked) if passed >= q.depth else []
            if not extra or attempt == 3 or lists is None:
                return ranked, None
            t = time.perf_counter()
            more_rows, more_sims = copy.scores(r.vec, extra, held)
            rows, sims = np.concatenate([rows, more_rows]), np.concatenate([sims, more_sims])
            lists = r.widened(lists, extra)
            r.plan.probes = None if lists is None else len(lists)
            r.timings["memory_rank"] += ms(t)
            continue
        note = f"{passed} of the best {count} in memory match the filters, {q.depth} needed"
        if attempt >= 2 or count >= len(rows):
            return None, note
        share = max(passed, 1) / count  # the filter's share among this query's nearest rows
        count = min(len(rows), count + int(math.ceil(2 * (q.depth - passed) / share)))
        if count > r.config.memory_max_candidates:  # PostgreSQL's own probe reads fewer rows than that
            return None, note
    return None, None


def _widen(
    r: Run,
    copy: ResidentLists,
    held: HeldFilter | None,
    lists: list[int] | None,
    rows: np.ndarray,
    sims: np.ndarray,
    position: int,
) -> tuple[list[int] | None, np.ndarray, np.ndarray]:
    """(lists, rows, similarities) after ranking every list whose best possible similarity reaches the
    `position`-th best row ranked so far (all lists when fewer rows were ranked), until none is left; lists
    None = every row."""
    while lists is not None and r.scores is not None:
        last = -np.inf if not 0 < position <= len(sims) else float(np.partition(sims, -position)[-position])
        extra = r.lists_above(lists, last)
        if not extra:
            break
        wider = r.widened(lists, extra)
        if wider is None:
            found_rows, found_sims = copy.scores(r.vec, None, held)
            return None, found_rows, found_sims
        more_rows, more_sims = copy.scores(r.vec, extra, held)
        rows, sims, lists = np.concatenate([rows, more_rows]), np.concatenate([sims, more_sims]), wider
    return lists, rows, sims
