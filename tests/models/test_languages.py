"""Which languages a model's text tower reads (`models list`), and the multilingual (M-CLIP-style) tower end to
end: a German or Japanese query through the search service ranks like a numpy brute force over its embedding."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from photosearch.config import Settings
from photosearch.db.accounts import create_user
from photosearch.db.embedding import ensure_embedding_model
from photosearch.db.search_synthetic import bulk_insert_synthetic
from photosearch.models import load_clip
from photosearch.models.registry import list_models
from photosearch.search import SearchQuery, SearchService
from photosearch.search.synthetic import make_library


def _mclip(tiny_model_dir: Path, models: Path) -> Path:
    d = models / "tiny-mclip"
    shutil.copytree(tiny_model_dir, d)
    shutil.rmtree(d / "textual")
    shutil.copytree(tiny_model_dir.parent / "tiny-mclip-textual", d / "textual")
    return d


def test_models_list_says_which_languages(tiny_model_dir: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_model_dir, models / "tiny-clip")
    _mclip(tiny_model_dir, models)
    rows = list_models(Settings(data_dir=tmp_path / "d", models_dir=models, model_name="tiny-clip"))
    assert {r["name"]: r["languages"] for r in rows} == {"tiny-clip": "English", "tiny-mclip": "multilingual"}


def test_a_multilingual_query_end_to_end(db, tiny_model_dir: Path, tmp_path: Path) -> None:
    _mclip(tiny_model_dir, tmp_path / "models")
    model = load_clip(Settings(data_dir=tmp_path / "d", models_dir=tmp_path / "models", model_name="tiny-mclip"))
    ensure_embedding_model(db, "tiny-mclip", 32)
    lib = make_library(400, 32, seed=9)
    with db.connection() as conn:
        bulk_insert_synthetic(conn, lib)
        conn.commit()
    admin = create_user(db, "root", "root@example.org", is_admin=True)
    service = SearchService(db, lambda: model)
    live = [i for i in range(len(lib)) if not lib.deleted[i]]
    for text in ("ein Hund am Strand", "海辺の犬", "a dog on the beach"):
        vec = model.encode_text(text)
        d = {lib.ids[i]: 1 - float(lib.embeddings[i] @ vec) for i in live}
        page = service.search(SearchQuery(text=text, k=8, strategy="exact", visibility=None), admin)
        assert [h.id for h in page.items] == sorted(d, key=d.get)[:8], text
    assert json.dumps(model.encode_text("海辺の犬").tolist()) != json.dumps(model.encode_text("a dog").tolist())
