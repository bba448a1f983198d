"""Text in photos (OCR): an optional pass after embedding, resumable, one photo per transaction.

Why its own pass: reading text costs 15-20x a CLIP embedding (rapidocr's PP-OCR detection + recognition on ONNX
Runtime), so the photos are searchable by content first and their text follows; a killed pass resumes with the
photos not read yet (`asset_text` holds the checksum each text was read from). It reads the stored preview
(short side 1440, already decoded, rotated and small) rather than the original, downscaled to OCR_MAX_SIDE on
the long side: measured by benchmarks/ocr_bench.py, that keeps the words of full resolution at about half the time.
The models ship inside the `rapidocr` wheel (extra `photosearch[ocr]`); nothing is downloaded at run time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

import numpy as np
import psycopg
from PIL import Image, ImageOps

from photosearch.config import Settings
from photosearch.db.pool import Database

log = logging.getLogger(__name__)

OCR_MAX_SIDE = 2000  # long side of the image OCR reads (benchmarks/ocr_bench.py)
MIN_SCORE = 0.5  # recognised lines less certain than this are dropped (rapidocr's default text_score)
PAGE = 64
INSTALL_HINT = "text in photos (OCR) needs the extra: pip install 'photosearch[ocr]'"


class OcrUnavailable(RuntimeError):
    """rapidocr is not installed."""


def check_available() -> None:
    try:
        import rapidocr  # noqa: F401
    except ImportError as exc:
        raise OcrUnavailable(INSTALL_HINT) from exc


class TextReader:
    """One rapidocr engine (detection, orientation, recognition sessions), created on first use."""

    def __init__(self, threads: int = 1, max_side: int = OCR_MAX_SIDE) -> None:
        self.threads, self.max_side = max(1, threads), max_side
        self._engine: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._engine is None:
                check_available()
                from rapidocr import RapidOCR

                logging.getLogger("RapidOCR").setLevel(logging.ERROR)  # "detection result is empty" is no news
                self._engine = RapidOCR(
                    params={
                        "Global.log_level": "error",
                        "Global.text_score": MIN_SCORE,
                        "Global.max_side_len": self.max_side,  # we downscale: rapidocr must not shrink it again
                        "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                    }
                )
            return self._engine

    def prepare(self, img: Image.Image) -> np.ndarray:
        """RGB, at most max_side on the long side, as the BGR array OpenCV-based rapidocr expects."""
        img = ImageOps.exif_transpose(img).convert("RGB")
        if max(img.size) > self.max_side:
            img.thumbnail((self.max_side, self.max_side), Image.Resampling.LANCZOS)
        return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])

    def read_array(self, bgr: np.ndarray) -> str:
        """Recognised lines, top to bottom as detected, one per line."""
        result = self._get()(bgr)
        texts = getattr(result, "txts", None) or ()
        return "\n".join(t.strip() for t in texts if t and t.strip())

    def read_file(self, path: str | Path | BinaryIO) -> str:
        with Image.open(path) as img:
            if img.format == "JPEG":
                img.draft("RGB", (self.max_side, self.max_side))  # decode a 12 MP JPEG at 1/2-1/8 scale
            return self.read_array(self.prepare(img))


_readers: dict[int, TextReader] = {}


def reader(threads: int) -> TextReader:
    """One reader per process and thread count (loading the sessions costs ~0.5 s)."""
    return _readers.setdefault(threads, TextReader(threads))


@dataclass
class OcrSummary:
    read: int = 0  # photos whose text was read (with or without text found)
    with_text: int = 0
    errors: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_library_text(
    db: Database,
    settings: Settings,
    library: dict,
    progress: Callable[[int, int, int], None] | None = None,
) -> OcrSummary:
    """Read the text of every photo of `library` not read since its content last changed.
    `progress(done, total, errors)` after each photo."""
    from photosearch.confine import open_inside, real_roots
    from photosearch.db.ocr import count_unread, unread_page, write_text
    from photosearch.ingest.decode import register_decoders
    from photosearch.ingest.scan import fs_path

    check_available()
    register_decoders()
    t0 = time.perf_counter()
    out = OcrSummary()
    lib_id = library["id"]
    roots = real_roots(library["import_paths"])
    text_reader = reader(settings.threads)
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        total = count_unread(conn, lib_id)
        after = UUID(int=0)
        while rows := unread_page(conn, lib_id, after, PAGE):
            for row in rows:
                after = row[0]
                preview = row[3]
                try:
                    if preview and Path(preview).is_file():
                        text, error = text_reader.read_file(preview), None
                    else:  # the original, only where it lies inside the library (as every ingest read)
                        fd, _ = open_inside(fs_path(row[2]), roots)
                        with os.fdopen(fd, "rb") as f:
                            text, error = text_reader.read_file(f), None
                except Exception as exc:  # noqa: BLE001 - one bad photo must not stop the pass
                    text, error = "", f"{type(exc).__name__}: {exc}"[:500]
                write_text(conn, lib_id, row, text, error)
                out.read += 1
                out.with_text += bool(text)
                out.errors += error is not None
                if progress:
                    progress(out.read, total, out.errors)
    out.seconds = time.perf_counter() - t0
    return out


__all__ = ["OCR_MAX_SIDE", "OcrSummary", "OcrUnavailable", "TextReader", "check_available", "read_library_text"]
