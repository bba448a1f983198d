"""Complete results at every selectivity: min(k, matches) rows and recall >= 0.98 against numpy, for the
planner's own choice and for each strategy forced; the seed scenario; fallbacks; pagination."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from photosearch.search import PlannerConfig, SearchQuery, SearchService
from tests.search.conftest import SearchFixture, brute_force
from tests.search.reference import reference_mask

# Small thresholds so the 4,000-row library exercises every path under "auto".
SMALL = PlannerConfig(
    exact_max_rows=20,
    quantized_max_rows=300,
    unlisted_rank_max_rows=300,
    hnsw_min_selectivity=0.05,
    quantized_pool_min=30,
    quantized_pool_per_row=3,
)


def _window(lib, count: int, start: int = 1000) -> dict:
    """taken_after/before bounds that select exactly `count` live (not trashed) assets."""
    live = sorted(t for t, d in zip(lib.taken, lib.deleted, strict=True) if not d)
    lo, hi = live[start], live[start + count]
    return {"taken_after": lo, "taken_before": hi}


def _selectivities(lib) -> dict[str, dict]:
    n_live = int((~lib.deleted).sum())
    return {
        "100%": {"with_deleted": True},
        "10%": _window(lib, n_live // 10),
        "1%": _window(lib, n_live // 100, start=200),
        "0.1%": _window(lib, 4, start=3000),
        "3 rows": _window(lib, 3, start=42),
    }


def _queries(lib, n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(11)
    picks = rng.integers(0, len(lib), n)
    noisy = lib.embeddings[picks] + 0.3 * rng.standard_normal((n, lib.embeddings.shape[1])).astype(np.float32)
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


@pytest.mark.parametrize("strategy", ["auto", "auto+memory", "exact", "quantized", "approximate", "memory"])
@pytest.mark.parametrize("k", [10, 64])
def test_complete_and_accurate_at_every_selectivity(search_fixture: SearchFixture, strategy: str, k: int) -> None:
    fx = search_fixture
    # "auto" with small thresholds walks every path; a forced strategy runs with the shipped pool sizes.
    # "+memory": the service also holds the library in memory, as `photosearch serve` does.
    resident = fx.resident if "memory" in strategy else None
    config = SMALL if strategy.startswith("auto") else PlannerConfig()
    service = SearchService(fx.db, config=config, resident=resident)
    auto_memory, strategy = strategy == "auto+memory", strategy.split("+")[0]
    for label, filters in _selectivities(fx.lib).items():
        recalls = []
        for q in _queries(fx.lib):
            query = SearchQuery(vector=q.tolist(), k=k, strategy=strategy, **filters)
            mask = reference_mask(fx.lib, query)
            page = service.search(query, fx.admin)
            expected = brute_force(fx.lib, mask, q, k)
            assert len(page.items) == min(k, int(mask.sum())), (label, page.plan)
            got = {h.id for h in page.items}
            recalls.append(len(got & set(expected)) / len(expected))
            if strategy == "auto" and label == "3 rows":
                assert page.plan.strategy == "exact"
            if auto_memory and label in ("100%", "10%", "1%"):  # broad, or a date range the copy holds
                assert page.plan.strategy == "memory", page.plan
            elif strategy == "auto" and label == "100%":
                # HNSW, unless the lists are trained and the query is far from all of them (text-like: these are)
                far = page.plan.nearest_list_score is not None and page.plan.nearest_list_score < SMALL.far_score
                assert page.plan.strategy == ("quantized" if far else "approximate"), page.plan
            if strategy == "auto" and not auto_memory and label == "1%" and k == 10:
                assert page.plan.strategy == "quantized"
        assert np.mean(recalls) >= 0.98, (label, strategy, k, recalls)


def test_exact_strategy_equals_brute_force(search_fixture: SearchFixture) -> None:
    fx = search_fixture
    q = _queries(fx.lib, 1)[0]
    page = SearchService(fx.db).search(SearchQuery(vector=q.tolist(), k=25, strategy="exact"), fx.admin)
    mask = reference_mask(fx.lib, SearchQuery(vector=q.tolist()))
    assert [h.id for h in page.items] == brute_force(fx.lib, mask, q, 25)
    distances = [h.distance for h in page.items]
    assert distances == sorted(distances)
    assert all(abs(h.score - (1 - h.distance)) < 1e-9 for h in page.items)


@pytest.mark.parametrize("strategy", ["auto", "approximate"])
def test_seed_scenario_64_nearest_not_by_allen(search_fixture: SearchFixture, strategy: str) -> None:
    """The seed's example: 64 nearest where owner != 'Allen' (2 % of the photos), ef_search 64."""
    fx = search_fixture
    allen = fx.owners["Allen"]
    others = [n for n in fx.lib.owner_names if n != "Allen"]
    for q in _queries(fx.lib, 3):
        query = SearchQuery(vector=q.tolist(), k=64, exclude_owners=["Allen"], ef_search=64, strategy=strategy)
        page = SearchService(fx.db, config=SMALL).search(query, fx.admin)
        mask = reference_mask(fx.lib, query, owner_names=others)
        assert mask.sum() >= 64
        assert len(page.items) == 64
        assert all(h.owner_id != allen for h in page.items)
        expected = set(brute_force(fx.lib, mask, q, 64))
        assert len({h.id for h in page.items} & expected) / 64 >= 0.98


