"""Incremental runs: unchanged files cost nothing; touched, modified, renamed and deleted files are handled."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from photosearch.db.assets import asset_counts, get_asset_by_path, get_embedding, list_assets, list_ingest_errors
from photosearch.ingest import index_library
from photosearch.ingest.thumbnails import thumb_paths

from .conftest import copy_photos

NAMES = ["cyclamen_persicum.jpg", "el_torcal_rocks.jpg", "notocactus_minimus.jpg", "mongolels.jpg"]


def _run(db, settings, lib, model):
    return index_library(db, settings, lib, model=model)


def test_first_run_then_no_work(db, settings, tiny_model, make_library, photos_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    copy_photos(photos_dir, root, NAMES)
    lib = make_library(root)
    s = _run(db, settings, lib, tiny_model)
    assert (s.seen, s.new, s.errors, s.embedded) == (4, 4, 0, 4)
    for a in list_assets(db, lib["id"]):
        thumb, preview = thumb_paths(settings.thumbs_dir, bytes(a["checksum"]))
        assert (a["thumbnail_path"], a["preview_path"]) == (str(thumb), str(preview))
        with Image.open(thumb) as t, Image.open(preview) as p:
            assert t.format == "WEBP" and p.format == "JPEG"
            assert min(t.size) == min(250, a["width"], a["height"])
            assert p.size == (a["width"], a["height"])  # all smaller than 1440: not upscaled
        vec = np.asarray(get_embedding(db, a["id"]).to_numpy())
        assert vec.shape == (tiny_model.embed_dim,) and abs(np.linalg.norm(vec) - 1) < 1e-4
    s = _run(db, settings, lib, tiny_model)
    assert (s.seen, s.unchanged, s.new, s.updated, s.embedded, s.offline) == (4, 4, 0, 0, 0, 0)


def test_touch_modify_rename_delete(db, settings, tiny_model, make_library, photos_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    a, b, c, d = copy_photos(photos_dir, root, NAMES)
    lib = make_library(root)
    _run(db, settings, lib, tiny_model)
    ids = {p.name: get_asset_by_path(db, lib["id"], str(p))["id"] for p in (a, b, c, d)}

    # touch: mtime changes, content does not → metadata refreshed, no re-embedding, same id
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 5_000_000_000))
    s = _run(db, settings, lib, tiny_model)
    assert (s.updated, s.embedded, s.unchanged) == (1, 0, 3)
    row = get_asset_by_path(db, lib["id"], str(a))
    assert row["id"] == ids[a.name] and row["file_modified_at"].timestamp() == a.stat().st_mtime_ns // 1000 / 1e6

    # modify: new content at the same path → re-embedded, same id, old thumbnails gone
    old = get_asset_by_path(db, lib["id"], str(b))
    old_thumb = Path(old["thumbnail_path"])
    shutil.copyfile(next(photos_dir.rglob("polemonium_reptans.jpg")), b)
    s = _run(db, settings, lib, tiny_model)
    assert (s.updated, s.embedded) == (1, 1)
    row = get_asset_by_path(db, lib["id"], str(b))
    assert row["id"] == ids[b.name] and row["checksum"] != old["checksum"]
    assert not old_thumb.exists() and Path(row["thumbnail_path"]).exists()

    # rename into another folder: same checksum → same asset id, new path, nothing offline
    (root / "sub").mkdir()
    moved = root / "sub" / "renamed.jpg"
    os.rename(c, moved)
    s = _run(db, settings, lib, tiny_model)
    assert (s.moved, s.new, s.offline) == (1, 0, 0)
    row = get_asset_by_path(db, lib["id"], str(moved))
    assert row["id"] == ids[c.name] and row["original_file_name"] == "renamed.jpg" and not row["is_offline"]
    assert get_asset_by_path(db, lib["id"], str(c)) is None

    # delete → offline (kept, not lost); back again → online with the same id
    data = d.read_bytes()
    d.unlink()
    s = _run(db, settings, lib, tiny_model)
    assert s.offline == 1
    assert get_asset_by_path(db, lib["id"], str(d))["is_offline"]
    assert asset_counts(db, lib["id"])["assets"] == 4
    d.write_bytes(data)
    s = _run(db, settings, lib, tiny_model)
    row = get_asset_by_path(db, lib["id"], str(d))
    assert row["id"] == ids[d.name] and not row["is_offline"] and s.embedded == 0


def test_offline_assets_are_trashed_after_the_configured_days(
    db, settings, tiny_model, make_library, photos_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    (a,) = copy_photos(photos_dir, root, NAMES[:1])
    lib = make_library(root)
    _run(db, settings, lib, tiny_model)
    a.unlink()
    trash_now = settings.model_copy(update={"trash_offline_after_days": 0})
    s = _run(db, trash_now, lib, tiny_model)
    assert (s.offline, s.trashed) == (1, 1)
    assert get_asset_by_path(db, lib["id"], str(a))["deleted_at"] is not None


def test_partial_scan_sweeps_only_its_roots(db, settings, tiny_model, make_library, photos_dir, tmp_path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    copy_photos(photos_dir, one, NAMES[:1])
    copy_photos(photos_dir, two, NAMES[1:2])
    lib = make_library(one, two)
    _run(db, settings, lib, tiny_model)
    s = index_library(db, settings, lib, model=tiny_model, roots=[str(one)])
    assert (s.seen, s.offline) == (1, 0)
    assert asset_counts(db, lib["id"])["offline"] == 0


def test_thumbhash_encodes_the_average_colour(db, settings, tiny_model, make_library, tmp_path: Path) -> None:
    from photosearch.ingest.thumbhash import average_rgba, thumbhash_of

    for colour in [(255, 0, 0), (0, 128, 255), (200, 200, 50)]:
        h = thumbhash_of(Image.new("RGB", (120, 80), colour))
        assert len(h) == 21  # 5 header bytes + 32 AC factors for a 7x5 landscape without alpha
        assert all(abs(got * 255 - want) <= 6 for got, want in zip(average_rgba(h), colour, strict=False))
    root = tmp_path / "lib"
    root.mkdir()
    Image.new("RGB", (300, 200), (10, 200, 30)).save(root / "green.png")
    lib = make_library(root)
    index_library(db, settings, lib, model=tiny_model)
    (asset,) = list_assets(db, lib["id"])
    r, g, b, _ = average_rgba(bytes(asset["thumbhash"]))
    assert all(abs(v * 255 - want) <= 6 for v, want in zip((r, g, b), (10, 200, 30), strict=True))


def test_missing_root_is_an_error_and_its_photos_go_offline(
    db, settings, tiny_model, make_library, photos_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "disk"
    copy_photos(photos_dir, root, NAMES[:1])
    lib = make_library(root)
    _run(db, settings, lib, tiny_model)
    shutil.rmtree(root)  # e.g. an unmounted drive
    s = _run(db, settings, lib, tiny_model)
    assert s.offline == 1 and s.errors == 1
    (err,) = list_ingest_errors(db, library_id=lib["id"])
    assert err["path"] == str(root) and err["reason"] == "unreadable"
