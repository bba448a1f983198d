"""What the planner (planner.py) and the strategies share: the knobs (PlannerConfig), a query's planning inputs
(PlanInput), a decision (Decision), the plan a page reports (QueryPlan), and the cost rules more than one strategy
uses (the quantized pool, how many lists to probe, each list's best possible similarity, what counts as broad).

Cost model (measured at 1M rows, see README "Search benchmark"): every row PostgreSQL touches costs ~0.2 µs
in an index and ~1-5 µs when its vector is read from the heap. Exact reads every matching row's vector: right
for a few thousand. The quantized path reads the filtered rows of the lists nearest the query (~2,000 rows) as
half-precision vectors from a table clustered by list and re-scores the top few at full precision: right for
0.1-50 % of the library. The HNSW scan costs about the same whatever the filter while most rows match, and
degrades as 1/selectivity: right for broad filters. Every path falls back (wider probe, exact) when it returns
fewer rows than the page needs, so all of them are complete.

Queries far from the library (CLIP text against photos: cosine ~0.3 at best) are a different regime: their true
neighbours spread over many lists and HNSW's greedy walk misses most of them (1M rows: recall@10 0.62 at
ef_search 100, 0.81 at 800). The service measures how far the query is (its nearest centroid's similarity) and
such queries probe more lists and skip HNSW (PlannerConfig.far_score).

A long-running server also holds the lists' vectors in memory (search/resident.py), with each row's owner, date
taken, EXIF place and camera, and flags: broad filters, and filters on just those columns (the copy then keeps
only the rows that match), rank the probe there with numpy and let PostgreSQL check and re-score only the best
candidates (memory.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

StrategyName = Literal["exact", "quantized", "approximate", "memory"]


@dataclass(frozen=True)
class PlannerConfig:
    """Knobs, tuned by benchmarks/search_bench.py on synthetic CLIP-like data (512-d)."""

    exact_max_rows: int = 1_500  # estimated matches at or below this → exact distances on every row
    exact_max_rows_joined: int = 200  # ... when the filter joins exif (search_ivf has those columns locally)
    quantized_max_rows: int = 40_000  # no lists trained: at or below this → half-precision scan of every match
    unlisted_rank_max_rows: int = 250_000  # ... and for any filter and query (100k rows: ~0.1 s in PostgreSQL)
    hnsw_min_selectivity: float = 0.5  # below this share of rows: probe the nearest lists (none: rank every match)
    probe_share: float = 0.02  # probe at least this share of the lists (1M, 1,000 lists: 20 → recall@10 1.0)
    probes_min: int = 8
    candidates_target: int = 2_000  # probe enough lists to see about this many matching rows
    hnsw_rescue_probes: int = 3  # lists trained: HNSW results are merged with the rows of this many nearest lists
    ef_search_rescued: int = 100  # ... and then a narrower beam is enough (1M: ef 100 + 3 lists, recall@10 0.980)
    # A query whose nearest centroid is at cosine below far_score is "far" from the library, as CLIP text queries
    # are from photos (text-image similarities top out around 0.3). Its true neighbours spread over many more
    # lists, and HNSW finds few of them (1M, text-like queries: ef 100 recall@10 0.62, ef 800 0.81). So it probes
    # at least far_probe_share of the lists (1M, ~10 % date and city filters: 2 % of the lists 0.94-0.96, 5 %
    # 0.982-0.985, 6 % 0.985-0.995 at 12.7-15.3 ms, 7 % 0.990-0.995 at 15.7-22.4 ms in the same hour), and a
    # broad filter probes far_probe_share_broad of them instead of walking HNSW (2 %: 0.995; HNSW + 3 lists 0.84).
    far_score: float = 0.45
    far_probe_share: float = 0.06
    far_probe_share_broad: float = 0.02
    probe_all_share: float = 0.25  # a probe of this share of the lists or more reads every matching row instead
    # A probe is then widened by distance: every list whose best possible similarity to the query (list_bounds,
    # from its centroid and radius) can beat the page's last row is probed too. probe_bound_spread is how far a
    # row's direction off its centroid may lean towards the query's (1 = any row at the list's radius could
    # point straight at it: a bound that probes every list; 100k rows, 316 lists, pages 1-5 of 10 against numpy:
    # 0.17 worst page 0.8, 0.19 0.8 (far), 0.2 1.0, text-like queries probing ~28 lists and far ones most; 1M
    # rows, 1,000 lists, text-like queries, unfiltered and ~10 % dates: 0.2 worst page 0.9 with 4 rows shown on
    # two pages in 40 queries, 0.22 and 0.24 every page 1.0, none repeated).
    probe_bound_spread: float = 0.22
    rank_all_max_rows: int = 40_000  # a filter (not broad) matching at most this many rows ranks all of them
    bound_factor: float = 4.0  # a path gathers at most this × its limit before deciding the estimate was wrong
    # ... except a probe whose lists hold at most this many rows in all: reading every one of them even when the
    # estimate was far too low costs less than the escalation would (and stays complete), so it is not bounded.
    unbounded_probe_rows: int = 80_000
    quantized_pool_min: int = 20  # rows re-scored at full precision after the half-precision ranking
    quantized_pool_per_row: int = 2  # (float16 only swaps near-ties: twice the page is plenty)
    ef_search_min: int = 200  # HNSW beam (1M, m=24: ef 80 recall@10 0.890, ef 100 0.995; small graphs need more)
    ef_per_row: int = 8  # ef_search grows with the rows asked for: top-64 needs a wider beam than top-10
    ef_search_filtered: int = 1000  # a filter (< 50 % of rows) skips most of the beam (1M, ~10 %: 0.98 → 0.99)
    pool_factor: float = 1.0  # HNSW candidate pool = max(depth × pool_factor, pool_min)
    pool_min: int = 40
    max_scan_tuples_min: int = 20_000
    max_scan_tuples_max: int = 200_000
    scan_mem_multiplier: int = 2
    # The server's in-memory copy of the lists (search/resident.py) ranks the probed rows with numpy (~0.17 µs a row
    # instead of ~1 µs in PostgreSQL) and keeps margin × depth / selectivity of them (+ slack) for PostgreSQL to
    # filter and re-score by primary key: right for broad filters (hnsw_min_selectivity), whose candidates are few.
    memory_margin: float = 2.0
    # With every filter held, nearly every candidate passes (dates widened by hours, unchecked default flags ≤ 5 %):
    # a tenth over the page is enough, and a shortfall costs one more batch (memory._hand_over). 1M, seed (k=64):
    # 81 candidates instead of 138, 57 fewer primary-key descents.
    memory_held_margin: float = 1.1
    memory_slack: int = 10
    memory_max_candidates: int = 2_000
    memory_max_rows: int = 40_000  # rows ranked in numpy (1M, 20 lists: 20k rows in ~3.4 ms, bound by memory bandwidth)
    # A filter the copy holds (every one but the updated dates) is checked in numpy on every row of the probed
    # lists (every row, read in place, when the filter is too rare to probe) before any vector is read: ~1-3 ns a
    # row and column, so 1M rows cost a few ms where PostgreSQL reads each scattered match at ~3.5 µs.
    memory_max_scan: int = 2_000_000
    # ... and it runs in memory below exact_max_rows too, from memory_held_min_rows estimated matches up, when the
    # copy reads at most memory_held_scan_per_row rows per match: the exact path reads each match where it lies in
    # PostgreSQL (~5 µs a row), numpy checks every row in place (~3 ns a row and column) and ranks the matches.
    # Measured back to back: 100k rows, one owner's 976 photos 10.6 → 8.8 ms, favourites taken in a year (290)
    # 11.3 → 7.4 ms; but 1M rows, one owner's 970 photos 6.5 → 9.0 ms (1,000 rows checked per match), before the
    # copy's owner and date indexes (`held_rows`: the rows it reads are then the owner's or the date range's).
    memory_held_min_rows: int = 200
    memory_held_scan_per_row: int = 500
    # A file-name filter is held when at most this many names contain it (ResidentLists.name_matches: finding each is
    # a Python step, ~1 µs); a commoner one is left to PostgreSQL (1M, ".mp4" in 40k names: PostgreSQL's probe with
    # ILIKE on each candidate 566 ms).
    memory_name_max_matches: int = 100_000


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
    probes: int | None = None
    lists: int | None = None
    nearest_list_score: float | None = None  # cosine to the nearest list centroid: below far_score = a far query
    max_scan_tuples: int | None = None
    fallback: str | None = None
    served_by: str = "primary"  # "replica", or "replica (unconfirmed)" while the primary does not answer
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
    probes: int | None = None  # quantized, memory: lists probed (None = every row, no lists)
    lists: list[int] | None = None  # quantized: the lists to probe when not the `probes` nearest (a widened probe)
    candidates: int | None = None  # memory: best-ranked rows handed to PostgreSQL to filter and re-score
    hnsw_settings: dict[str, str | int] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanInput:
    """What a strategy's proposal is decided on: a query whose filters match about `estimated` of `total`
    embedded assets, in a library split into `lists` search lists (1 = not trained). `joins_exif`: the exact path
    would join exif row by row (100k rows, city=Kyoto, 1.2k matches: exact 17 ms). `far`: why the query counts as
    far from the library (a text query, or its nearest list centroid below PlannerConfig.far_score), None if it
    does not. `resident_rows`: the rows of a current in-memory copy of the lists (None = no copy); `held`: the copy
    checks every filter of the query itself (filters.prepare_held), so the rows it ranks all but match;
    `held_rows`: the rows it reads to find them when it probes every list (its smallest index's: owners, file
    names, dates taken or added; or every row; ResidentLists.held_rows). `unindexed`: a filter no PostgreSQL index
    serves (filters.unindexed) makes its exact path read every photo (1M: 0.6-2.3 s), so a held one runs in memory
    however few rows match."""

    cfg: PlannerConfig
    estimated: int
    total: int
    depth: int
    lists: int = 1
    forced: str = "auto"
    ef_override: int | None = None
    joins_exif: bool = False
    far: str | None = None
    resident_rows: int | None = None
    held: bool = False
    held_rows: int | None = None
    unindexed: bool = False

    @property
    def selectivity(self) -> float:
        return min(1.0, self.estimated / self.total) if self.total > 0 else 1.0

    @property
    def broad(self) -> bool:
        """Most rows match: HNSW's territory, unless the query is far."""
        return is_broad(self.cfg, self.estimated, self.total)

    @property
    def q_pool(self) -> int:
        return quantized_pool(self.cfg, self.depth)

    @property
    def exact_max(self) -> int:
        return self.cfg.exact_max_rows_joined if self.joins_exif else self.cfg.exact_max_rows

    def bounded(self, limit: int) -> int | None:
        """The bound of a path whose limit is `limit` (bound_factor x), None when the table is smaller."""
        b = int(limit * self.cfg.bound_factor)
        return b if self.total > b else None


