"""Every asset ends matching its file: same-content overwrites, byte-identical copies at several paths, and
error reports a person can read (truncated files, non-UTF-8 names, no object reprs)."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from photosearch.db.assets import get_embedding, list_assets, list_ingest_errors
from photosearch.ingest import index_library
from photosearch.ingest.thumbnails import thumb_paths

from .conftest import copy_photos

NAMES = ["cyclamen_persicum.jpg", "el_torcal_rocks.jpg", "notocactus_minimus.jpg"]


def _embed_file(model, path: Path) -> np.ndarray:
    """The file's embedding computed here, outside the pipeline: decode, preprocess, encode."""
    pixels = model.preprocessor(model.preprocessor.load_image(path.read_bytes()))
    vec = model.encode_pixels(pixels[None])[0]
    return vec / np.linalg.norm(vec)


def _assert_every_asset_matches_its_file(db, settings, model, lib) -> None:
    assets = list_assets(db, lib["id"])
    assert assets
    for a in assets:
        path = Path(a["original_path"])
        data = path.read_bytes()
        assert bytes(a["checksum"]) == hashlib.sha1(data).digest(), path.name
        thumb, preview = thumb_paths(settings.thumbs_dir, bytes(a["checksum"]))
        assert (a["thumbnail_path"], a["preview_path"]) == (str(thumb), str(preview)) and thumb.exists()
        with Image.open(preview) as p, Image.open(path) as im:
            assert p.size == im.size  # the preview shows this file (small photos: full size)
        stored = np.asarray(get_embedding(db, a["id"]).to_numpy())
        assert float(stored @ _embed_file(model, path)) > 0.99, path.name


def test_two_files_overwritten_with_the_same_content(
    db, settings, tiny_model, make_library, photos_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    a, b, c = copy_photos(photos_dir, root, NAMES)
    lib = make_library(root)
    index_library(db, settings, lib, model=tiny_model)
    new = next(photos_dir.rglob("polemonium_reptans.jpg")).read_bytes()
    for p in (a, b):
        p.write_bytes(new)
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 5_000_000_000))
    s = index_library(db, settings, lib, model=tiny_model)
    assert (s.updated, s.errors, s.embedded) == (2, 0, 2)
    _assert_every_asset_matches_its_file(db, settings, tiny_model, lib)
    s = index_library(db, settings, lib, model=tiny_model)  # nothing left to do, nothing stale
    assert (s.unchanged, s.updated, s.errors) == (3, 0, 0)
    _assert_every_asset_matches_its_file(db, settings, tiny_model, lib)
    assert list_ingest_errors(db, library_id=lib["id"]) == []


