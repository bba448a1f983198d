"""One search under way, as the strategies see it (search/exact.py, quantized.py, approximate.py, memory.py): the
query, its vector and filters, the search lists' scores, the settings every statement is sent with, and the plan
and timings each step adds to. Also the probe's geometry the strategies share: which lists are nearest the query,
which could still hold a row nearer than a page's last (planner.list_bounds), a probe widened to more lists."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import psycopg

from photosearch.db import knn
from photosearch.db import search as sq
from photosearch.search import planner
from photosearch.search.plan import Decision, PlannerConfig, QueryPlan, list_bounds
from photosearch.search.query import SearchQuery

if TYPE_CHECKING:
    from photosearch.search.service import Held


def cosine_of(metric: str, distance: float) -> float:
    """The cosine similarity a distance means, for unit-length embeddings (all CLIP towers)."""
    if metric == "cosine":
        return 1.0 - distance
    if metric == "l2":
        return 1.0 - distance * distance / 2.0
    return -distance  # `<#>` is the negative inner product


def ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


@dataclass
class Run:
    """A search's state while its strategies run. `centroids`: (training, centroids, radii) of the search lists
    as the service caches them, None before training; `scores`: the query's similarity to each centroid."""

    conn: psycopg.Connection
    config: PlannerConfig
    query: SearchQuery
    vec: np.ndarray
    where: sq.Where  # over smart_search
    ivf: sq.Where  # the same filters over search_ivf
    ctx: sq.SearchContext
    held: Held
    estimated: int
    scores: np.ndarray | None
    centroids: tuple[str | None, np.ndarray, np.ndarray] | None
    plan: QueryPlan
    settings: sq.Settings
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def common(self) -> dict:
        return {"metric": self.query.distance, "limit": self.query.k, "offset": self.query.offset}

    @property
    def lists(self) -> int:
        """The lists a probe chooses from (1: none trained)."""
        return len(self.scores) if self.scores is not None else 1

    def note(self, text: str) -> None:
        """Add to the plan's account of what happened after the first decision."""
        self.plan.fallback = f"{self.plan.fallback}; {text}" if self.plan.fallback else text

    def add_time(self, name: str, t0: float) -> None:
        self.timings[name] = self.timings.get(name, 0.0) + ms(t0)

    def nearest(self, probes: int | None) -> list[int] | None:
        """The `probes` lists whose centroids are nearest the query (None = all rows)."""
        scores = self.scores
        if probes is None or scores is None or len(scores) <= probes:
            return None
        return np.argpartition(-scores, probes - 1)[:probes].astype(int).tolist()

    def beyond(self, probed: list[int] | None, ranked: knn.Ranked) -> list[int]:
        """The lists not `probed` that could hold a row nearer the query than the page's last (planner.list_bounds):
        a probe is complete for the page only when there are none. A page cut short by max_distance compares
        with that distance; another short page has nothing to compare with (the caller widens it anyway)."""
        cached, q = self.centroids, self.query
        if self.scores is None or probed is None or cached is None or len(cached[2]) != len(self.scores):
            return []
        if len(ranked.ids) >= q.k and ranked.distances:
            last = cosine_of(q.distance, ranked.distances[-1])
        elif q.max_distance is not None:
            last = cosine_of(q.distance, q.max_distance)
        else:
            return []
        return self.lists_above(probed, last)

    def lists_above(self, probed: list[int], similarity: float) -> list[int]:
        """The lists not `probed` whose best possible similarity to the query reaches `similarity`, nearest first."""
        cached, scores = self.centroids, self.scores
        if cached is None or scores is None or len(cached[2]) != len(scores):
            return []
        bounds = list_bounds(self.config, scores, cached[2])
        reach = bounds >= similarity - 1e-6
        reach[np.asarray(probed, dtype=np.int64)] = False
        found = np.flatnonzero(reach)
        return found[np.argsort(-scores[found], kind="stable")].astype(int).tolist()

    def widened(self, lists: list[int], extra: list[int]) -> list[int] | None:
        """`lists` and `extra` together, or None (every row) when that is most of them (probe_all_share)."""
        union = sorted(set(lists) | set(extra))
        total = len(self.centroids[1]) if self.centroids is not None else 0
        return None if len(union) >= total * self.config.probe_all_share else union


def wider_probe(pool: int | None, lists: list[int] | None) -> Decision:
    """A quantized probe of `lists` (None: every row), after a narrower one fell short."""
    return Decision("quantized", "wider probe", pool=pool, probes=lists and len(lists), lists=lists)


def in_postgres(r: Run, d: Decision) -> tuple[Decision, knn.Ranked | None]:
    """Run an exact or quantized decision until its page is complete, each strategy deciding its next step
    (escalate when more rows match than its bound, widen a probe). (the last decision, its page); no page when the
    last decision is HNSW's (an escalation)."""
    from photosearch.search import exact, quantized

    while d.strategy in ("exact", "quantized"):
        step = exact.step if d.strategy == "exact" else quantized.step
        following, ranked = step(r, d)
        if following is None:
            return d, ranked
        d = following
    return d, None


def escalated(r: Run, d: Decision, ranked: knn.Ranked) -> Decision | None:
    """The next decision when `d` found more matching rows than its bound (the estimate was far too low, so this
    path would be slow): planner.escalate's exact → quantized → HNSW; None when it stayed within its bound."""
    if d.bound is None or ranked.scanned is None or ranked.scanned <= d.bound:
        return None
    following = planner.escalate(r.config, d, total=r.ctx.total, depth=r.query.depth, lists=r.lists)
    r.note(f"more than {d.bound} rows match (estimate was {r.estimated}): {d.strategy} → {following.strategy}")
    r.plan.strategy = following.strategy
    return following
