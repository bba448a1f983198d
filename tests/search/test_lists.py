"""Search lists (migration 013, search/lists.py): training, the triggers that keep search_ivf in sync, the
probe's fallback when a filter's rows sit in far lists, and `photosearch db optimize`."""

from __future__ import annotations

import numpy as np
import pytest

from photosearch.config import Settings
from photosearch.db import Database
from photosearch.db import search as sq
from photosearch.search import PlannerConfig, SearchQuery, SearchService
from photosearch.search.lists import kmeans, list_count, needs_training, train_lists
from photosearch.search.synthetic import make_library
from tests.search.conftest import SearchFixture, brute_force, cli_json, insert_library
from tests.search.reference import reference_mask

DIM = 32


def _ivf(db: Database) -> dict:
    with db.connection() as conn:
        rows = conn.execute("SELECT asset_id, list_id, city, is_favorite FROM search_ivf").fetchall()
    return {r[0]: r[1:] for r in rows}


class _TextTower:
    """A text tower that maps every text to one given vector: the planner's rules for text queries are under
    test, not the model's."""

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = vector

    def encode_text(self, text: str) -> np.ndarray:
        return self.vector


def _library(db: Database, n: int = 600, seed: int = 3):
    lib = make_library(n, DIM, seed=seed, event_size=20)
    return lib, insert_library(db, lib)


def test_training_assigns_every_row_its_nearest_list_and_triggers_keep_up(db: Database) -> None:
    lib, owners = _library(db)
    assert set(v[0] for v in _ivf(db).values()) == {0}  # before training: one list
    result = train_lists(db, lists=8, min_rows=0)
    assert result.skipped is None and result.lists == 8
    with db.connection() as conn:
        centroids = sq.centroids(conn)
    assert centroids.shape == (8, DIM)
    ivf = _ivf(db)
    nearest = np.argmax(lib.embeddings @ centroids.T, axis=1)
    assert [ivf[i][0] for i in lib.ids] == nearest.tolist()
    with db.connection() as conn:
        radii = sq.list_radii(conn)
    cosine = np.sum(lib.embeddings * centroids[nearest], axis=1)
    expected = [cosine[nearest == j].min() for j in range(8)]  # each list's farthest row, in numpy
    np.testing.assert_allclose(radii, expected, atol=1e-5)

    # A photo indexed after training: the trigger files it under its nearest list, EXIF and flag changes follow.
    rng = np.random.default_rng(5)
    vec = rng.standard_normal(DIM).astype(np.float32)
    vec /= np.linalg.norm(vec)
    with db.connection() as conn:
        owner = owners[lib.owner_names[0]]
        lib_id = conn.execute("SELECT id FROM libraries WHERE owner_id = %s", (owner,)).fetchone()[0]
        asset = conn.execute(
            "INSERT INTO assets (owner_id, library_id, original_path, original_file_name, checksum, file_size,"
            " file_created_at, file_modified_at, local_date_time) VALUES (%s, %s, '/n/new.jpg', 'new.jpg', '\\x02',"
            " 1, now(), now(), now()) RETURNING id",
            (owner, lib_id),
        ).fetchone()[0]
        conn.execute("INSERT INTO smart_search (asset_id, embedding) VALUES (%s, %s)", (asset, vec))
    assert _ivf(db)[asset] == (int(np.argmax(centroids @ vec)), None, False)
    with db.connection() as conn:
        conn.execute("INSERT INTO exif (asset_id, city) VALUES (%s, 'Nowhere-on-Sea')", (asset,))
        conn.execute("UPDATE assets SET is_favorite = true WHERE id = %s", (asset,))
    assert _ivf(db)[asset][1:] == ("Nowhere-on-Sea", True)
    service = SearchService(db)
    admin = {"id": None, "is_admin": True}
    for strategy in ("quantized", "exact"):
        page = service.search(SearchQuery(vector=vec.tolist(), city="Nowhere-on-Sea", strategy=strategy), admin)
        assert [h.id for h in page.items] == [asset]
    with db.connection() as conn:
        conn.execute("DELETE FROM assets WHERE id = %s", (asset,))
    assert asset not in _ivf(db)


