"""Scanning: exclusions, hidden files, symlink loops, sniffing by content, lossless odd file names."""

from __future__ import annotations

import os
from pathlib import Path

from photosearch.ingest.scan import db_path, fs_path, scan_roots, sniff_format

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 40


def _write(p: Path, data: bytes = JPEG) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def _names(root: Path, **kw) -> list[str]:
    return sorted(os.path.relpath(f.path, root) for f in scan_roots([str(root)], **kw))


def test_recursive_scan_with_exclusions_and_hidden(tmp_path: Path) -> None:
    _write(tmp_path / "a.jpg")
    _write(tmp_path / "sub" / "b.JPG")
    _write(tmp_path / "@eaDir" / "thumb.jpg")
    _write(tmp_path / "sub" / "._mac.jpg")
    _write(tmp_path / ".hidden" / "c.jpg")
    _write(tmp_path / "sub" / "raw" / "d.jpg")
    _write(tmp_path / "notes.txt", b"hello")
    excl = ["**/@eaDir/**", "._*", "**/raw/**"]
    assert _names(tmp_path, exclusion_patterns=excl) == ["a.jpg", "sub/b.JPG"]
    assert _names(tmp_path, exclusion_patterns=excl, include_hidden=True) == [".hidden/c.jpg", "a.jpg", "sub/b.JPG"]
    assert "sub/raw/d.jpg" in _names(tmp_path)


def test_content_sniffing_for_unknown_extensions(tmp_path: Path, photos_dir: Path) -> None:
    png = (photos_dir / "formats/png/density_plot.png").read_bytes()
    _write(tmp_path / "no_extension", png)
    _write(tmp_path / "photo.unknownext", JPEG)
    _write(tmp_path / "readme.unknownext", b"just some text, not a photo")
    _write(tmp_path / "movie.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 20)
    assert _names(tmp_path) == ["no_extension", "photo.unknownext"]


def test_sniff_formats_of_the_shared_photos(photos_dir: Path) -> None:
    expected = {
        ".jpg": "JPEG",
        ".jpeg": "JPEG",
        ".png": "PNG",
        ".webp": "WEBP",
        ".heic": "HEIF",
        ".avif": "AVIF",
        ".jxl": "JXL",
    }
    for p in photos_dir.rglob("*"):
        if p.suffix in expected:
            assert sniff_format(p.read_bytes()[:32]) == expected[p.suffix], p
    assert sniff_format(b"GIF89a" + b"\x00" * 10) == "GIF"
    assert sniff_format(b"BM" + b"\x00" * 20) == "BMP"
    assert sniff_format(b"II*\x00" + b"\x00" * 10) == "TIFF"
    assert sniff_format(b"hello world, I am text") is None


def test_symlink_loops_terminate_and_files_are_seen_once(tmp_path: Path) -> None:
    _write(tmp_path / "lib" / "a" / "x.jpg")
    os.symlink(tmp_path / "lib", tmp_path / "lib" / "a" / "loop")  # a → lib → a → ...
    os.symlink(tmp_path / "lib" / "a", tmp_path / "lib" / "again")  # a second way into a
    os.symlink(tmp_path / "lib" / "a" / "x.jpg", tmp_path / "lib" / "link.jpg")  # same file twice
    os.symlink(tmp_path / "missing.jpg", tmp_path / "lib" / "dangling.jpg")
    found = _names(tmp_path / "lib")
    assert found == ["a/x.jpg"]


def test_non_utf8_and_unicode_names_round_trip(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9-\xff.jpg"  # latin-1 bytes: not valid UTF-8
    with open(raw, "wb") as f:
        f.write(JPEG)
    _write(tmp_path / "日本の店 🍣.jpg")
    files = {f.path: f for f in scan_roots([str(tmp_path)])}
    assert len(files) == 2
    for path in files:
        stored = db_path(path)
        stored.encode("utf-8")  # storable as PostgreSQL text
        assert fs_path(stored) == path
        assert os.fsencode(fs_path(stored)) in (raw, os.fsencode(tmp_path / "日本の店 🍣.jpg"))
    assert db_path("plain/ascii.jpg") == "plain/ascii.jpg"


def test_unreadable_folder_is_reported(tmp_path: Path) -> None:
    _write(tmp_path / "ok.jpg")
    errors: list[tuple[str, str]] = []
    found = list(
        scan_roots([str(tmp_path), str(tmp_path / "missing")], on_error=lambda p, why: errors.append((p, why)))
    )
    assert [os.path.basename(f.path) for f in found] == ["ok.jpg"]
    assert errors and errors[0][0] == str(tmp_path / "missing") and "cannot read folder" in errors[0][1]
