"""Serving re-checks the file it opens: an original checked inside its library and swapped for a link out before
its bytes are sent is not sent (the original response and the zip download both open it confined)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from photosearch.api.files import ConfinedFileResponse
from photosearch.api.routes.bulk import zip_stream
from photosearch.confine import OutsideRoots, real_roots


@pytest.fixture
def swapped(tmp_path: Path) -> tuple[Path, Path, tuple[str, ...]]:
    root, outside = tmp_path / "library", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "kept.jpg").write_bytes(b"inside-photo")
    (root / "photo.jpg").write_bytes(b"inside-photo")
    (outside / "secret.jpg").write_bytes(b"SECRET-BYTES")
    return root, outside / "secret.jpg", real_roots([root])


def test_an_original_swapped_after_the_check_is_not_sent(swapped) -> None:
    root, secret, roots = swapped
    response = ConfinedFileResponse(root / "photo.jpg", roots, media_type="image/jpeg")  # checked: inside
    os.unlink(root / "photo.jpg")
    os.symlink(secret, root / "photo.jpg")  # swapped before the bytes go out
    app = Starlette(routes=[Route("/f", lambda request: response)])
    with TestClient(app, raise_server_exceptions=True) as client, pytest.raises(OSError):
        client.get("/f")
    inside = ConfinedFileResponse(root / "kept.jpg", roots, media_type="image/jpeg")
    app = Starlette(routes=[Route("/f", lambda request: inside)])
    with TestClient(app) as client:
        assert client.get("/f").content == b"inside-photo"


def test_a_zip_download_leaves_out_a_file_swapped_for_a_link_out(swapped) -> None:
    root, secret, roots = swapped
    files = [(root / "photo.jpg", "photo.jpg", roots), (root / "kept.jpg", "kept.jpg", roots)]
    os.unlink(root / "photo.jpg")
    os.symlink(secret, root / "photo.jpg")
    data = b"".join(zip_stream(files))
    assert b"SECRET" not in data
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["kept.jpg"] and zf.read("kept.jpg") == b"inside-photo"
    assert issubclass(OutsideRoots, PermissionError)