def test_byte_identical_copies_are_each_their_own_asset(
    db, settings, tiny_model, make_library, photos_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    (a,) = copy_photos(photos_dir, root, NAMES[:1])
    (root / "backup").mkdir()
    copy = root / "backup" / "copy.jpg"
    shutil.copyfile(a, copy)
    lib = make_library(root)
    s = index_library(db, settings, lib, model=tiny_model)
    assert (s.new, s.errors) == (2, 0)
    assert list_ingest_errors(db, library_id=lib["id"]) == []
    ids = {a["original_path"]: a["id"] for a in list_assets(db, lib["id"])}
    assert set(ids) == {str(a), str(copy)}
    _assert_every_asset_matches_its_file(db, settings, tiny_model, lib)
    # moving one copy keeps its asset; the other is untouched
    moved = root / "moved.jpg"
    os.rename(copy, moved)
    s = index_library(db, settings, lib, model=tiny_model)
    assert (s.moved, s.new, s.errors) == (1, 0, 0)
    after = {a["original_path"]: a["id"] for a in list_assets(db, lib["id"]) if not a["is_offline"]}
    assert after == {str(a): ids[str(a)], str(moved): ids[str(copy)]}


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    env = {**env, "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "photosearch", *args], env=env, capture_output=True, text=True)


def test_errors_say_truncated_and_show_names_escaped(cli_env, photos_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "bad"
    root.mkdir()
    jpeg = (photos_dir / "albums/nature/prairie_falcon.jpg").read_bytes()
    with open(os.fsencode(root) + b"/caf\xe9-cut.jpg", "wb") as f:  # a truncated file with a non-UTF-8 name
        f.write(jpeg[: len(jpeg) // 2])
    (root / "head-only.jpg").write_bytes(jpeg[:2000])
    (root / "junk.jpg").write_bytes(b"\xff\xd8\xff" + b"x" * 200)
    assert _cli(cli_env, "libraries", "add", "bad", str(root)).returncode == 0
    assert _cli(cli_env, "libraries", "scan", "bad").returncode == 0
    r = _cli(cli_env, "errors")
    assert r.returncode == 0, r.stderr
    assert "caf\\xe9-cut.jpg" in r.stdout and "\U0010ffe9" not in r.stdout
    r = _cli(cli_env, "--json", "errors")
    rows = {Path(e["path"]).name: e for e in __import__("json").loads(r.stdout)}
    assert rows["caf\\xe9-cut.jpg"]["reason"] == "truncated image"
    assert rows["head-only.jpg"]["reason"] == "truncated image"
    assert rows["junk.jpg"]["reason"] == "corrupt image"
    assert all("object at 0x" not in e["detail"] and "ImageDecodeError" not in e["detail"] for e in rows.values())


def test_a_worker_decodes_a_100_mp_photo_in_bounded_memory(tiny_model, tmp_path: Path) -> None:
    """A 100 MP JPEG is decoded at reduced size (DCT draft): the worker's peak RSS grows far less than the
    300 MB a full decode takes."""
    path = tmp_path / "100mp.jpg"
    rng = np.random.default_rng(0)
    tile = Image.fromarray(rng.integers(0, 255, (840, 1200, 3), dtype=np.uint8))
    big = Image.new("RGB", (12_000, 8_400))
    for x in range(0, 12_000, 1200):
        for y in range(0, 8_400, 840):
            big.paste(tile, (x, y))
    big.save(path, quality=80)
    del big
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from photosearch.ingest.decode import FileTask, process_file, register_decoders\n"
        "from photosearch.models.preprocess import PreprocessConfig, Preprocessor\n"
        "register_decoders()\n"
        "pre = Preprocessor(PreprocessConfig((224, 224), (0.5,) * 3, (0.5,) * 3))\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"r = process_file(FileTask({str(path)!r}, 0, 0), pre, Path({str(tmp_path / 'thumbs')!r}))\n"
        "assert r.width == 12000 and r.pixels is not None, r\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    grew_mb = int(out.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux
    file_mb = path.stat().st_size / 2**20
    assert grew_mb < file_mb * 2 + 120, f"peak RSS grew {grew_mb:.0f} MB for a {file_mb:.0f} MB file"
    assert resource.RUSAGE_SELF is not None


def _peak_mb_processing(path: Path, thumbs: Path) -> tuple[float, str]:
    """Peak RSS growth (MB) of a fresh process running ingest's per-file work on `path`, and the result's repr."""
    code = (
        "import resource\n"
        "from pathlib import Path\n"
        "from photosearch.ingest.decode import FileTask, process_file, register_decoders\n"
        "from photosearch.models.preprocess import PreprocessConfig, Preprocessor\n"
        "register_decoders()\n"
        "pre = Preprocessor(PreprocessConfig((224, 224), (0.5,) * 3, (0.5,) * 3))\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"r = process_file(FileTask({str(path)!r}, 0, 0), pre, Path({str(thumbs)!r}))\n"
        "print(type(r).__name__, getattr(r, 'width', getattr(r, 'detail', '')))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    *lines, grew = out.stdout.split("\n")[:-1]
    return int(grew) / 1024, "\n".join(lines)


def test_a_large_png_is_decoded_once_and_reduced_in_strips(tmp_path: Path) -> None:
    """PNG has no reduced decode, so its full frame is the floor (4 bytes a pixel); reading its metadata used to
    decode it a second time and reducing RGBA a third: 64 MP took ~3 full frames."""
    w = h = 8_000
    ramp = np.linspace(0, 255, w, dtype=np.float32).astype(np.uint8)
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = ramp, ramp[::-1], 128, 255
    Image.fromarray(rgba).save(tmp_path / "big.png", compress_level=1)
    del rgba
    frame_mb = w * h * 4 / 2**20
    grew, result = _peak_mb_processing(tmp_path / "big.png", tmp_path / "thumbs")
    assert result.startswith("FileResult 8000"), result
    assert grew < frame_mb + 120, f"peak RSS grew {grew:.0f} MB for a {frame_mb:.0f} MB frame"


def test_a_large_16_bit_png_is_indexed(tmp_path: Path) -> None:
    """Image.reduce does not take 16-bit greyscale: such a photo big enough to be reduced was a 'corrupt image'."""
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (3000, 3200), dtype=np.uint8)).convert("I;16").save(tmp_path / "16.png")
    _, result = _peak_mb_processing(tmp_path / "16.png", tmp_path / "thumbs")
    assert result.startswith("FileResult 3200"), result
