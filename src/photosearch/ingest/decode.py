"""The per-file work done in a worker process: read once, hash, sniff, read metadata, decode once,
write thumbnails, preprocess for the model. Every failure becomes a `FileError` with a reason.

Runs under `spawn`/`forkserver`: the worker gets a picklable `Preprocessor` through `init_worker`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from photosearch.confine import LinkRefused, OutsideRoots, open_inside, real_roots
from photosearch.ingest.metadata import PhotoMetadata, extract_metadata, mtime_date
from photosearch.ingest.scan import fs_path, sniff_format
from photosearch.ingest.thumbnails import PREVIEW_SIZE, make_thumbnails, thumb_paths

# Pillow raises DecompressionBombError at twice MAX_IMAGE_PIXELS (2 × 89.5 MP); we use that as our one
# clear limit, checked from the header before any pixel is decoded. 100 MP phone photos pass.
MAX_PIXELS = 2 * 89_478_485
MAX_FILE_BYTES = 1 << 30
HOT_NS = 2_000_000_000  # files modified less than this ago are read twice to catch concurrent writers

# Reasons (stable strings: shown by `photosearch errors`, usable in scripts).
EMPTY, NOT_IMAGE, TOO_LARGE, BOMB, CORRUPT, TRUNCATED, UNREADABLE, VANISHED, CHANGED = (
    "empty file",
    "not an image",
    "file too large",
    "decompression bomb",
    "corrupt image",
    "truncated image",
    "unreadable",
    "vanished",
    "changed while reading",
)
WORKER_DIED = "worker died"
OUTSIDE = "outside the library"
_OBJECT_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>")
# Transient reasons are retried on the next run even if size and mtime did not change.
TRANSIENT = frozenset({UNREADABLE, VANISHED, CHANGED, WORKER_DIED})


@dataclass(slots=True)
class FileTask:
    path: str  # as stored in the database (db_path form)
    size: int
    mtime_ns: int
    asset_id: str | None = None  # known asset at this path
    known_checksum: bytes | None = None
    thumbs_ready: bool = False  # the thumbnails of known_checksum exist where they are kept (cluster runs)
    roots: tuple[str, ...] = ()  # the library's folders, resolved (confine.real_roots); () = the file's folder


@dataclass(slots=True)
class FileError:
    path: str
    reason: str
    detail: str
    size: int | None = None
    mtime_ns: int | None = None


@dataclass(slots=True)
class FileResult:
    task: FileTask
    size: int
    mtime_ns: int
    checksum: bytes
    width: int
    height: int
    metadata: PhotoMetadata
    thumbnail_path: str | None = None
    preview_path: str | None = None
    thumbhash: bytes | None = None
    pixels: np.ndarray | None = None  # None: same content as stored, no re-embedding needed
    embedding: np.ndarray | None = None  # already embedded where it was decoded (cluster runs)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mtime(self) -> datetime:
        return mtime_date(self.mtime_ns)


_STATE: dict[str, Any] = {}


def init_worker(preprocessor: Any, thumbs_dir: str) -> None:
    """Process-pool initializer: keep the preprocessor and register the extra decoders once."""
    _STATE["pre"] = preprocessor
    _STATE["thumbs"] = Path(thumbs_dir)
    register_decoders()


def register_decoders() -> None:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2  # Pillow raises at twice this: exactly our limit
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        if hasattr(pillow_heif, "register_avif_opener"):
            pillow_heif.register_avif_opener()
    except ImportError:  # pragma: no cover - a declared dependency
        pass
    try:
        import pillow_jxl  # noqa: F401 - registers the JXL plugin on import
    except ImportError:  # pragma: no cover
        pass


def run_task(task: FileTask) -> FileResult | FileError:
    """Entry point in the worker."""
    return process_file(task, _STATE["pre"], _STATE["thumbs"])


def _read(path: str, roots: tuple[str, ...]) -> tuple[bytes, os.stat_result]:
    """The file's bytes, read through a descriptor that is checked to lie inside `roots`: a file swapped for a
    link out of the library after the scan listed it is refused, not read."""
    fd, st = open_inside(path, roots or real_roots([os.path.dirname(path)]))
    try:
        if st.st_size > MAX_FILE_BYTES:
            return b"", st
        chunks, left = [], st.st_size + 1  # one byte more: notices a file that grew meanwhile
        while left > 0:
            b = os.read(fd, min(left, 8 << 20))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
        return b"".join(chunks), st
    finally:
        os.close(fd)


def process_file(task: FileTask, preprocessor: Any, thumbs_dir: Path) -> FileResult | FileError:
    path = fs_path(task.path)
    try:
        data, st = _read(path, task.roots)
    except FileNotFoundError:
        return FileError(task.path, VANISHED, "the file disappeared before it could be read")
    except (OutsideRoots, LinkRefused) as exc:
        return FileError(task.path, OUTSIDE, f"{exc.strerror}; it is not read")
    except PermissionError as exc:
        return FileError(task.path, UNREADABLE, f"permission denied ({exc.strerror})")
    except OSError as exc:
        return FileError(task.path, UNREADABLE, exc.strerror or str(exc))
    size, mtime_ns = st.st_size, st.st_mtime_ns

    def error(reason: str, detail: str) -> FileError:
        keep = reason not in TRANSIENT
        return FileError(task.path, reason, detail, size if keep else None, mtime_ns if keep else None)

    if size == 0:
        return error(EMPTY, "0-byte file")
    if size > MAX_FILE_BYTES:
        return error(TOO_LARGE, f"{size} bytes is over the {MAX_FILE_BYTES >> 20} MiB limit")
    try:
        after = os.stat(path)
    except FileNotFoundError:
        return error(VANISHED, "the file disappeared while it was being read")
    if len(data) != size or (after.st_size, after.st_mtime_ns) != (size, mtime_ns):
        return error(CHANGED, "the file was modified while it was being read; it will be retried")
    fmt = sniff_format(data[:32])
    if fmt is None:
        return error(NOT_IMAGE, "the content is not a supported image format " + _describe(data[:64]))
    checksum = hashlib.sha1(data, usedforsecurity=False).digest()
    if time.time_ns() - mtime_ns < HOT_NS:
        # mtime has coarse (clock-tick) granularity: a file written moments ago may still be changing
        # without its size or mtime showing it. Read it again and compare.
        try:
            again, st2 = _read(path, task.roots)
        except OSError:
            return error(VANISHED, "the file disappeared while it was being read")
        if (st2.st_size, st2.st_mtime_ns) != (size, mtime_ns) or hashlib.sha1(
            again, usedforsecurity=False
        ).digest() != checksum:
            return error(CHANGED, "the file was modified while it was being read; it will be retried")
    try:
        return _decode(task, data, size, mtime_ns, checksum, preprocessor, thumbs_dir, path)
    except Image.DecompressionBombError as exc:
        return error(BOMB, f"over the {MAX_PIXELS / 1e6:.0f} MP limit ({exc})")
    except MemoryError:
        return error(TOO_LARGE, "not enough memory to decode")
    except Exception as exc:  # noqa: BLE001 - a decoder bug on one file must not stop the run
        return error(*decode_failure(fmt, exc))


def decode_failure(fmt: str, exc: BaseException) -> tuple[str, str]:
    """(reason, detail) for a decoder's exception, in words: the cause rather than our wrapper, no object
    reprs (Pillow names the in-memory buffer it was given), and a file cut short said to be truncated."""
    while exc.__cause__ is not None and type(exc).__name__ == "ImageDecodeError":
        exc = exc.__cause__
    text = _OBJECT_REPR.sub("", str(exc)).strip()
    if isinstance(exc, UnidentifiedImageError):
        text = "the decoder does not recognise the data"
    elif not isinstance(exc, OSError | SyntaxError | ValueError | EOFError):
        text = f"{type(exc).__name__}: {text}"
    if isinstance(exc, EOFError) or "truncated" in text.lower():
        return TRUNCATED, f"{fmt}: the file ends early ({text or 'no more data'})"
    return CORRUPT, f"{fmt}: {text or type(exc).__name__}"


def _describe(head: bytes) -> str:
    try:
        head.decode("utf-8")
        return "(looks like text)"
    except UnicodeDecodeError:
        return f"(starts with {head[:8].hex()})"


def _decode(
    task: FileTask,
    data: bytes,
    size: int,
    mtime_ns: int,
    checksum: bytes,
    preprocessor: Any,
    thumbs_dir: Path,
    path: str,
) -> FileResult | FileError:
    img = Image.open(io.BytesIO(data))
    w, h = img.size
    if w * h > MAX_PIXELS:
        return FileError(
            task.path,
            BOMB,
            f"{w}×{h} = {w * h / 1e6:.0f} MP is over the {MAX_PIXELS / 1e6:.0f} MP limit",
            size,
            mtime_ns,
        )
    meta = extract_metadata(img, path)
    if img.format not in ("HEIF", "AVIF") and meta.orientation in (5, 6, 7, 8):
        w, h = h, w  # stored rotated: report displayed dimensions (pillow-heif already rotated)
    thumb, preview = thumb_paths(thumbs_dir, checksum)
    result = FileResult(task, size, mtime_ns, checksum, w, h, meta, str(thumb), str(preview))
    if task.known_checksum == checksum and (task.thumbs_ready or (thumb.exists() and preview.exists())):
        return result  # touched but identical: metadata refreshed, no decode, no re-embedding
    rgb = decode_reduced(img, data, preprocessor, PREVIEW_SIZE)
    del img
    model_min = getattr(preprocessor, "draft_size", 2 * PREVIEW_SIZE)
    working, result.thumbhash = make_thumbnails(rgb, thumbs_dir, checksum, model_min)
    result.pixels = np.asarray(preprocessor(working), dtype=np.float32)
    return result


_REDUCIBLE = frozenset({"L", "LA", "La", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "F"})
_STRIP_ROWS = 64  # output rows reduced at a time: a strip of a 100 MP photo is ~15 MB


def _reducible_mode(img: Image.Image) -> str | None:
    """The mode a strip is converted to before Image.reduce (which takes only some modes), or None to keep it."""
    if img.mode in _REDUCIBLE:
        return None
    if img.mode.startswith("I;16"):
        return "I"
    if img.mode == "P":
        return "RGBA" if "transparency" in img.info else "RGB"
    return "L" if img.mode == "1" else "RGB"


def decode_reduced(img: Image.Image, data: bytes, preprocessor: Any, draft_to: int) -> Image.Image:
    """The photo as RGB, at least `draft_to` on the short side, decoded once. A JPEG decodes in the DCT domain
    (the preprocessor's loader); other formats have no reduced decode, so the full frame `img` (already open,
    often already loaded by reading its metadata) is the one full-size copy: it is box-reduced a strip at a
    time, since reducing or converting it whole would allocate a second full-size image (RGBA premultiplies,
    a palette or 16-bit image must be converted first)."""
    if img.format == "JPEG":
        img.close()  # a second, reduced decode follows: do not hold the first
        return preprocessor.load_image(data, draft_to=draft_to)
    img.load()
    factor = min(img.size) // draft_to
    return preprocessor.load_image(reduce_in_strips(img, factor) if factor >= 2 else img)


def reduce_in_strips(img: Image.Image, factor: int) -> Image.Image:
    """`img.reduce(factor)`, pixel for pixel (after a conversion for modes it does not take), with the extra
    memory of one strip instead of a whole image."""
    w, h = img.size
    mode = _reducible_mode(img)
    out = Image.new(mode or img.mode, (-(-w // factor), -(-h // factor)))
    step = factor * _STRIP_ROWS
    for y in range(0, h, step):
        with img.crop((0, y, w, min(h, y + step))) as strip:
            out.paste((strip.convert(mode) if mode else strip).reduce(factor), (0, y // factor))
    out.info = img.info.copy()  # the EXIF orientation the loader applies
    return out
