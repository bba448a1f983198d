"""Text and image queries through the real tiny CLIP model, the CLI, and near-duplicate grouping."""

from __future__ import annotations

import json

import numpy as np
import pytest

from photosearch.config import Settings
from photosearch.db import Database
from photosearch.db.accounts import create_user
from photosearch.db.embedding import ensure_embedding_model
from photosearch.db.search_synthetic import bulk_insert_synthetic
from photosearch.models import load_clip
from photosearch.search import SearchQuery, SearchService
from photosearch.search import duplicates as dup
from photosearch.search.synthetic import make_library, normalise
from tests.search.conftest import run_cli

TINY_DIM = 32


def _library(db: Database, settings: Settings, n: int = 300):
    """A small synthetic library in the tiny model's dimension; rows 0-2 (Allen's) are near-identical and
    row 3 (Beth's) is a copy of row 0."""
    ensure_embedding_model(db, settings.model_name, TINY_DIM)
    lib = make_library(n, TINY_DIM, seed=3)
    rng = np.random.default_rng(0)
    lib.owner[:3] = 0
    lib.owner[3] = 1
    lib.deleted[:4] = False
    for i in (1, 2):
        lib.embeddings[i] = normalise(lib.embeddings[0] + 1e-3 * rng.standard_normal(TINY_DIM).astype(np.float32))
    lib.embeddings[3] = lib.embeddings[0]
    with db.connection() as conn:
        owners = bulk_insert_synthetic(conn, lib)
        conn.commit()
    return lib, owners


def test_text_and_image_queries_use_the_clip_towers(db: Database, settings: Settings, photos_dir) -> None:
    lib, owners = _library(db, settings)
    model = load_clip(settings)
    admin = create_user(db, "root", "root@example.org", is_admin=True)
    service = SearchService(db, lambda: model)
    page = service.search(SearchQuery(text="a red mushroom in moss", k=7, strategy="exact"), admin)
    assert len(page.items) == 7
    want = normalise(model.encode_text("a red mushroom in moss"))
    dists = {lib.ids[i]: 1 - float(lib.embeddings[i] @ want) for i in range(len(lib)) if not lib.deleted[i]}
    expected = sorted(dists, key=dists.get)[:7]
    assert [h.id for h in page.items] == expected
    negative = service.search(SearchQuery(text="a red mushroom in moss", negative_text="people", k=7), admin)
    assert len(negative.items) == 7
    photo = next(photos_dir.rglob("*.jpg"))
    by_path = service.search(SearchQuery(image_path=photo, k=5), admin)
    by_bytes = service.search(SearchQuery(image_bytes=photo.read_bytes(), k=5), admin)
    assert [h.id for h in by_path.items] == [h.id for h in by_bytes.items] and len(by_path.items) == 5
    with pytest.raises(ValueError, match="cannot read the query image"):
        service.search(SearchQuery(image_bytes=b"not an image", k=5), admin)


def test_cli_search_json_explain_and_like(db: Database, settings: Settings, cli_env: dict) -> None:
    lib, owners = _library(db, settings)
    res = run_cli(cli_env, "--json", "search", "a photo of a dog", "--owner", "allen@example.org", "-k", "5")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert len(data["items"]) == 5 and data["plan"]["strategy"] in ("exact", "approximate")
    assert {i["owner_id"] for i in data["items"]} == {str(owners["Allen"])}
    res = run_cli(cli_env, "search", "--like", str(lib.ids[0]), "--owner", "Allen", "-k", "3", "--explain")
    assert res.returncode == 0, res.stderr
    assert "strategy" in res.stdout and "reason" in res.stdout and lib.file_names[1] in res.stdout
    res = run_cli(cli_env, "search", "--like", "not-a-uuid")
    assert res.returncode == 2 and "--like needs an asset id" in res.stderr  # usage errors exit 2
    res = run_cli(cli_env, "search", "x", "--bbox", "1,2,3")
    assert res.returncode == 2 and "--bbox needs 4" in res.stderr
    res = run_cli(cli_env, "search", "x", "--city", "O'Fallon'; DROP TABLE assets;--", "--owner", "Allen")
    assert res.returncode == 0 and "no matching photos" in res.stdout


def test_duplicates_group_near_identical_photos_per_owner(db: Database, settings: Settings) -> None:
    lib, owners = _library(db, settings)
    admin = create_user(db, "root", "root@example.org", is_admin=True)
    groups = dup.find_duplicates(db, admin, all_owners=True)
    assert [sorted(g.asset_ids) for g in groups] == [sorted(lib.ids[:3])]  # Beth's copy is not grouped in
    assert groups[0].owner_id == owners["Allen"] and groups[0].max_distance <= 0.01
    assert len(list(groups[0])) == 3  # iterating a group yields its assets
    beth = {"id": owners["Beth"], "is_admin": False}
    assert dup.find_duplicates(db, beth) == []
    with pytest.raises(ValueError, match="admin"):
        dup.find_duplicates(db, beth, all_owners=True)


