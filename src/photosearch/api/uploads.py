"""Checks on uploaded query images: the bytes decide what a file is, never its name or Content-Type."""

from __future__ import annotations

import ctypes
import io
import os
import threading
import warnings
from typing import Any

from fastapi import UploadFile
from PIL import Image

from photosearch.api.errors import ApiError

_BRANDS_HEIF = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_BRANDS_AVIF = {b"avif", b"avis"}


def sniff_image(head: bytes) -> str | None:
    """The image format from magic bytes, or None if these are not the first bytes of an image."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] in (b"II", b"MM") and head[2:4] in (b"*\x00", b"\x00*"):
        return "tiff"
    if head.startswith(b"BM") and len(head) > 14:
        return "bmp"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "jxl"
    if head[4:8] == b"ftyp":
        brands = {head[i : i + 4] for i in range(8, min(len(head), 64), 4)}
        if brands & _BRANDS_AVIF:
            return "avif"
        if brands & _BRANDS_HEIF:
            return "heic"
    return None


async def read_image_upload(file: UploadFile, limit: int) -> bytes:
    """Read an upload up to `limit` bytes: 413 past it, 422 if empty, 415 if the bytes are not an image."""
    return _checked(await file.read(limit + 1), limit)


def decode_query_upload(file: UploadFile, limit: int, model: Any, max_pixels: int) -> Any:  # -> PIL.Image.Image
    """`read_image_upload` then `decode_image`, reading the bytes only once a decode slot is free: uploads
    waiting for one stay in the multipart parser's spooled file (on disk past 1 MB), not in memory. Blocking:
    call it from a worker thread."""
    with _decode_slots(max_pixels):
        file.file.seek(0)
        return decode_image(_checked(file.file.read(limit + 1), limit), model, max_pixels)


def _checked(data: bytes, limit: int) -> bytes:
    if len(data) > limit:
        size = f"{limit / (1024 * 1024):.0f} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
        raise ApiError(413, f"the image is larger than the {size} upload limit")
    if not data:
        raise ApiError(422, "file: the upload is empty")
    if sniff_image(data[:64]) is None:
        raise ApiError(
            415, "file: not a supported image (JPEG, PNG, WebP, HEIC, AVIF, JPEG XL, GIF, TIFF or BMP expected)"
        )
    return data


# Our own pixel limits are checked from the header; Pillow's warning below its error threshold adds nothing.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


class _Slots:
    """A semaphore a thread may enter again while it holds it (a slot held around read and decode)."""

    def __init__(self, n: int) -> None:
        self._sem = threading.BoundedSemaphore(n)
        self._depth = threading.local()

    def __enter__(self) -> None:
        depth = getattr(self._depth, "n", 0)
        if not depth:
            self._sem.acquire()
        self._depth.n = depth + 1

    def __exit__(self, *exc: object) -> None:
        self._depth.n -= 1
        if not self._depth.n:
            self._sem.release()


_slots: _Slots | None = None
_slots_lock = threading.Lock()


def _decode_slots(max_pixels: int) -> _Slots:
    """How many query images decode at once: what an eighth of the available memory holds of the largest
    allowed image at 4 bytes a pixel, at least one, at most one per core (decoding is CPU-bound anyway)."""
    global _slots
    with _slots_lock:
        if _slots is None:
            import psutil

            fit = psutil.virtual_memory().available // 8 // max(1, max_pixels * 4)
            _slots = _Slots(int(max(1, min(fit, os.cpu_count() or 1))))
        return _slots


def release_memory() -> None:
    """Hand freed heap pages back to the system (glibc keeps them otherwise: a process that once decoded a
    large image would stay that large). A no-op elsewhere."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


def _undecodable(data: bytes, exc: BaseException) -> str:
    """The 422 message for a file the decoder gave up on, in ingest's words (a file cut short says so)."""
    from photosearch.ingest.decode import decode_failure

    _, detail = decode_failure(sniff_image(data[:64]) or "image", exc)
    return f"file: the image cannot be decoded: {detail}"


def decode_image(data: bytes, model: Any = None, max_pixels: int | None = None) -> Any:  # -> PIL.Image.Image
    """Decode an uploaded image at reduced size: with the model's loader (same orientation/colour handling as
    indexing) to what the model needs, else to preview size — a JPEG in the DCT domain, other formats
    box-reduced a strip at a time after decoding (one full frame at most). The header is checked first: more
    than `max_pixels` (default: ingest's limit) is a 413 before a pixel is decoded. Decodes are bounded in
    number (_decode_slots) and their memory is released afterwards. 422 on an undecodable file."""
    from PIL import Image

    from photosearch.ingest.decode import MAX_PIXELS, decode_reduced
    from photosearch.ingest.thumbnails import PREVIEW_SIZE
    from photosearch.models.preprocess import PreprocessConfig, Preprocessor

    max_pixels = max_pixels or MAX_PIXELS
    limit = f"the {max_pixels / 1e6:.0f} MP limit" + (" for query images" if model is not None else "")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
    except Image.DecompressionBombError as exc:
        raise ApiError(413, f"file: the image is over {limit}") from exc
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the client's broken file
        raise ApiError(422, _undecodable(data, exc)) from exc
    if width * height > max_pixels:
        raise ApiError(413, f"file: the image is {width}×{height} = {width * height / 1e6:.0f} MP, over {limit}")
    pre = model.preprocessor if model is not None else Preprocessor(PreprocessConfig((224, 224), (0,) * 3, (1,) * 3))
    draft_to = getattr(pre, "draft_size", None) if model is not None else PREVIEW_SIZE
    try:
        with _decode_slots(max_pixels):
            if not draft_to:
                return pre.load_image(data)
            return decode_reduced(Image.open(io.BytesIO(data)), data, pre, draft_to)
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the client's broken file
        raise ApiError(422, _undecodable(data, exc)) from exc
    finally:
        release_memory()
