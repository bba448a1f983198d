"""Originals and thumbnails: right bytes and content type, caching headers, and no way out of the roots
(`..`, absolute paths, symlinks out of the root, encoded variants in URLs)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

from api.live import LiveServer

SECRET = b"TOP-SECRET-NOT-A-PHOTO"


def raw_get(live: LiveServer, target: str, api_key: str) -> tuple[int, bytes]:
    """Send the request line exactly as written: HTTP clients would normalise `..` and `%2e%2e` away."""
    u = urlparse(live.url)
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {u.netloc}\r\nx-api-key: {api_key}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@contextmanager
def tampered(live: LiveServer, asset_id, **columns: str | None) -> Iterator[None]:
    """Temporarily point an asset row somewhere else (as a corrupted or malicious index would)."""
    names = list(columns)
    with live.db.cursor() as cur:
        cur.execute(f"SELECT {', '.join(names)} FROM assets WHERE id = %s", (asset_id,))  # noqa: S608 - test-only, fixed names
        old = cur.fetchone()
        for name, value in columns.items():
            cur.execute(f"UPDATE assets SET {name} = %s WHERE id = %s", (value, asset_id))  # noqa: S608
    try:
        yield
    finally:
        with live.db.cursor() as cur:
            for name in names:
                cur.execute(f"UPDATE assets SET {name} = %s WHERE id = %s", (old[name], asset_id))  # noqa: S608


@pytest.fixture
def secret_file(live: LiveServer) -> Path:
    """A file beside (outside) alice's library root."""
    p = live.tmp / "secret.jpg"
    p.write_bytes(b"\xff\xd8\xff" + SECRET)
    return p


def _by_name(live: LiveServer, name: str) -> dict:
    return next(a for a in live.alice.assets if a["original_file_name"] == name)


