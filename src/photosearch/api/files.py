"""Serving originals and thumbnails without ever leaving the allowed roots.

Originals: the stored path is resolved (symlinks followed) and must land inside one of its library's
import paths, themselves resolved. Thumbnails and previews are served only for such assets too (or for
offline ones whose path no longer exists), and must resolve inside `settings.thumbs_dir`. A missing
thumbnail is rendered on demand from the (checked) original into the same cache, so the grid works
even for assets indexed without one.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import Request
from fastapi.responses import FileResponse, Response

from photosearch.api.errors import ApiError
from photosearch.atomic import atomic_write
from photosearch.config import private_dir
from photosearch.confine import open_inside, real_roots

THUMB_SIZES = {"thumb": 250, "preview": 1440}
CACHE_CONTROL = "private, max-age=86400"
_EXTRA_TYPES = {
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".avif": "image/avif",
    ".jxl": "image/jxl",
    ".webp": "image/webp",
    ".dng": "image/x-adobe-dng",
}
_render_lock = threading.Lock()


def media_type(path: Path) -> str:
    ext = path.suffix.lower()
    return _EXTRA_TYPES.get(ext) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _roots(asset: dict[str, Any], strict: bool) -> list[Path]:
    roots = []
    for r in asset.get("import_paths") or []:
        try:
            roots.append(Path(r).resolve(strict=strict))
        except (OSError, RuntimeError):
            continue
    return roots


def check_original_inside(asset: dict[str, Any]) -> None:
    """404 unless the asset's path, with every symlink that exists followed, stays inside its library's roots.

    Thumbnails and previews are the photo too: a file reached through a link out of the library must not be
    shown at any size. A file that is merely missing (offline) passes: its thumbnail still shows."""
    raw = str(asset.get("original_path") or "")
    if not raw or "\0" in raw or not os.path.isabs(raw):
        raise ApiError(404, "the original file is not available")
    try:
        real = Path(raw).resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise ApiError(404, "the original file is not available") from exc
    if not any(_inside(real, root) for root in _roots(asset, strict=False)):
        raise ApiError(404, "the original file is not available")


def safe_original_path(asset: dict[str, Any]) -> Path:
    """The asset's file, resolved, if it lies inside its library's roots; 404 otherwise.

    404 rather than 403 for paths outside the roots: the caller learns nothing about the server's files.
    """
    raw = str(asset.get("original_path") or "")
    if not raw or "\0" in raw or not os.path.isabs(raw):
        raise ApiError(404, "the original file is not available")
    try:
        real = Path(raw).resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # missing, a symlink loop, unreadable
        raise ApiError(404, "the original file is offline (moved or deleted on disk)") from exc
    if not any(_inside(real, root) for root in _roots(asset, strict=True)) or not real.is_file():
        raise ApiError(404, "the original file is not available")
    return real


def _etag(path: Path, extra: str = "") -> str:
    st = path.stat()
    return '"' + hashlib.sha1(f"{path}:{st.st_size}:{st.st_mtime_ns}:{extra}".encode()).hexdigest()[:20] + '"'


class ConfinedFileResponse(FileResponse):
    """A FileResponse whose file is opened through `confine.open_inside`: if the path became a link out of its
    roots after it was checked, the open fails and not a byte of the other file is sent."""

    def __init__(self, path: Path, roots: tuple[str, ...], **kw: Any) -> None:
        super().__init__(path, **kw)
        self.roots = roots

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        extensions = {k: v for k, v in scope.get("extensions", {}).items() if k != "http.response.pathsend"}
        await super().__call__({**scope, "extensions": extensions}, receive, send)  # never "send this path"

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[Any]:
        fd, _ = open_inside(str(self.path), self.roots)
        file = anyio.wrap_file(os.fdopen(fd, "rb"))
        try:
            yield file
        finally:
            with anyio.CancelScope(shield=True):
                await file.aclose()


def cached_file_response(
    request: Request, path: Path, media: str, filename: str | None = None, roots: tuple[str, ...] | None = None
) -> Response:
    """A FileResponse with a strong validator; a matching If-None-Match gets an empty 304. The file is opened
    again inside `roots` (default: its own folder) when it is sent."""
    etag = _etag(path)
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "X-Content-Type-Options": "nosniff"}
    inm = request.headers.get("if-none-match", "")
    if etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*":
        return Response(status_code=304, headers=headers)
    return ConfinedFileResponse(
        path,
        roots if roots is not None else real_roots([path.parent]),
        media_type=media,
        headers=headers,
        content_disposition_type="inline",
        filename=filename,
    )


def original_roots(asset: dict[str, Any]) -> tuple[str, ...]:
    """The asset's library folders, resolved: where its original may be read from."""
    return real_roots(asset.get("import_paths") or [])


def _stored_thumb(asset: dict[str, Any], size: str, thumbs_root: Path) -> Path | None:
    """The thumbnail ingest recorded (or its content-addressed name), if it resolves inside thumbs_dir."""
    candidates: list[Path] = []
    col = asset.get("thumbnail_path" if size == "thumb" else "preview_path")
    if col:
        p = Path(col)
        candidates.append(p if p.is_absolute() else thumbs_root / p)
    checksum = asset.get("checksum")
    if checksum:
        try:
            from photosearch.ingest.thumbnails import thumb_paths

            thumb, preview = thumb_paths(thumbs_root, bytes(checksum))
            candidates.append(thumb if size == "thumb" else preview)
        except ImportError:
            pass
    for cand in candidates:
        try:
            real = cand.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if _inside(real, thumbs_root) and real.is_file():
            return real
    return None


def _render_thumb(asset: dict[str, Any], size: str, thumbs_root: Path) -> Path:
    """Render a thumbnail from the original into `<thumbs>/api/` (atomic write, so concurrent
    requests never see half a file)."""
    from PIL import Image, ImageOps

    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:
        pass
    out = thumbs_root / "api" / f"{asset['id']}-{size}.{'webp' if size == 'thumb' else 'jpeg'}"
    if out.is_file():
        return out
    src = safe_original_path(asset)
    with _render_lock:
        if out.is_file():
            return out
        try:
            fd, _ = open_inside(str(src), original_roots(asset))
        except OSError as exc:  # became a link out, or vanished, since it was checked
            raise ApiError(404, "the original file is not available") from exc
        try:
            with os.fdopen(fd, "rb") as f, Image.open(f) as im:
                im.draft("RGB", (THUMB_SIZES[size], THUMB_SIZES[size]))
                img = ImageOps.exif_transpose(im).convert("RGB")
        except Exception as exc:  # noqa: BLE001 - any decoder failure means "no thumbnail"
            raise ApiError(404, "no thumbnail: the original cannot be decoded") from exc
        side = THUMB_SIZES[size]
        if min(img.size) > side:
            scale = side / min(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
        atomic_write(out, lambda f: img.save(f, "WEBP" if size == "thumb" else "JPEG", quality=80), private=True)
    return out


def thumbnail_path(asset: dict[str, Any], size: str, thumbs_dir: Path) -> Path:
    check_original_inside(asset)
    private_dir(thumbs_dir)
    root = thumbs_dir.resolve()
    return _stored_thumb(asset, size, root) or _render_thumb(asset, size, root)
