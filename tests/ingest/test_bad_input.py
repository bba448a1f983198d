"""A corpus of bad and unusual files, generated here: each failure is recorded with a reason, the run
finishes, and everything else is indexed."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import threading
import zlib
from pathlib import Path

from PIL import Image

from photosearch.db.assets import get_asset_by_path, list_assets, list_ingest_errors
from photosearch.ingest import IngestProgress, index_library
from photosearch.ingest.decode import CHANGED, FileError, FileResult, FileTask, process_file, register_decoders
from photosearch.ingest.scan import db_path


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR claiming huge dimensions, with a tiny IDAT: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def build_corpus(photos_dir: Path, root: Path) -> dict[str, str | None]:
    """Files under `root` → expected error reason (None: must index fine)."""
    root.mkdir(parents=True)
    jpeg = (photos_dir / "albums/nature/prairie_falcon.jpg").read_bytes()
    (root / "empty.jpg").write_bytes(b"")
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (root / "text.jpg").write_text("this is not a photo\n" * 10)
    (root / "bomb.png").write_bytes(_png_header_only(20_000, 20_000))  # 400 MP
    Image.new("L", (12_000, 8_400), 128).save(root / "100mp.jpg", quality=50)  # 100.8 MP: must index
    shutil.copyfile(photos_dir / "albums/nature/silver_fir.jpg", root / "日本の店 🍣.jpg")
    with open(os.fsencode(root) + b"/caf\xe9-latin1.jpg", "wb") as f:  # not valid UTF-8
        f.write((photos_dir / "albums/nature/wood_anemones.jpg").read_bytes())
    frames = [Image.new("RGB", (64, 48), c) for c in ("red", "blue")]
    frames[0].save(root / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    Image.new("RGB", (40, 30), "green").save(root / "plain.bmp")
    Image.new("RGB", (40, 30), "yellow").save(root / "plain.tiff")
    shutil.copyfile(photos_dir / "albums/nature/polemonium_reptans.jpg", root / "vanishes.jpg")
    return {
        "empty.jpg": "empty file",
        "truncated.jpg": "truncated image",
        "text.jpg": "not an image",
        "bomb.png": "decompression bomb",
        "vanishes.jpg": "vanished",
        "100mp.jpg": None,
        "日本の店 🍣.jpg": None,
        os.fsdecode(b"caf\xe9-latin1.jpg"): None,
        "anim.gif": None,
        "plain.bmp": None,
        "plain.tiff": None,
    }


def test_bad_input_corpus(db, settings, tiny_model, make_library, photos_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "bad"
    expected = build_corpus(photos_dir, root)
    lib = make_library(root)

    def vanish(p: IngestProgress) -> None:  # after the scan listed it, before a worker reads it
        if p.phase == "index" and (root / "vanishes.jpg").exists():
            (root / "vanishes.jpg").unlink()

    s = index_library(db, settings, lib, model=tiny_model, progress=vanish)
    errors = {os.path.basename(e["path"]): e for e in list_ingest_errors(db, library_id=lib["id"])}
    want_errors = {db_path(k): v for k, v in expected.items() if v}
    assert {k: e["reason"] for k, e in errors.items()} == want_errors
    assert all(e["detail"] for e in errors.values())
    assert "not a supported image format" in errors["text.jpg"]["detail"]
    assert "MP limit" in errors["bomb.png"]["detail"]
    good = {db_path(k) for k, v in expected.items() if v is None}
    assets = {a["original_file_name"]: a for a in list_assets(db, lib["id"])}
    assert set(assets) == good
    assert (s.new, s.errors) == (len(good), len(want_errors))
    assert (assets["100mp.jpg"]["width"], assets["100mp.jpg"]["height"]) == (12_000, 8_400)
    assert (assets["anim.gif"]["width"], assets["anim.gif"]["height"]) == (64, 48)
    # the non-UTF-8 name round-trips: the stored path opens the original file
    latin = get_asset_by_path(db, lib["id"], db_path(os.fsdecode(os.fsencode(root) + b"/caf\xe9-latin1.jpg")))
    assert latin is not None and latin["indexed_at"] is not None

    # second run: unchanged bad files are not retried; the vanished one is simply gone
    s = index_library(db, settings, lib, model=tiny_model)
    assert (s.new, s.errors, s.known_errors, s.embedded) == (0, 0, 4, 0)
    assert "vanishes.jpg" not in {os.path.basename(e["path"]) for e in list_ingest_errors(db, library_id=lib["id"])}
    # a fixed file is indexed and its error cleared
    shutil.copyfile(photos_dir / "albums/nature/notocactus_minimus.jpg", root / "truncated.jpg")
    s = index_library(db, settings, lib, model=tiny_model)
    assert (s.new, s.errors) == (1, 0)
    assert "truncated.jpg" not in {os.path.basename(e["path"]) for e in list_ingest_errors(db, library_id=lib["id"])}


def test_file_rewritten_while_being_read(tiny_model, photos_dir: Path, tmp_path: Path) -> None:
    """A writer keeps rewriting the file in place while it is read. Reads during the rewrites either give
    a result or say "changed while reading" (retried next run); once the writer stops, the result is the
    final content. (A read can't be guaranteed consistent without locks: what is guaranteed is that the
    mtime recorded is the one from before the read, so a later write makes the next run redo the file.)"""
    register_decoders()
    versions = [(photos_dir / f"albums/nature/{n}").read_bytes() for n in ("silver_fir.jpg", "tanners_ridge.jpg")]
    path = tmp_path / "busy.jpg"
    path.write_bytes(versions[0])
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            with open(path, "r+b", buffering=0) as f:  # rewrite in place, in pieces, like a slow copy
                data = versions[i % 2]
                for off in range(0, len(data), 4096):
                    f.write(data[off : off + 4096])
                f.truncate()
            i += 1
        path.write_bytes(versions[1])

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    reasons = set()
    try:
        for _ in range(20):
            r = process_file(FileTask(str(path), 0, 0), tiny_model.preprocessor, tmp_path / "thumbs")
            reasons.add(r.reason if isinstance(r, FileError) else "ok")
    finally:
        stop.set()
        t.join()
    assert reasons <= {"ok", CHANGED, "corrupt image", "truncated image", "empty file", "not an image"}
    r = process_file(FileTask(str(path), 0, 0), tiny_model.preprocessor, tmp_path / "thumbs")
    assert isinstance(r, FileResult) and r.checksum == hashlib.sha1(versions[1]).digest()
    assert r.mtime_ns == path.stat().st_mtime_ns
