"""The planner's choices at library sizes the test databases cannot reach (1M rows, 1,000 lists): pure
functions, checked against the numbers the README's benchmark reasons with."""

from __future__ import annotations

from photosearch.search import PlannerConfig
from photosearch.search.planner import choose

M = 1_000_000


def test_probes_small_enough_to_read_whole_are_not_bounded() -> None:
    cfg = PlannerConfig()
    # A text query under a ~10 % filter probes 6 % of the lists (~60k rows): cheaper to read them all, even if
    # the estimate were far too low, than to escalate to HNSW, which finds few neighbours of a far query.
    d = choose(cfg, estimated=100_000, total=M, depth=10, lists=1000, far="a text query")
    assert (d.strategy, d.probes, d.bound) == ("quantized", 60, None)
    # Unfiltered, it probes 2 %: never more rows than those lists hold.
    d = choose(cfg, estimated=M, total=M, depth=10, lists=1000, far="a text query")
    assert (d.strategy, d.probes, d.bound) == ("quantized", 20, None)
    # One owner's 1 %: every one of her ~10k rows ranked (no centroid tells where a filter's rows lie), bounded
    # at 4 × the estimate in case it was far too low.
    d = choose(cfg, estimated=10_000, total=M, depth=10, lists=1000)
    assert (d.strategy, d.probes, d.bound) == ("quantized", None, 40_000)
    # A configuration can bound every probe.
    d = choose(PlannerConfig(unbounded_probe_rows=0), estimated=100_000, total=M, depth=10, lists=1000, far="x")
    assert d.strategy == "quantized" and d.bound == 4 * 6_000


def test_near_broad_queries_walk_hnsw_and_small_filters_go_exact() -> None:
    cfg = PlannerConfig()
    d = choose(cfg, estimated=M, total=M, depth=10, lists=1000)
    assert d.strategy == "approximate" and d.ef_search == cfg.ef_search_rescued
    d = choose(cfg, estimated=900, total=M, depth=10, lists=1000)
    assert d.strategy == "exact" and d.bound == int(cfg.exact_max_rows * cfg.bound_factor)


def test_the_server_ranks_broad_queries_in_memory_and_leaves_filters_to_postgres() -> None:
    cfg = PlannerConfig()
    # Unfiltered, far or near: the 20 nearest lists (~20k rows) ranked in numpy, 30 candidates checked.
    for far in ("a text query", None):
        d = choose(cfg, estimated=M, total=M, depth=10, lists=1000, far=far, resident_rows=M)
        assert (d.strategy, d.probes, d.candidates, d.pool) == ("memory", 20, 30, cfg.quantized_pool_min)
    # "Not trashed" (~99 %): a few more candidates, as some of the best may be filtered out.
    d = choose(cfg, estimated=990_000, total=M, depth=10, lists=1000, resident_rows=M)
    assert d.strategy == "memory" and d.candidates == 31
    # A ~10 % filter: PostgreSQL's list index reads only the matching rows; memory would rank them all.
    d = choose(cfg, estimated=100_000, total=M, depth=10, lists=1000, far="a text query", resident_rows=M)
    assert d.strategy == "quantized"
    # A few matches still go exact; without a copy in memory, broad queries walk HNSW as before.
    assert choose(cfg, estimated=900, total=M, depth=10, lists=1000, resident_rows=M).strategy == "exact"
    assert choose(cfg, estimated=M, total=M, depth=10, lists=1000).strategy == "approximate"
    # A small library without lists: every row, ranked in memory (exact).
    d = choose(cfg, estimated=15_000, total=15_000, depth=10, lists=1, resident_rows=15_000)
    assert (d.strategy, d.probes) == ("memory", None)
    # Forced, even where it would not be chosen.
    d = choose(cfg, estimated=100_000, total=M, depth=10, lists=1000, forced="memory", resident_rows=M)
    assert d.strategy == "memory" and d.probes == 20 and d.candidates == 210


def test_filters_the_copy_holds_rank_only_their_rows_in_memory() -> None:
    """Owner, date and city filters (held=True): numpy ranks the probed rows that match, as PostgreSQL's list
    index would read them, and a tenth over the page (+ slack) is enough, whatever the selectivity."""
    cfg = PlannerConfig()
    # A text query under a ~10 % date filter: 60 lists (60k rows checked), ~6k ranked, 30 candidates.
    d = choose(cfg, estimated=100_000, total=M, depth=10, lists=1000, far="a text query", resident_rows=M, held=True)
    assert (d.strategy, d.probes, d.candidates) == ("memory", 60, 21)
    # One owner's 1 %: all her ~10k rows, from the copy's owner index; the seed's k=64 hands over 81.
    d = choose(cfg, estimated=10_000, total=M, depth=10, lists=1000, resident_rows=M, held=True)
    assert (d.strategy, d.probes, d.candidates) == ("memory", None, 21)
    d = choose(cfg, estimated=20_000, total=M, depth=64, lists=1000, resident_rows=M, held=True)
    assert (d.strategy, d.candidates) == ("memory", 81)
    # Too rare to probe (favourites taken in one year, 0.3 %): every row is checked in place, ~3,000 ranked.
    d = choose(cfg, estimated=3_000, total=M, depth=10, lists=1000, resident_rows=M, held=True)
    assert (d.strategy, d.probes, d.candidates) == ("memory", None, 21)
    big = PlannerConfig(memory_max_scan=M // 2)
    assert choose(big, estimated=3_000, total=M, depth=10, lists=1000, resident_rows=M, held=True).strategy != "memory"
    # At 100k, one owner's 976 photos are found and ranked in memory rather than read one by one (exact); at 1M the
    # same count stays exact (1,000 rows checked per match), as do a few matches anywhere.
    d = choose(cfg, estimated=976, total=100_000, depth=10, lists=316, resident_rows=100_000, held=True)
    assert (d.strategy, d.probes) == ("memory", None)
    assert choose(cfg, estimated=970, total=M, depth=10, lists=1000, resident_rows=M, held=True).strategy == "exact"
    # ... unless the copy's owner, date or file-name index finds them without reading the other rows.
    d = choose(cfg, estimated=970, total=M, depth=10, lists=1000, resident_rows=M, held=True, held_rows=970)
    assert (d.strategy, d.probes, d.candidates) == ("memory", None, 21) and "date or file-name index" in d.reason
    # A held file-name filter runs in memory however few match: its exact path would read every photo's name.
    assert choose(cfg, estimated=40, total=M, depth=10, lists=1000, resident_rows=M, held=True, held_rows=40,
                  unindexed=True).strategy == "memory"  # fmt: skip
    assert choose(cfg, estimated=40, total=M, depth=10, lists=1000, resident_rows=M, held=True, held_rows=40,
                  unindexed=False).strategy == "exact"  # fmt: skip
    # A broad filter is not applied in memory (whole lists are ranked), whatever the index would find.
    wide = PlannerConfig(hnsw_min_selectivity=0.05)
    d = choose(wide, estimated=395, total=4000, depth=64, lists=1, resident_rows=4000, held=True, held_rows=399)
    assert (d.strategy, d.candidates) == ("memory", 1307) and "index" not in d.reason  # 2 × 64 / 9.9 % + 10
    assert choose(cfg, estimated=98, total=100_000, depth=10, lists=316, resident_rows=100_000, held=True).strategy == (
        "exact"
    )
    # The same filters without the copy holding them (a favourite among them) stay in PostgreSQL.
    assert choose(cfg, estimated=10_000, total=M, depth=10, lists=1000, resident_rows=M).strategy == "quantized"
