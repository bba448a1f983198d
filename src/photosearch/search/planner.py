"""Choose, per query, between exact search over the filtered rows and an approximate HNSW scan.

Cost model (measured, see README "Search benchmark"): exact costs ~1 µs per matching row (B-tree/bitmap
filter, then one distance per row); the HNSW scan costs roughly the same whatever the filter as long as
enough matching rows sit near the query, and degrades as 1/selectivity. So: few matches → exact (recall
1.0 by construction), many → HNSW with iterative scan, a wide candidate pool re-sorted exactly, and a
fallback to exact whenever the scan returns fewer rows than the page needs. Both paths are complete.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

StrategyName = Literal["exact", "quantized", "approximate"]


@dataclass(frozen=True)
class PlannerConfig:
    """Knobs, tuned by benchmarks/search_bench.py on synthetic CLIP-like data (512-d)."""

    exact_max_rows: int = 1_500  # estimated matches at or below this → exact distances on every row
    quantized_max_rows: int = 40_000  # ... at or below this → binary codes from an index, exact re-rank
    bound_factor: float = 4.0  # a path gathers at most this × its limit before deciding the estimate was wrong
    quantized_pool_min: int = 1_000  # rows re-ranked exactly after the Hamming pass (far queries need ~1000)
    quantized_pool_per_row: int = 32  # top-64 needs a wider pool than top-10 (its 64th row ranks deeper)
    ef_search_min: int = 400  # HNSW beam (m16/efc64 at 100k: ef 200 recall@10 0.953, ef 400 0.990)
    ef_per_row: int = 8  # ef_search grows with the rows asked for: top-64 needs a wider beam than top-10
    ef_search_filtered: int = 1000  # a filter (< 50 % of rows) skips most of the beam (1M, ~10 %: 0.98 → 0.99)
    pool_factor: float = 1.0  # HNSW candidate pool = max(depth × pool_factor, pool_min)
    pool_min: int = 40
    max_scan_tuples_min: int = 20_000
    max_scan_tuples_max: int = 200_000
    scan_mem_multiplier: int = 2


class QueryPlan(BaseModel):
    """How a query ran and why: shown by `--explain` and in the API's `plan` field."""

    strategy: str
    reason: str
    estimated_matches: int | None = None
    estimate_method: str | None = None
    total_embeddings: int | None = None
    filters: int = 0
    ef_search: int | None = None
    pool: int | None = None
    max_scan_tuples: int | None = None
    fallback: str | None = None
    rows: int = 0
    timings_ms: dict[str, float] = Field(default_factory=dict)


@dataclass
class Decision:
    strategy: StrategyName
    reason: str
    ef_search: int | None = None
    pool: int | None = None
    max_scan_tuples: int | None = None
    bound: int | None = None
    hnsw_settings: dict[str, str | int] = field(default_factory=dict)


def approximate_settings(cfg: PlannerConfig, depth: int, selectivity: float, ef_override: int | None) -> Decision:
    pool = max(int(math.ceil(depth * cfg.pool_factor)), cfg.pool_min, depth)
    ef = ef_override if ef_override is not None else max(cfg.ef_search_min, cfg.ef_per_row * depth)
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


def choose(
    cfg: PlannerConfig,
    *,
    estimated: int,
    total: int,
    depth: int,
    forced: str = "auto",
    ef_override: int | None = None,
) -> Decision:
    """Pick the strategy for a query whose filters match about `estimated` of `total` embedded assets."""
    selectivity = min(1.0, estimated / total) if total > 0 else 1.0
    q_pool = min(10_000, max(cfg.quantized_pool_min, cfg.quantized_pool_per_row * depth))
    if forced == "exact":
        return Decision("exact", "forced by the query")
    if forced == "quantized":
        return Decision("quantized", "forced by the query", pool=q_pool)
    if forced == "approximate":
        d = approximate_settings(cfg, depth, selectivity, ef_override)
        d.reason = "forced by the query"
        return d

    def bounded(limit: int) -> int | None:
        b = int(limit * cfg.bound_factor)
        return b if total > b else None

    if estimated <= max(cfg.exact_max_rows, q_pool):  # (a pool that large would re-rank every row anyway)
        limit = max(cfg.exact_max_rows, q_pool)
        return Decision(
            "exact",
            f"~{estimated} matching rows ≤ {limit}: exact distances on each (recall 1.0)",
            bound=bounded(limit),
        )
    if estimated <= cfg.quantized_max_rows:
        return Decision(
            "quantized",
            f"~{estimated} matching rows ≤ {cfg.quantized_max_rows}: rank their binary codes from an index,"
            f" re-rank the best {q_pool} exactly",
            pool=q_pool,
            bound=bounded(cfg.quantized_max_rows),
        )
    d = approximate_settings(cfg, depth, selectivity, ef_override)
    d.reason = (
        f"~{estimated} matching rows ({selectivity:.1%}) > {cfg.quantized_max_rows}: HNSW iterative scan,"
        f" pool of {d.pool} re-sorted exactly"
    )
    return d


def escalate(cfg: PlannerConfig, previous: Decision, *, total: int, depth: int) -> Decision:
    """The next path when `previous` found more matching rows than its bound: exact → quantized → HNSW."""
    if previous.strategy == "exact":
        d = choose(cfg, estimated=cfg.quantized_max_rows, total=total, depth=depth, forced="quantized")
        b = int(cfg.quantized_max_rows * cfg.bound_factor)
        d.bound = b if total > b else None
        return d
    return choose(
        cfg,
        estimated=max(cfg.quantized_max_rows + 1, (previous.bound or 0) + 1),
        total=total,
        depth=depth,
        forced="approximate",
    )
