"""Thumbnails (≈250 px WebP) and previews (≈1440 px JPEG), cut from the one decode that also feeds the model.

Sizes are on the short side, like immich (`fit: outside`). Files are content-addressed by the photo's
checksum, so a moved or renamed photo keeps its thumbnails, a re-run after a crash just overwrites the
same names, and nothing depends on an asset id that only exists after the database write.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from photosearch.atomic import atomic_write
from photosearch.ingest.thumbhash import thumbhash_of

THUMB_SIZE = 250
PREVIEW_SIZE = 1440
THUMB_QUALITY = 80
PREVIEW_QUALITY = 80


def thumb_paths(thumbs_dir: Path, checksum: bytes) -> tuple[Path, Path]:
    """(thumbnail, preview) paths for a photo with this checksum."""
    h = checksum.hex()
    d = thumbs_dir / h[:2] / h[2:4]
    return d / f"{h}-thumb.webp", d / f"{h}-preview.jpeg"


def fit_short_side(img: Image.Image, size: int, slack: float = 1.0) -> Image.Image:
    """Downscale so the short side is `size` (never upscale; within `slack` × size, leave as is)."""
    w, h = img.size
    short = min(w, h)
    if short <= size * slack:
        return img
    scale = size / short
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    # reducing_gap: a cheap integer box reduce first, then a proper filter for the last step.
    return img.resize(new, Image.Resampling.BICUBIC, reducing_gap=2.0)


def _atomic_save(img: Image.Image, path: Path, fmt: str, **params: object) -> None:
    atomic_write(path, lambda f: img.save(f, fmt, **params), private=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a thumbnail made elsewhere (a cluster worker): readers never see a half-written file."""
    atomic_write(path, lambda f: f.write(data), private=True)


def make_thumbnails(
    rgb: Image.Image, thumbs_dir: Path, checksum: bytes, model_min: int = 448
) -> tuple[Image.Image, bytes]:
    """Write preview and thumbnail from an RGB image; return (image for the model, thumbhash).

    Everything is cut from the one decode: the preview (a JPEG draft decode already lands near 1440 px,
    so within 10 % it is kept as is), then a cheap integer box-reduce of it to >= `model_min` px (the
    preprocessor's own fidelity bound), from which both the thumbnail and the model input are made.
    """
    thumb_path, preview_path = thumb_paths(thumbs_dir, checksum)
    preview = fit_short_side(rgb, PREVIEW_SIZE, slack=1.1)
    if not preview_path.exists():
        _atomic_save(preview, preview_path, "JPEG", quality=PREVIEW_QUALITY, optimize=False)
    factor = min(preview.size) // max(1, model_min)
    working = preview.reduce(factor) if factor >= 2 else preview
    thumb = fit_short_side(working, THUMB_SIZE)
    if not thumb_path.exists():
        _atomic_save(thumb, thumb_path, "WEBP", quality=THUMB_QUALITY, method=0)
    return working, thumbhash_of(thumb)


def remove_thumbnails(thumbs_dir: Path, checksum: bytes) -> None:
    """Best effort: drop files of a checksum no asset uses any more."""
    for p in thumb_paths(thumbs_dir, checksum):
        p.unlink(missing_ok=True)
