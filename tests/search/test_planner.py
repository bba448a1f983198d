"""The planner's choices at library sizes the test databases cannot reach (1M rows, 1,000 lists): pure
functions, checked against the numbers the README's benchmark reasons with."""

from __future__ import annotations

from photosearch.search import PlannerConfig
from photosearch.search.planner import choose

M = 1_000_000


def test_probes_small_enough_to_read_whole_are_not_bounded() -> None:
    cfg = PlannerConfig()
    # A text query under a ~10 % filter probes 7 % of the lists (~70k rows): cheaper to read them all, even if
    # the estimate were far too low, than to escalate to HNSW, which finds few neighbours of a far query.
    d = choose(cfg, estimated=100_000, total=M, depth=10, lists=1000, far="a text query")
    assert (d.strategy, d.probes, d.bound) == ("quantized", 70, None)
    # Unfiltered, it probes 2 %: never more rows than those lists hold.
    d = choose(cfg, estimated=M, total=M, depth=10, lists=1000, far="a text query")
    assert (d.strategy, d.probes, d.bound) == ("quantized", 20, None)
    # One owner's 1 %: 200 lists, ~200k rows if the estimate were wrong: bounded at 4 × the 2,000 candidates.
    d = choose(cfg, estimated=10_000, total=M, depth=10, lists=1000)
    assert (d.strategy, d.probes, d.bound) == ("quantized", 200, 8_000)
    # A configuration can bound every probe.
    d = choose(PlannerConfig(unbounded_probe_rows=0), estimated=100_000, total=M, depth=10, lists=1000, far="x")
    assert d.strategy == "quantized" and d.bound == 4 * 7_000


def test_near_broad_queries_walk_hnsw_and_small_filters_go_exact() -> None:
    cfg = PlannerConfig()
    d = choose(cfg, estimated=M, total=M, depth=10, lists=1000)
    assert d.strategy == "approximate" and d.ef_search == cfg.ef_search_rescued
    d = choose(cfg, estimated=900, total=M, depth=10, lists=1000)
    assert d.strategy == "exact" and d.bound == int(cfg.exact_max_rows * cfg.bound_factor)