def quantized_pool(cfg: PlannerConfig, depth: int) -> int:
    """Rows the quantized path re-scores at full precision to return the top `depth`."""
    return min(10_000, max(cfg.quantized_pool_min, cfg.quantized_pool_per_row * depth, depth))


def probes_for(
    cfg: PlannerConfig, estimated: int, lists: int, pool: int, far: bool = False, broad: bool = False
) -> int | None:
    """Lists to probe so the quantized path sees about `candidates_target` matching rows, and at least the
    share of the lists a far query needs (None = all rows)."""
    if lists <= 1:
        return None
    if not broad and estimated <= cfg.rank_all_max_rows:
        # A filter's matches cluster inside lists whose centroids the other rows set (a camera, an event's dates):
        # no distance bound from centroids sees where they lie, so few enough are all ranked (100k rows, a ~10 %
        # camera filter, example-image queries, 67 of 316 lists probed: page 5 recall 0.96, worst 0.6).
        return None
    want = max(cfg.candidates_target, pool)
    share = cfg.probe_share
    if far:
        share = max(share, cfg.far_probe_share_broad if broad else cfg.far_probe_share)
    probes = max(math.ceil(lists * want / max(estimated, 1)), cfg.probes_min, math.ceil(share * lists))
    # Probing most lists costs a B-tree descent per list (and per owner) for little saving: read every match.
    return None if probes >= lists * cfg.probe_all_share else probes