def test_training_policy() -> None:
    assert list_count(1_000_000) == 1000 and list_count(100) == 16 and list_count(10**9) == 4096
    assert needs_training(5_000, None) is None  # small libraries rank every filtered row
    assert "no lists" in (needs_training(50_000, None) or "")
    info = {"lists": 224, "trained_rows": 50_000}
    assert needs_training(90_000, info) is None
    assert "changed" in (needs_training(100_000, info) or "")
    assert "changed" in (needs_training(25_000, info) or "")


def test_kmeans_separates_clear_clusters() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(4, 16, dtype=np.float32)
    x = np.repeat(centres, 50, axis=0) + 0.05 * rng.standard_normal((200, 16)).astype(np.float32)
    c = kmeans(x, 4, seed=1)
    assert np.allclose(np.linalg.norm(c, axis=1), 1.0, atol=1e-5)
    assert sorted(np.argmax(c @ centres.T, axis=1).tolist()) == [0, 1, 2, 3]


def test_a_filter_in_far_lists_widens_the_probe_and_stays_complete(lists_fixture: SearchFixture) -> None:
    fx = lists_fixture
    # Probe one list for ~10 candidates: a city whose photos sit in lists far from the query has too few there.
    cfg = PlannerConfig(exact_max_rows=0, candidates_target=10, probes_min=1, probe_share=0.0)
    service = SearchService(fx.db, config=cfg)
    widened = 0
    for i in range(0, 400, 40):
        q = fx.lib.embeddings[i]
        for city in ("Kyoto", "Berlin", "Zürich"):
            query = SearchQuery(vector=q.tolist(), k=10, city=city)
            page = service.search(query, fx.admin)
            mask = reference_mask(fx.lib, query)
            assert len(page.items) == min(10, int(mask.sum()))
            assert page.plan.strategy == "quantized" and page.plan.lists and page.plan.lists > 1
            allowed = {fx.lib.ids[j] for j in np.nonzero(mask)[0]}
            assert {h.id for h in page.items} <= allowed  # (recall at the shipped probe sizes: test_completeness)
            assert [h.distance for h in page.items] == sorted(h.distance for h in page.items)
            widened += "probed" in (page.plan.fallback or "")
    assert widened > 0


def test_db_optimize_trains_the_lists(db: Database, settings: Settings, cli_env: dict) -> None:
    _library(db, n=300)

    def run(*args: str) -> dict:
        return cli_json(cli_env, "db", "optimize", *args)

    skipped = run()
    assert skipped["trained"] is False and "not needed" in skipped["note"]
    trained = run("--force", "--lists", "6")
    assert trained["trained"] is True and trained["lists"] == 6 and trained["embeddings"] == 300
    assert len({v[0] for v in _ivf(db).values()}) == 6


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_quantized_scores_at_full_precision(lists_fixture: SearchFixture, metric: str) -> None:
    fx = lists_fixture
    q = fx.lib.embeddings[7]
    service = SearchService(fx.db, config=PlannerConfig(candidates_target=200))  # probe 8 of the 63 lists
    probe = service.search(SearchQuery(vector=q.tolist(), k=20, distance=metric, strategy="quantized"), fx.admin)
    exact = service.search(SearchQuery(vector=q.tolist(), k=20, distance=metric, strategy="exact"), fx.admin)
    assert probe.plan.probes is not None
    shared = {h.id: h.distance for h in exact.items}
    assert len(shared.keys() & {h.id for h in probe.items}) >= 18
    for h in probe.items:
        if h.id in shared:
            assert h.distance == pytest.approx(shared[h.id], abs=1e-6)


def test_hnsw_results_are_merged_with_the_nearest_lists(lists_fixture: SearchFixture) -> None:
    fx = lists_fixture
    service = SearchService(fx.db)
    for i in (3, 333, 2222):
        q = fx.lib.embeddings[i]
        query = SearchQuery(vector=q.tolist(), k=10, with_deleted=True)
        page = service.search(query, fx.admin)
        assert page.plan.strategy == "approximate" and "merged with the rows of the 3" in page.plan.reason
        assert page.plan.probes == 3 and page.plan.ef_search == PlannerConfig().ef_search_rescued
        expected = brute_force(fx.lib, reference_mask(fx.lib, query), q, 10)
        assert len({h.id for h in page.items} & set(expected)) >= 9
        assert [h.distance for h in page.items] == sorted(h.distance for h in page.items)


