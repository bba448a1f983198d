"""Every filter against a python reference; owner isolation; hostile strings in every string filter."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from pydantic import ValidationError

from photosearch.db.pool import connect_pool
from photosearch.search import SearchError, SearchQuery, SearchService
from tests.search.conftest import TRICKY_NAMES, SearchFixture, brute_force
from tests.search.reference import reference_mask

Q_SEED = 3

FILTERS: dict[str, dict] = {
    "library": {},  # filled in by the test (needs ids)
    "owners": {"owners": ["Beth", "chen@example.org"]},
    "exclude_owners": {"exclude_owners": ["Allen", "Dana"]},
    "video": {"asset_type": "VIDEO"},
    "taken_range": {"taken_after": datetime(2017, 3, 1, tzinfo=UTC), "taken_before": datetime(2019, 1, 1, tzinfo=UTC)},
    "created_after": {"created_after": datetime(2023, 6, 1, tzinfo=UTC)},
    "created_before": {"created_before": datetime(2015, 2, 1, tzinfo=UTC)},
    "favorite": {"is_favorite": True},
    "not_archived": {"is_archived": False},
    "archived": {"is_archived": True},
    "offline": {"is_offline": True},
    "trashed_only": {"trashed_only": True},
    "with_deleted": {"with_deleted": True},
    "make": {"make": "Apple"},
    "model": {"model": "ILCE-7M3"},
    "lens": {"lens": "RF24-105mm F4 L IS USM"},
    "city": {"city": "Kyoto"},
    "state": {"state": "Bavaria"},
    "country": {"country": "United States"},
    # camera and place names match whatever their case (the SQL filters and the in-memory copy alike)
    "make_lower_case": {"make": "apple"},
    "model_mixed_case": {"model": "ilce-7m3"},
    "city_upper_case": {"city": "KYOTO"},
    "country_mixed_case": {"country": "united STATES"},
    "rating_min": {"rating_min": 4},
    "rating_eq": {"rating": 0},
    "has_gps": {"has_gps": True},
    "no_gps": {"has_gps": False},
    "bbox": {"bbox": (30.0, 100.0, 50.0, 140.0)},
    "bbox_antimeridian": {"bbox": (-40.0, 170.0, 30.0, -150.0)},
    "near": {"near": (48.86, 2.35, 25.0)},
    "file_name": {"file_name_contains": "img_00001"},
    "combined": {"make": "Apple", "is_favorite": False, "taken_after": datetime(2016, 1, 1, tzinfo=UTC)},
}


def _query_vector(fx: SearchFixture) -> list[float]:
    rng = np.random.default_rng(Q_SEED)
    v = fx.lib.embeddings[17] + 0.05 * rng.standard_normal(fx.lib.embeddings.shape[1]).astype(np.float32)
    return (v / np.linalg.norm(v)).tolist()


def _owner_names(filters: dict, fx: SearchFixture) -> list[str] | None:
    names = list(fx.lib.owner_names)
    if "owners" in filters:
        return ["Beth", "Chen"]
    if "exclude_owners" in filters:
        return [n for n in names if n not in ("Allen", "Dana")]
    return None


@pytest.mark.parametrize("name", list(FILTERS))
@pytest.mark.parametrize("strategy", ["exact", "quantized", "memory", "auto"])
def test_filter_matches_reference(search_fixture: SearchFixture, name: str, strategy: str) -> None:
    fx = search_fixture
    filters = dict(FILTERS[name])
    owner_names = _owner_names(filters, fx)
    if name == "library":
        with fx.db.connection() as conn:
            lib_id = conn.execute(
                "SELECT l.id FROM libraries l JOIN users u ON u.id = l.owner_id WHERE u.name = 'Beth'"
            ).fetchone()[0]
        filters = {"library_ids": [lib_id]}
        owner_names = ["Beth"]
    v = _query_vector(fx)
    query = SearchQuery(vector=v, k=40, strategy=strategy, **filters)
    mask = reference_mask(fx.lib, query, owner_names=owner_names)
    assert mask.sum() > 0, f"filter {name} matches nothing in the synthetic library"
    page = SearchService(fx.db, resident=fx.resident).search(query, fx.admin)
    expected = brute_force(fx.lib, mask, np.asarray(v, dtype=np.float32), 40)
    assert len(page.items) == min(40, int(mask.sum()))
    got = [h.id for h in page.items]
    if strategy == "memory":  # ranked in memory, filtered by PostgreSQL; or, if too few passed, planned again
        assert page.plan.strategy == "memory" or "in memory match the filters" in (page.plan.fallback or "")
    if strategy == "exact":
        assert got == expected
    else:
        assert len(set(got) & set(expected)) >= 0.98 * len(expected)


def test_non_admin_sees_only_own_photos(search_fixture: SearchFixture) -> None:
    fx = search_fixture
    beth = fx.user("Beth")
    v = _query_vector(fx)
    for strategy in ("auto", "exact", "quantized", "approximate"):
        page = SearchService(fx.db).search(SearchQuery(vector=v, k=100, strategy=strategy), beth)
        assert page.items and all(h.owner_id == beth["id"] for h in page.items)
        mask = reference_mask(fx.lib, SearchQuery(vector=v), owner_names=["Beth"])
        assert len(page.items) == min(100, int(mask.sum()))
    with pytest.raises(SearchError, match="own photos"):
        SearchService(fx.db).search(SearchQuery(vector=v, owners=["Allen"]), beth)
    allen_asset = fx.lib.ids[int(np.nonzero(fx.lib.owner == 0)[0][0])]
    with pytest.raises(SearchError, match="no asset"):  # another owner's asset does not exist for Beth
        SearchService(fx.db).search(SearchQuery(like_asset_id=allen_asset), beth)


def test_excluding_every_owner_returns_nothing(search_fixture: SearchFixture) -> None:
    fx = search_fixture
    page = SearchService(fx.db).search(
        SearchQuery(vector=_query_vector(fx), exclude_owners=fx.lib.owner_names + ["root"]), fx.admin
    )
    assert page.items == [] and page.next_page is None


HOSTILE = ["O'Fallon", "100%", "_", "a;DROP TABLE assets;--", "Ōsaka", "Zürich", "\\", "C:\\photos\\", "%' OR '1'='1"]


@pytest.mark.parametrize("field", ["make", "model", "lens", "city", "state", "country", "file_name_contains"])
def test_hostile_strings_are_just_values(search_fixture: SearchFixture, field: str) -> None:
    fx = search_fixture
    v = _query_vector(fx)
    for value in HOSTILE:
        query = SearchQuery(vector=v, k=1000, strategy="exact", with_deleted=True, **{field: value})
        page = SearchService(fx.db).search(query, fx.admin)
        mask = reference_mask(fx.lib, query)
        assert len(page.items) == min(1000, int(mask.sum())), (field, value)
        expected = brute_force(fx.lib, mask, np.asarray(v, dtype=np.float32), 1000)
        assert {h.id for h in page.items} == set(expected)
    with fx.db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM assets").fetchone()[0] == len(fx.lib)


def test_tricky_file_names_are_found_literally(search_fixture: SearchFixture) -> None:
    fx = search_fixture
    v = _query_vector(fx)
    for i, name in enumerate(TRICKY_NAMES):
        for needle in (name, name[2:9]):
            page = SearchService(fx.db).search(
                SearchQuery(vector=v, k=10, with_deleted=True, file_name_contains=needle), fx.admin
            )
            assert fx.lib.ids[i] in {h.id for h in page.items}, needle
    assert reference_mask(fx.lib, SearchQuery(vector=v, city="O'Fallon")).sum() > 0  # the city case is real


@pytest.mark.parametrize("owner", ["O'Brien", "a;DROP TABLE users;--", "雪"])
def test_hostile_owner_names_are_unknown_users(search_fixture: SearchFixture, owner: str) -> None:
    fx = search_fixture
    with pytest.raises(SearchError, match="unknown user"):
        SearchService(fx.db).search(SearchQuery(vector=_query_vector(fx), owners=[owner]), fx.admin)


def test_bad_queries_are_clear_errors(search_fixture: SearchFixture) -> None:
    fx = search_fixture
    service = SearchService(fx.db)
    v = _query_vector(fx)
    with pytest.raises(ValidationError, match="exactly one of"):
        SearchQuery()
    with pytest.raises(ValidationError, match="exactly one of"):
        SearchQuery(vector=v, text="cat")
    with pytest.raises(ValidationError):
        SearchQuery(vector=v, k=1001)
    with pytest.raises(ValidationError, match="page"):
        SearchQuery(vector=v, k=1000, page=11)
    with pytest.raises(ValidationError, match="bbox"):
        SearchQuery(vector=v, bbox=(50, 0, 40, 10))
    with pytest.raises(ValidationError):
        SearchQuery(vector=v, unknown_filter=1)
    with pytest.raises(SearchError, match="dimensions"):
        service.search(SearchQuery(vector=[0.1] * 3), fx.admin)
    with pytest.raises(SearchError, match="NaN"):
        service.search(SearchQuery(vector=[float("nan")] * len(v)), fx.admin)
    with pytest.raises(SearchError, match="zeros"):
        service.search(SearchQuery(vector=[0.0] * len(v)), fx.admin)
    with pytest.raises(SearchError, match="CLIP model"):
        service.search(SearchQuery(text="a red mushroom"), fx.admin)


def test_owner_filters_follow_changes_to_users(search_fixture: SearchFixture) -> None:
    """The service resolves owner names from a copy of `users`; a user renamed or added after it read them is
    seen by the next search (migration 040's users_version tells it the copy is stale)."""
    fx = search_fixture
    service = SearchService(fx.db)
    v = _query_vector(fx)
    beth = fx.owners["Beth"]
    page = service.search(SearchQuery(vector=v, k=5, owners=["Beth"]), fx.admin)
    assert page.items and {h.owner_id for h in page.items} == {beth}
    with fx.db.connection() as conn:
        conn.execute("UPDATE users SET name = 'Bethany' WHERE id = %s", (beth,))
        conn.execute("INSERT INTO users (name, email) VALUES ('Zed', 'zed@example.org')")
    try:
        with pytest.raises(SearchError, match="unknown user"):  # the copy still knows a "Beth"
            service.search(SearchQuery(vector=v, owners=["Beth"]), fx.admin)
        page = service.search(SearchQuery(vector=v, k=5, owners=["Bethany"]), fx.admin)
        assert page.items and {h.owner_id for h in page.items} == {beth}
        assert service.search(SearchQuery(vector=v, owners=["zed@example.org"]), fx.admin).items == []
        page = service.search(SearchQuery(vector=v, k=1000, exclude_owners=["Bethany", "Zed"]), fx.admin)
        assert page.items and beth not in {h.owner_id for h in page.items}
    finally:
        with fx.db.connection() as conn:
            conn.execute("UPDATE users SET name = 'Beth' WHERE id = %s", (beth,))
            conn.execute("DELETE FROM users WHERE email = 'zed@example.org'")
    page = service.search(SearchQuery(vector=v, k=5, owners=["Beth"]), fx.admin)
    assert {h.owner_id for h in page.items} == {beth}


def test_search_hands_connections_back_as_it_found_them(search_fixture: SearchFixture) -> None:
    """Searches run in autocommit with per-statement settings: neither the mode nor a setting outlives them,
    not even after a search that failed."""
    fx = search_fixture
    db = connect_pool(fx.db.server, max_size=1)  # one connection: the one every search used
    try:
        service = SearchService(db)
        v = _query_vector(fx)
        for strategy in ("auto", "exact", "quantized", "approximate"):
            assert service.search(SearchQuery(vector=v, k=10, strategy=strategy, owners=["Beth"]), fx.admin).items
        with pytest.raises(SearchError, match="dimensions"):
            service.search(SearchQuery(vector=[0.1] * 3), fx.admin)
        with db.connection() as conn:
            assert conn.autocommit is False
            settings = conn.execute(
                "SELECT current_setting('jit'), current_setting('join_collapse_limit'),"
                " current_setting('enable_hashjoin'), current_setting('hnsw.ef_search')"
            ).fetchone()
            assert settings == ("on", "8", "on", "40")
    finally:
        db.close()