def test_approximate_falls_back_to_exact_when_the_scan_runs_dry(search_fixture: SearchFixture) -> None:
    fx = search_fixture
    cfg = PlannerConfig(
        exact_max_rows=0,
        quantized_max_rows=0,
        unlisted_rank_max_rows=0,
        quantized_pool_min=0,
        quantized_pool_per_row=0,
        max_scan_tuples_min=50,
        max_scan_tuples_max=50,
        hnsw_min_selectivity=0.0,
        far_score=0.0,  # these queries are far from the lists: keep them on HNSW, whose fallback is under test
    )
    window = _window(fx.lib, 3, start=500)
    q = _queries(fx.lib, 1)[0]
    page = SearchService(fx.db, config=cfg).search(SearchQuery(vector=q.tolist(), k=10, **window), fx.admin)
    assert len(page.items) == 3
    assert page.plan.fallback and "re-ran exactly" in page.plan.fallback
    assert page.plan.strategy == "exact"


def test_paths_give_up_when_the_estimate_was_far_too_low(search_fixture: SearchFixture) -> None:
    fx = search_fixture
    # exact, but stop after 200 rows; quantized stops after 300; then HNSW
    cfg = PlannerConfig(exact_max_rows=2000, quantized_max_rows=300, bound_factor=0.1)
    q = _queries(fx.lib, 1)[0]
    query = SearchQuery(vector=q.tolist(), k=10, **_window(fx.lib, 400))
    page = SearchService(fx.db, config=cfg).search(query, fx.admin)
    assert page.plan.fallback and "exact → quantized" in page.plan.fallback
    assert len(page.items) == 10
    expected = set(brute_force(fx.lib, reference_mask(fx.lib, query), q, 10))
    assert len({h.id for h in page.items} & expected) >= 9
    cfg = PlannerConfig(
        exact_max_rows=10,
        quantized_max_rows=2000,
        bound_factor=0.1,
        unbounded_probe_rows=0,
        unlisted_rank_max_rows=2000,
    )
    page = SearchService(fx.db, config=cfg).search(query, fx.admin)
    assert page.plan.fallback and "quantized → approximate" in page.plan.fallback
    assert len(page.items) == 10


@pytest.mark.parametrize("strategy", ["exact", "quantized", "approximate", "memory"])
def test_pages_are_stable_and_disjoint(search_fixture: SearchFixture, strategy: str) -> None:
    fx = search_fixture
    service = SearchService(fx.db, resident=fx.resident)
    q = _queries(fx.lib, 1)[0].tolist()
    whole = service.search(SearchQuery(vector=q, k=60, strategy=strategy), fx.admin)
    pages = [service.search(SearchQuery(vector=q, k=20, page=p, strategy=strategy), fx.admin) for p in (1, 2, 3)]
    ids = [h.id for p in pages for h in p.items]
    assert len(ids) == len(set(ids)) == 60
    assert ids == [h.id for h in whole.items]
    assert pages[0].next_page == 2


def test_order_by_date_reorders_the_same_top_results(search_fixture: SearchFixture) -> None:
    fx = search_fixture
    q = _queries(fx.lib, 1)[0].tolist()
    service = SearchService(fx.db)
    by_rel = service.search(SearchQuery(vector=q, k=30), fx.admin)
    by_date = service.search(SearchQuery(vector=q, k=30, order="date"), fx.admin)
    assert {h.id for h in by_rel.items} == {h.id for h in by_date.items}
    dates = [h.local_date_time for h in by_date.items]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.parametrize("strategy", ["exact", "quantized", "approximate", "memory"])