def test_far_queries_probe_more_lists_instead_of_hnsw(lists_fixture: SearchFixture) -> None:
    """A query far from every centroid (as CLIP text is from photos) skips HNSW, whose recall collapses for such
    queries, and probes a share of the lists; a query near the library (an example photo) keeps HNSW."""
    fx = lists_fixture
    cfg = PlannerConfig()
    service = SearchService(fx.db, config=cfg)
    rng = np.random.default_rng(5)
    dim = fx.lib.embeddings.shape[1]
    for i in (7, 1234):
        near = fx.lib.embeddings[i]
        noise = rng.standard_normal(dim).astype(np.float32)
        far = near + 3.2 * noise / np.linalg.norm(noise)  # cosine ~0.3 to its source
        for q, is_far in ((near, False), (far / np.linalg.norm(far), True)):
            query = SearchQuery(vector=q.tolist(), k=10, with_deleted=True)
            page = service.search(query, fx.admin)
            score = page.plan.nearest_list_score
            assert score is not None and (score < cfg.far_score) == is_far, (i, is_far, score)
            if is_far:
                assert page.plan.strategy == "quantized" and "far from every list centroid" in page.plan.reason
                assert page.plan.probes is None or page.plan.probes >= cfg.far_probe_share_broad * page.plan.lists
            else:
                assert page.plan.strategy == "approximate"
            expected = brute_force(fx.lib, reference_mask(fx.lib, query), q, 10)
            assert len({h.id for h in page.items} & set(expected)) >= 9, (i, is_far, page.plan)


def test_text_queries_count_as_far_whatever_their_score(lists_fixture: SearchFixture) -> None:
    """CLIP text sits apart from photos (the modality gap), so a text query takes the far path even when its
    vector happens to lie near a list centroid. The text tower here returns a stored photo's embedding: the
    rule under test is the planner's, not the model's."""
    fx = lists_fixture
    photo = fx.lib.embeddings[7]
    service = SearchService(fx.db, model_loader=lambda: _TextTower(photo))
    by_vector = service.search(SearchQuery(vector=photo.tolist(), k=10, with_deleted=True), fx.admin)
    by_text = service.search(SearchQuery(text="a photo", k=10, with_deleted=True), fx.admin)
    assert by_vector.plan.strategy == "approximate"
    assert by_text.plan.nearest_list_score == by_vector.plan.nearest_list_score >= PlannerConfig().far_score
    assert by_text.plan.strategy == "quantized" and "a text query: probe more lists" in by_text.plan.reason
    assert [h.id for h in by_text.items][:5] == [h.id for h in by_vector.items][:5]


def test_without_lists_every_match_is_ranked_and_hnsw_only_beyond_the_limit(db: Database) -> None:
    """A small library has no lists yet: nothing tells how far a page's rows may lie, so vector and text queries
    rank every match. Only a library over unlisted_rank_max_rows walks HNSW with a vector query."""
    lib, _ = _library(db)
    photo = lib.embeddings[11]
    service = SearchService(db, model_loader=lambda: _TextTower(photo), config=PlannerConfig(exact_max_rows=0))
    admin = {"id": None, "is_admin": True}
    by_vector = service.search(SearchQuery(vector=photo.tolist(), k=10, with_deleted=True), admin)
    by_text = service.search(SearchQuery(text="a photo", k=10, with_deleted=True), admin)
    assert by_vector.plan.lists is None and by_vector.plan.strategy == "quantized"
    assert by_text.plan.strategy == "quantized" and "(a text query)" in by_text.plan.reason
    cfg = PlannerConfig(exact_max_rows=0, quantized_max_rows=0, unlisted_rank_max_rows=0)
    walked = SearchService(db, config=cfg).search(SearchQuery(vector=photo.tolist(), k=10, with_deleted=True), admin)
    assert walked.plan.strategy == "approximate"
    expected = brute_force(lib, reference_mask(lib, SearchQuery(vector=photo.tolist(), with_deleted=True)), photo, 10)
    for page in (by_vector, by_text, walked):
        assert len({h.id for h in page.items} & set(expected)) >= 9
