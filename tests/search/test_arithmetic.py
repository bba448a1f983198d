"""Query arithmetic (rclip's): the parser, and searches whose results match a numpy brute force over the vector
the terms make — each term embedded by the real tiny CLIP model, weighted, summed and normalised."""

from __future__ import annotations

import json

import numpy as np
import pytest

from photosearch.config import Settings
from photosearch.db import Database
from photosearch.db.accounts import create_user
from photosearch.models import load_clip
from photosearch.search import SearchQuery, SearchService
from photosearch.search.arithmetic import Term, parse
from photosearch.search.query import SearchError
from tests.search.conftest import run_cli
from tests.search.test_cli_duplicates import _library


def test_parse() -> None:
    assert parse("a red t-shirt") == [Term(1.0, "a red t-shirt")]
    assert parse("a+b and c-d") == [Term(1.0, "a+b and c-d")]
    assert parse('"beach" + "sunset" - "people"') == [Term(1, "beach"), Term(1, "sunset"), Term(-1, "people")]
    assert parse("2:sunset + beach - 0.5:people") == [Term(2, "sunset"), Term(1, "beach"), Term(-0.5, "people")]
    assert parse('"3:10 to Yuma"') == [Term(1.0, "3:10 to Yuma")]
    assert parse('"rock - paper" + scissors') == [Term(1, "rock - paper"), Term(1, "scissors")]
    for bad in ('"a" + ', " - b"):
        with pytest.raises(ValueError, match="both sides"):
            parse(bad)
    with pytest.raises(ValueError, match="at most"):
        parse(" + ".join(["x"] * 17))
    with pytest.raises(ValueError, match="both sides"):  # pydantic's ValidationError: a 422 in the API
        SearchQuery(text='"a" + ')
    with pytest.raises(ValueError, match="need a query"):
        SearchQuery(add_text=["night"], ocr_text="x")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _brute(lib, vec: np.ndarray, k: int) -> list:
    live = [i for i in range(len(lib)) if not lib.deleted[i] and not lib.is_archived[i]]
    d = {lib.ids[i]: 1 - float(lib.embeddings[i] @ vec) for i in live}
    return sorted(d, key=d.get)[:k]


def test_arithmetic_searches_match_numpy(db: Database, settings: Settings, photos_dir, cli_env: dict) -> None:
    lib, _ = _library(db, settings)
    model = load_clip(settings)
    admin = create_user(db, "root", "root@example.org", is_admin=True)
    service = SearchService(db, lambda: model)
    enc = model.encode_text

    def run(**kw) -> list:
        return [h.id for h in service.search(SearchQuery(k=10, strategy="exact", **kw), admin).items]

    want = _unit(_unit(enc("beach")) + _unit(enc("sunset")) - _unit(enc("people")))
    assert run(text='"beach" + "sunset" - "people"') == _brute(lib, want, 10)
    want = _unit(2 * _unit(enc("sunset")) + _unit(enc("a dog")))
    assert run(text="2:sunset + a dog") == _brute(lib, want, 10)
    photo = next(photos_dir.rglob("*.jpg"))
    image = _unit(model.encode_images([model.preprocessor.load_image(photo)])[0])
    want = _unit(image + _unit(enc("at night")) - 0.5 * _unit(enc("people")))
    assert run(image_path=photo, add_text=["at night"], subtract_text=["0.5:people"]) == _brute(lib, want, 10)
    assert run(text="beach") != run(text='"beach" + "sunset"')
    with pytest.raises(SearchError, match="cancel"):
        run(text="beach - beach")

    res = run_cli(cli_env, "--json", "search", "--image", str(photo), "--add", "at night", "-k", "10")
    assert res.returncode == 0, res.stderr
    # the CLI's default filters are the same (timeline, not trashed); ranked by the same vector
    ids = [i["id"] for i in json.loads(res.stdout)["items"]]
    assert ids == [str(i) for i in _brute(lib, _unit(image + _unit(enc("at night"))), 10)]
    res = run_cli(cli_env, "search", '"beach" + ')
    assert res.returncode == 2 and "both sides" in res.stderr
