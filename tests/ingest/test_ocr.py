"""Text in photos: indexing `albums/text` with OCR reads the real signs and notes (rapidocr's models from its
wheel, with the network refused), `search --text` finds them by word and by CJK substring, a text filter narrows
a CLIP search, and the pass resumes where it stopped and lists failures in `photosearch errors`."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from photosearch.db.accounts import default_user
from photosearch.ingest import index_library
from photosearch.search import SearchQuery, SearchService
from tests.search.conftest import cli_json, run_cli

pytest.importorskip("rapidocr")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach a host (a model download) fails loudly; the database is a Unix socket of libpq."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def text_library(db, settings, tiny_model, make_library, photos_dir: Path, no_network) -> dict:
    lib = make_library(photos_dir / "albums" / "text")
    summary = index_library(db, settings, lib, model=tiny_model, ocr=True)
    assert summary.errors == 0 and summary.new == 2
    assert summary.ocr is not None and (summary.ocr["read"], summary.ocr["with_text"]) == (2, 2)
    return lib


def _texts(db) -> dict[str, str]:
    with db.cursor() as cur:
        cur.execute("SELECT a.original_file_name AS name, t.text FROM asset_text t JOIN assets a ON a.id = t.asset_id")
        return {r["name"]: r["text"] for r in cur.fetchall()}


def test_ocr_reads_the_signs_and_search_finds_them(db, text_library, cli_env) -> None:
    texts = _texts(db)
    assert "KIRIN" in texts["japanese-shop.jpg"]
    assert "IMPORTANT" in texts["handwritten-notes.jpg"]
    for needle, first in (("KIRIN", "japanese-shop.jpg"), ("important", "handwritten-notes.jpg")):
        out = cli_json(cli_env, "search", "--text", needle)
        assert out["items"][0]["original_file_name"] == first, out
        assert out["plan"]["strategy"] == "text"
    out = cli_json(cli_env, "search", "--text", "一番")  # no word breaks: found as a substring
    assert [i["original_file_name"] for i in out["items"]] == ["japanese-shop.jpg"]
    out = cli_json(cli_env, "search", "--text", "nothing like this anywhere")
    assert out["items"] == []
    proc = run_cli(cli_env, "search", "--text", " ")
    assert proc.returncode == 2 and "--text needs" in proc.stderr and "Traceback" not in proc.stderr

    # with a CLIP query, the text is a filter
    user = default_user(db)
    service = SearchService(db, config=None)
    vec = [1.0] + [0.0] * 31
    every = service.search(SearchQuery(vector=vec, k=10), user)
    assert len(every.items) == 2
    page = service.search(SearchQuery(vector=vec, k=10, ocr_text="kirin"), user)
    assert [h.original_file_name for h in page.items] == ["japanese-shop.jpg"]
    for strategy in ("exact", "quantized", "approximate"):  # the filter holds on every path
        forced = service.search(SearchQuery(vector=vec, k=10, ocr_text="important", strategy=strategy), user)
        assert [h.original_file_name for h in forced.items] == ["handwritten-notes.jpg"], strategy


def test_ocr_pass_resumes_and_reports_failures(db, settings, tiny_model, text_library, cli_env, tmp_path) -> None:
    with db.connection() as conn:  # as if killed before these two photos were read
        conn.execute("DELETE FROM asset_text")
        # a preview that no longer decodes: this photo's text cannot be read
        row = conn.execute(
            "SELECT a.id, a.preview_path FROM assets a WHERE a.original_file_name = 'japanese-shop.jpg'"
        ).fetchone()
        bad = tmp_path / "broken.jpg"
        bad.write_bytes(b"\xff\xd8 not a jpeg")
        conn.execute("UPDATE assets SET preview_path = %s WHERE id = %s", (str(bad), row[0]))
    again = index_library(db, settings, text_library, model=tiny_model, ocr=True)
    assert again.new == 0 and again.ocr is not None
    assert (again.ocr["read"], again.ocr["with_text"], again.ocr["errors"]) == (2, 1, 1)
    errors = json.loads(run_cli(cli_env, "--json", "errors").stdout)
    assert [(e["path"].rsplit("/", 1)[-1], e["reason"]) for e in errors] == [("japanese-shop.jpg", "ocr_failed")]
    assert index_library(db, settings, text_library, model=tiny_model, ocr=True).ocr["read"] == 0  # not retried