@pytest.mark.parametrize(
    ("name", "ctype"),
    [("prairie_falcon.jpg", "image/jpeg"), ("density_plot.png", "image/png")],
)
def test_original_is_streamed_with_type_and_validators(live: LiveServer, name: str, ctype: str) -> None:
    asset = _by_name(live, name)
    with live.client(live.alice) as c:
        r = c.get(f"/api/assets/{asset['id']}/original")
        assert r.status_code == 200
        assert r.headers["content-type"] == ctype
        assert r.content == (live.alice.root / name).read_bytes()
        assert r.headers["etag"] and "max-age" in r.headers["cache-control"]
        assert name in r.headers["content-disposition"]
        again = c.get(f"/api/assets/{asset['id']}/original", headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b""


def test_webp_original_type(live: LiveServer) -> None:
    asset = live.bob.assets[[a["original_file_name"] for a in live.bob.assets].index("denali.webp")]
    with live.client(live.bob) as c:
        assert c.get(f"/api/assets/{asset['id']}/original").headers["content-type"] == "image/webp"


def test_thumbnails_have_caching_headers(live: LiveServer) -> None:
    asset = _by_name(live, "prairie_falcon.jpg")
    with live.client(live.alice) as c:
        for size, kind in (("thumb", "image/webp"), ("preview", "image/jpeg")):
            r = c.get(f"/api/assets/{asset['id']}/thumbnail", params={"size": size})
            assert r.status_code == 200 and r.headers["content-type"] == kind
            assert r.headers["etag"] and "max-age" in r.headers["cache-control"]
            assert c.get(r.url, headers={"if-none-match": r.headers["etag"]}).status_code == 304
        r = c.get(f"/api/assets/{asset['id']}/thumbnail", params={"size": "../../etc/passwd"})
        assert r.status_code == 422 and "size" in r.json()["message"]


def test_missing_thumbnail_is_rendered_from_the_original(live: LiveServer) -> None:
    asset = _by_name(live, "wood_anemones.jpg")
    with tampered(live, asset["id"], thumbnail_path=None, checksum="\\x00"), live.client(live.alice) as c:
        r = c.get(f"/api/assets/{asset['id']}/thumbnail")
        assert r.status_code == 200 and r.headers["content-type"] == "image/webp" and r.content[8:12] == b"WEBP"
    rendered = list((live.settings.thumbs_dir / "api").glob(f"{asset['id']}-thumb.*"))
    assert rendered and all(p.resolve().is_relative_to(live.settings.thumbs_dir.resolve()) for p in rendered)


def test_stored_paths_outside_the_roots_are_refused(live: LiveServer, secret_file: Path) -> None:
    asset = _by_name(live, "silver_fir.jpg")
    root = live.alice.root
    attempts = [
        str(root / ".." / secret_file.name),  # dot-dot
        str(secret_file),  # absolute, outside
        "/etc/passwd",
        f"{root}/../../../../../../etc/passwd",
        f"{root}/%2e%2e/{secret_file.name}",  # encoded: not decoded, so simply missing
        "relative/path.jpg",
        f"{root}/./silver_fir.jpg",  # control: a path that stays inside the root is served
    ]
    with live.client(live.alice) as c:
        for path in attempts[:-1]:
            with tampered(live, asset["id"], original_path=path, thumbnail_path=None, preview_path=None):
                r = c.get(f"/api/assets/{asset['id']}/original")
                assert r.status_code == 404, (path, r.status_code)
                assert SECRET not in r.content and b"root:" not in r.content
        with tampered(live, asset["id"], original_path=attempts[-1]):
            assert c.get(f"/api/assets/{asset['id']}/original").status_code == 200


def test_thumbnail_paths_outside_thumbs_dir_are_refused(live: LiveServer, secret_file: Path) -> None:
    asset = _by_name(live, "tanners_ridge.jpg")
    with live.client(live.alice) as c:
        for bad in (str(secret_file), "../../secret.jpg", "/etc/passwd"):
            with tampered(live, asset["id"], thumbnail_path=bad, preview_path=bad):
                for size in ("thumb", "preview"):
                    r = c.get(f"/api/assets/{asset['id']}/thumbnail", params={"size": size})
                    assert SECRET not in r.content and b"root:" not in r.content
                    assert r.status_code == 200 and r.headers["content-type"].startswith("image/")


def test_symlink_out_of_the_root_is_refused(live: LiveServer, secret_file: Path) -> None:
    """Someone with write access to a library folder swaps a photo for a symlink to another file."""
    asset = _by_name(live, "notocactus_minimus.jpg")
    photo = live.alice.root / "notocactus_minimus.jpg"
    kept = photo.with_suffix(".kept")
    os.replace(photo, kept)
    try:
        photo.symlink_to(secret_file)
        with live.client(live.alice) as c:
            r = c.get(f"/api/assets/{asset['id']}/original")
            assert r.status_code == 404 and SECRET not in r.content
        photo.unlink()
        photo.symlink_to(kept)  # a symlink that stays inside the root is fine
        with live.client(live.alice) as c:
            r = c.get(f"/api/assets/{asset['id']}/original")
            assert r.status_code == 200 and r.content == kept.read_bytes()
    finally:
        photo.unlink(missing_ok=True)
        os.replace(kept, photo)


def test_symlinked_library_root_outside_is_refused(live: LiveServer, secret_file: Path) -> None:
    """A directory symlink inside the root that leads out of it."""
    asset = _by_name(live, "cyclamen_persicum.jpg")
    link = live.alice.root / "escape"
    link.symlink_to(secret_file.parent, target_is_directory=True)
    try:
        with tampered(live, asset["id"], original_path=str(link / secret_file.name)), live.client(live.alice) as c:
            r = c.get(f"/api/assets/{asset['id']}/original")
            assert r.status_code == 404 and SECRET not in r.content
    finally:
        link.unlink()


@pytest.mark.parametrize(
    "target",
    [
        "/static/../../../../etc/passwd",
        "/static/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/static/%2e%2e/%2e%2e/api/app.py",
        "/static/%2e%2e%2f%2e%2e%2fapi%2fapp.py",
        "/static/..%5c..%5capi%5capp.py",
        "/static//etc/passwd",
        "/api/assets/..%2f..%2f..%2fetc%2fpasswd/original",
        "/api/assets/%2e%2e/original",
        "/api/assets/../../../../etc/passwd",
        "/api/assets/%252e%252e%252fetc%252fpasswd/original",
        "/photos/..%2f..%2fetc%2fpasswd",
    ],
)
def test_url_traversal_attempts(live: LiveServer, target: str) -> None:
    status, body = raw_get(live, target, live.alice.api_key)
    assert status in (400, 404, 422), (target, status)
    assert b"root:" not in body and b"create_app" not in body


def test_static_files_are_served(live: LiveServer) -> None:
    with live.client() as c:
        r = c.get("/static/app.js")
        assert r.status_code == 200 and "javascript" in r.headers["content-type"]