def list_bounds(cfg: PlannerConfig, scores: np.ndarray, min_cosine: np.ndarray) -> np.ndarray:
    """Each list's best possible similarity to the query, from the query's similarity to its centroid (`scores`)
    and its radius (`min_cosine`, the smallest cosine between the centroid and a row of it; -1 = unknown).

    A unit row x at cosine u from centroid c has similarity (q·c)u + (q⊥·x⊥) to the query q, where the parts
    off the centroid have lengths √(1-(q·c)²) and √(1-u²). At most they point the same way: the cone bound, which
    in 512 dimensions reaches nearly every list. Rows of a list lean towards a query by far less than that, so
    the off-centroid part counts at probe_bound_spread of its length, maximised over u in [radius, 1]."""
    cs = np.clip(scores.astype(np.float64), -1.0, 1.0)
    off = cfg.probe_bound_spread * np.sqrt(1.0 - cs**2)
    best_u = np.where(cs > 0, cs / np.maximum(np.hypot(cs, off), 1e-12), 0.0)
    u = np.clip(best_u, np.maximum(min_cosine, 0.0), 1.0)
    return cs * u + off * np.sqrt(1.0 - u**2)


def is_broad(cfg: PlannerConfig, estimated: int, total: int) -> bool:
    """Whether a filter matching about `estimated` of `total` rows is broad (hnsw_min_selectivity): it cannot
    match more than twice its estimate, and checking it row by row costs more than it saves."""
    return (min(1.0, estimated / total) if total > 0 else 1.0) >= cfg.hnsw_min_selectivity
