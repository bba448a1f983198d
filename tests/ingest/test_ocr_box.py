"""The one search box on real photos: with `albums/text` indexed with OCR beside `albums/nature`, typing "KIRIN"
(no --text) finds the shop sign first and the plan says it was found as text in the photo; CLI and API agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from photosearch.db.accounts import default_user
from photosearch.ingest import index_library
from photosearch.search import SearchQuery, SearchService
from tests.search.conftest import cli_json

pytest.importorskip("rapidocr")


def test_words_on_a_sign_are_found_from_the_box(db, settings, tiny_model, make_library, photos_dir: Path, cli_env):
    nature = make_library(photos_dir / "albums" / "nature", name="nature")
    assert index_library(db, settings, nature, model=tiny_model).errors == 0
    text = make_library(photos_dir / "albums" / "text", name="text")
    assert index_library(db, settings, text, model=tiny_model, ocr=True).errors == 0
    user = default_user(db)
    service = SearchService(db, lambda: tiny_model)
    for typed, first in (("KIRIN", "japanese-shop.jpg"), ("important notes", "handwritten-notes.jpg")):
        page = service.search(SearchQuery(text=typed, k=5, understand=True), user)
        assert page.items[0].original_file_name == first, typed
        assert len(page.items) == 5  # the rest by CLIP: a text match adds, it does not filter
        assert any(u.kind == "text" for u in page.understood)
    plain = service.search(SearchQuery(text="KIRIN", k=11), user)
    assert len(plain.items) == 11  # without understanding, CLIP alone (random with the test model)
    out = cli_json(cli_env, "search", "KIRIN", "-k", "3")
    assert out["items"][0]["original_file_name"] == "japanese-shop.jpg"
    assert '"KIRIN" as text in the photo (1 photo)' in out["plan"]["reason"]
    assert out["understood"][0] == {"text": "KIRIN", "kind": "text", "field": None, "value": None, "matches": 1}
    folder = cli_json(cli_env, "search", "nature", "-k", "20")  # a folder's name: its photos first
    nature_files = {p.name for p in (photos_dir / "albums" / "nature").iterdir()}
    assert {i["original_file_name"] for i in folder["items"][:9]} == nature_files
    literal = cli_json(cli_env, "search", "KIRIN", "--literal", "-k", "3")
    assert "understood" not in literal["plan"]["reason"]