def test_duplicates_through_the_hnsw_index(db: Database, settings: Settings, monkeypatch) -> None:
    lib, owners = _library(db, settings)
    monkeypatch.setattr(dup, "EXACT_MAX_ASSETS", 0)  # take the large-library path on a small one
    groups = dup.find_duplicates(db, {"id": owners["Allen"], "is_admin": False})
    assert [sorted(g.asset_ids) for g in groups] == [sorted(lib.ids[:3])]


def test_cli_duplicates(db: Database, settings: Settings, cli_env: dict) -> None:
    lib, owners = _library(db, settings)
    res = run_cli(cli_env, "--json", "duplicates", "--owner", "Allen")
    assert res.returncode == 0, res.stderr
    groups = json.loads(res.stdout)["groups"]
    assert len(groups) == 1 and {a["id"] for a in groups[0]["assets"]} == {str(i) for i in lib.ids[:3]}
    res = run_cli(cli_env, "duplicates", "--owner", "Allen")
    assert res.returncode == 0 and "1 groups" in res.stdout


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_a_chain_of_neighbours_does_not_become_one_group() -> None:
    """20 photos on an arc, each 0.006 from the next: neighbours pair up, but no group holds two photos farther
    apart than the threshold (union-find made all 20 one group). Checked against numpy distances."""
    from uuid import uuid4

    step = np.arccos(1 - 0.006)
    emb = np.stack([_unit(np.array([np.cos(i * step), np.sin(i * step), 0, 0])) for i in range(20)])
    ids = [uuid4() for _ in range(20)]
    pairs = dup._exact_pairs(ids, emb, 0.01)
    groups = dup._groups(pairs)
    index = {a: i for i, a in enumerate(ids)}
    grouped = [index[a] for members, _ in groups for a in members]
    assert len(grouped) == len(set(grouped))  # a photo is in one group at most
    assert len(groups) >= 6
    for members, worst in groups:
        rows = emb[[index[a] for a in members]]
        d = 1 - rows @ rows.T
        assert d.max() <= 0.01 + 1e-6 and worst == pytest.approx(d.max(), abs=1e-5)


def test_the_keeper_is_the_largest_then_the_richest_then_the_oldest() -> None:
    from datetime import UTC, datetime

    def a(i: int, w: int, size: int, make: str | None, year: int) -> dict:
        return {"id": i, "width": w, "height": w, "file_size": size, "make": make,
                "local_date_time": datetime(year, 1, 1, tzinfo=UTC)}  # fmt: skip

    assert dup.suggest_keeper([a(1, 100, 9, "X", 2000), a(2, 200, 1, None, 2020)]) == 2  # pixels first
    assert dup.suggest_keeper([a(1, 100, 9, None, 2020), a(2, 100, 5, "X", 2000)]) == 1  # then the file size
    assert dup.suggest_keeper([a(1, 100, 5, None, 2000), a(2, 100, 5, "X", 2020)]) == 2  # then the metadata
    assert dup.suggest_keeper([a(1, 100, 5, "X", 2020), a(2, 100, 5, "X", 2000)]) == 2  # then the oldest


def test_cli_resolves_a_group(db: Database, settings: Settings, cli_env: dict) -> None:
    lib, owners = _library(db, settings)
    groups = json.loads(run_cli(cli_env, "--json", "duplicates", "--owner", "Allen").stdout)["groups"]
    keep = groups[0]["keep"]
    assert keep in {str(i) for i in lib.ids[:3]}
    res = run_cli(cli_env, "--json", "duplicates", "--owner", "Allen", "--keep", str(lib.ids[1]))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["trashed"] == 2
    with db.cursor() as cur:
        cur.execute("SELECT id FROM assets WHERE id = ANY(%s) AND deleted_at IS NULL", (list(lib.ids[:3]),))
        assert [r["id"] for r in cur.fetchall()] == [lib.ids[1]]
    res = run_cli(cli_env, "duplicates", "--owner", "Allen", "--keep", "nope")
    assert res.returncode == 2 and "--keep needs a photo id" in res.stderr
    res = run_cli(cli_env, "duplicates", "--owner", "Allen", "--keep", str(lib.ids[5]))
    assert res.returncode == 2 and "in no group" in res.stderr