def test_max_distance_cuts_the_tail(search_fixture: SearchFixture, strategy: str) -> None:
    fx = search_fixture
    q = _queries(fx.lib, 1)[0]
    mask = reference_mask(fx.lib, SearchQuery(vector=q.tolist()))
    d = np.sort(1.0 - fx.lib.embeddings[mask] @ q)
    cutoff = float((d[14] + d[15]) / 2)  # exactly 15 rows within the cutoff
    query = SearchQuery(vector=q.tolist(), k=50, max_distance=cutoff, strategy=strategy)
    page = SearchService(fx.db, resident=fx.resident).search(query, fx.admin)
    assert len(page.items) == 15
    assert all(h.distance <= cutoff for h in page.items)


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_other_metrics_rank_normalised_vectors_like_cosine(search_fixture: SearchFixture, metric: str) -> None:
    fx = search_fixture
    q = _queries(fx.lib, 1)[0]
    service = SearchService(fx.db)
    cos = service.search(SearchQuery(vector=q.tolist(), k=20, strategy="exact"), fx.admin)
    other = service.search(SearchQuery(vector=q.tolist(), k=20, distance=metric, strategy="exact"), fx.admin)
    assert [h.id for h in other.items] == [h.id for h in cos.items]
    emb = {i: fx.lib.embeddings[j] for j, i in enumerate(fx.lib.ids)}
    for h in other.items:
        want = float(np.linalg.norm(emb[h.id] - q)) if metric == "l2" else -float(emb[h.id] @ q)
        assert h.distance == pytest.approx(want, abs=1e-4)
    approx = service.search(SearchQuery(vector=q.tolist(), k=20, distance=metric, strategy="approximate"), fx.admin)
    assert len({h.id for h in approx.items} & {h.id for h in cos.items}) >= 19


def test_more_like_this_excludes_the_asset_itself(search_fixture: SearchFixture) -> None:
    fx = search_fixture
    i = int(np.nonzero(~fx.lib.deleted)[0][5])
    page = SearchService(fx.db).search(SearchQuery(like_asset_id=fx.lib.ids[i], k=10), fx.admin)
    mask = reference_mask(fx.lib, SearchQuery(like_asset_id=fx.lib.ids[i]))
    assert fx.lib.ids[i] not in {h.id for h in page.items}
    assert [h.id for h in page.items] == brute_force(fx.lib, mask, fx.lib.embeddings[i], 10, exclude=i)


def test_plan_is_reported(search_fixture: SearchFixture) -> None:
    fx = search_fixture
    q = _queries(fx.lib, 1)[0].tolist()
    page = SearchService(fx.db, config=SMALL).search(
        SearchQuery(vector=q, k=10, taken_after=datetime(2030, 1, 1).astimezone()), fx.admin
    )
    assert page.items == []
    assert page.plan.strategy == "exact" and page.plan.estimated_matches is not None
    assert page.plan.reason and "total" in page.plan.timings_ms


def test_far_vectors_take_the_far_path_with_or_without_lists(search_fixture: SearchFixture) -> None:
    """A vector far from every photo (as CLIP text is) is ranked over lists or every match, not left to HNSW:
    with lists the nearest centroid says it is far; without them every match is ranked anyway."""
    fx = search_fixture
    service = SearchService(fx.db, config=PlannerConfig(exact_max_rows=0))
    rng = np.random.default_rng(21)
    for i in (5, 2500):
        noise = rng.standard_normal(fx.lib.embeddings.shape[1]).astype(np.float32)
        far = fx.lib.embeddings[i] + 5.0 * noise / np.linalg.norm(noise)
        far /= np.linalg.norm(far)
        query = SearchQuery(vector=far.tolist(), k=10, with_deleted=True)
        page = service.search(query, fx.admin)
        assert page.plan.strategy == "quantized", page.plan
        if page.plan.lists:
            assert "far from every list centroid" in page.plan.reason
        else:
            assert "no search lists" in page.plan.reason
        expected = brute_force(fx.lib, reference_mask(fx.lib, query), far, 10)
        assert len({h.id for h in page.items} & set(expected)) >= 9, page.plan
