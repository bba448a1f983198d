"""Choose, per query, the strategy that runs it: each strategy proposes itself or not (its own eligibility and
cost rule, in search/memory.py, exact.py, quantized.py, approximate.py), and the first proposal in PRIORITY wins.
The cost model and the knobs are in search/plan.py; the table of filters (search/filters.py) says which filters
the in-memory copy holds and which no PostgreSQL index serves."""

from __future__ import annotations

from typing import Any

from photosearch.search import approximate, exact, memory, quantized
from photosearch.search.plan import (
    Decision,
    PlanInput,
    PlannerConfig,
    QueryPlan,
    is_broad,
    list_bounds,
    probes_for,
    quantized_pool,
)

__all__ = [
    "Decision",
    "PlannerConfig",
    "QueryPlan",
    "choose",
    "escalate",
    "is_broad",
    "list_bounds",
    "probes_for",
    "quantized_pool",
]

# In this order: the in-memory copy (broad filters, and filters it holds), exact (few matches), the quantized probe
# of the nearest lists (narrower filters, far queries), every match ranked (no lists trained), HNSW (the rest).
PRIORITY = (memory.propose, exact.propose, quantized.propose, quantized.propose_unlisted, approximate.propose)
FORCED = {"exact": exact.forced, "quantized": quantized.forced, "approximate": approximate.forced}


def choose(cfg: PlannerConfig, **given: Any) -> Decision:
    """The decision for a query (PlanInput's fields as keywords; `forced`: the strategy the query asks for, or
    "auto"). A forced memory strategy is memory's proposal, which then never declines."""
    p = PlanInput(cfg, **given)
    if p.forced in FORCED:
        return FORCED[p.forced](p)
    for propose in PRIORITY:
        d = propose(p)
        if d is not None:
            return d
    raise AssertionError("HNSW always proposes itself")


def escalate(cfg: PlannerConfig, previous: Decision, *, total: int, depth: int, lists: int = 1) -> Decision:
    """The next path when `previous` found more matching rows than its bound: exact → quantized → HNSW."""
    if previous.strategy == "exact":
        estimated = max(cfg.quantized_max_rows, (previous.bound or 0) + 1)
        d = choose(cfg, estimated=estimated, total=total, depth=depth, lists=lists, forced="quantized")
        b = int(max(cfg.quantized_max_rows, cfg.candidates_target) * cfg.bound_factor)
        d.bound = b if total > b else None
        return d
    return choose(
        cfg,
        estimated=max(cfg.quantized_max_rows + 1, (previous.bound or 0) + 1),
        total=total,
        depth=depth,
        lists=lists,
        forced="approximate",
    )
