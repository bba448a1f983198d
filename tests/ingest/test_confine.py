"""A file swapped after the scan listed it is read only if it still lies inside the library: a file replaced by
a link out, a folder replaced by a link out and a FIFO are refused before a byte is read (no thumbnail, no
embedding, an `outside the library` error); links between folders of the library keep working."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from photosearch.confine import LinkRefused, OutsideRoots, open_inside, real_roots
from photosearch.db.assets import list_assets, list_ingest_errors
from photosearch.ingest import IngestProgress, index_library
from photosearch.ingest.decode import OUTSIDE, FileError, FileResult, FileTask, process_file
from photosearch.ingest.thumbnails import thumb_paths

from .conftest import copy_photos

NAMES = ["cyclamen_persicum.jpg", "el_torcal_rocks.jpg", "notocactus_minimus.jpg", "silver_fir.jpg"]


def _thumbs(thumbs: Path) -> set[str]:
    return {p.name for p in thumbs.rglob("*") if p.is_file()} if thumbs.exists() else set()


def test_files_swapped_for_links_out_after_the_scan_are_not_read(
    db, settings, tiny_model, make_library, photos_dir: Path, tmp_path: Path
) -> None:
    root, outside = tmp_path / "library", tmp_path / "outside"
    copy_photos(photos_dir, root / "sub", NAMES[:1])
    copy_photos(photos_dir, root, NAMES[1:3])
    copy_photos(photos_dir, outside / "sub", NAMES[:1])
    secret = copy_photos(photos_dir, outside, [NAMES[3]])[0]
    lib = make_library(root)

    def swap(p: IngestProgress) -> None:  # after the scan listed the files, before any is read
        if p.phase == "index" and not p.done:
            os.unlink(root / NAMES[1])
            os.symlink(secret, root / NAMES[1])  # a file becomes a link out
            shutil.rmtree(root / "sub")
            os.symlink(outside / "sub", root / "sub")  # a folder becomes a link out
            os.unlink(root / NAMES[2])
            os.mkfifo(root / NAMES[2])  # would block a plain open() forever

    before = _thumbs(settings.thumbs_dir)
    s = index_library(db, settings, lib, model=tiny_model, progress=swap)
    errors = {Path(e["path"]).name: e for e in list_ingest_errors(db, library_id=lib["id"])}
    assert {n: errors[n]["reason"] for n in NAMES[:2]} == {NAMES[0]: OUTSIDE, NAMES[1]: OUTSIDE}, errors
    assert NAMES[2] in errors and s.new == 0
    assert not [a for a in list_assets(db, lib["id"]) if a.get("indexed_at")]
    made = _thumbs(settings.thumbs_dir) - before
    secret_thumbs = {p.name for p in thumb_paths(settings.thumbs_dir, _sha1(secret))}
    assert not made & secret_thumbs and not made, made


def _sha1(path: Path) -> bytes:
    import hashlib

    return hashlib.sha1(path.read_bytes()).digest()


def test_links_inside_the_library_are_read_and_links_out_are_refused(tiny_model, photos_dir, tmp_path) -> None:
    root, outside = tmp_path / "library", tmp_path / "outside"
    inside = copy_photos(photos_dir, root / "real", NAMES[:1])[0]
    secret = copy_photos(photos_dir, outside, NAMES[1:2])[0]
    (root / "folder-link").symlink_to(root / "real", target_is_directory=True)
    (root / "file-link.jpg").symlink_to(secret)
    roots = real_roots([root])
    thumbs = tmp_path / "thumbs"

    def run(path: Path) -> FileResult | FileError:
        return process_file(FileTask(str(path), 0, 0, roots=roots), tiny_model.preprocessor, thumbs)

    assert isinstance(run(root / "folder-link" / inside.name), FileResult)  # a folder link inside: fine
    r = run(root / "file-link.jpg")
    assert isinstance(r, FileError) and r.reason == OUTSIDE and "link" in r.detail
    r = process_file(FileTask(str(secret), 0, 0, roots=roots), tiny_model.preprocessor, thumbs)
    assert isinstance(r, FileError) and r.reason == OUTSIDE
    with pytest.raises(LinkRefused):
        open_inside(str(root / "file-link.jpg"), roots)
    with pytest.raises(OutsideRoots):
        open_inside(str(secret), roots)


def test_a_fifo_cannot_hang_the_reader(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    done: list[BaseException] = []

    def read() -> None:
        try:
            open_inside(str(tmp_path / "pipe.jpg"), real_roots([tmp_path]))
        except OSError as exc:
            done.append(exc)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(5)
    assert done and isinstance(done[0], IsADirectoryError)
