"""Many assets at once: favourite / archive / trash / restore, a zip download streamed as it is written,
and the trash (list, empty). Everything is scoped to the caller's own assets."""

from __future__ import annotations

import os
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from photosearch.api.auth import tokens_match
from photosearch.api.deps import Ctx, CurrentUser, optional_user
from photosearch.api.errors import ApiError
from photosearch.api.files import original_roots, safe_original_path
from photosearch.api.schemas import SearchResponse, asset_out
from photosearch.confine import open_inside
from photosearch.db.timeline import ACTIONS, assets_for_download, bulk_update, empty_trash, trash_page

router = APIRouter(tags=["assets"])
MAX_BULK = 1000
CHUNK = 1024 * 1024


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[UUID] = Field(min_length=1, max_length=MAX_BULK)
    action: Literal["favorite", "unfavorite", "archive", "unarchive", "trash", "restore"]


@router.post("/api/assets/bulk")
def bulk(body: BulkRequest, user: CurrentUser, ctx: Ctx) -> dict:
    """Apply one action to many of the caller's assets; ids of other people's assets are ignored.
    `trash` moves to the trash (restorable), never touching files."""
    assert body.action in ACTIONS
    return {
        "action": body.action,
        "updated": bulk_update(ctx.db, user["id"], list(dict.fromkeys(body.ids)), body.action),
    }


@router.get("/api/trash", response_model=SearchResponse)
def trash(
    user: CurrentUser,
    ctx: Ctx,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict:
    """The caller's trashed assets, most recently trashed first."""
    rows = trash_page(ctx.db, user["id"], size + 1, (page - 1) * size)
    return {"items": [asset_out(r) for r in rows[:size]], "next_page": page + 1 if len(rows) > size else None}


@router.post("/api/trash/empty")
def trash_empty(user: CurrentUser, ctx: Ctx) -> dict:
    """Remove the caller's trashed assets from the index for good. Files the server stored (uploads)
    are deleted with them; files in folders the server only reads stay on disk, so a later scan of
    that folder finds them again."""
    removed = empty_trash(ctx.db, user["id"])
    uploads = (ctx.settings.data_dir / "uploads").resolve()
    files = 0
    for row in removed:
        path = Path(row["original_path"])
        if path.resolve().is_relative_to(uploads) and path.is_file():
            path.unlink()
            files += 1
            try:
                path.parent.rmdir()  # each upload sits in a folder of its own
            except OSError:
                pass
    return {"deleted": len(removed), "files_removed": files}


def _download_user(request: Request, csrf_token: str) -> dict:
    """A form post (so the browser streams the zip to disk): the session's CSRF token comes as a form
    field instead of the header."""
    user = optional_user(request)
    if user is None:
        raise ApiError(401, "authentication required: log in, or send an API key in the x-api-key header")
    if user["auth"] == "session" and not tokens_match(csrf_token, user["csrf_token"]):
        raise ApiError(403, "missing or wrong CSRF token")
    return user


class _Sink:
    """A write-only file for zipfile that hands its bytes to the response generator."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.pos = 0

    def write(self, b: bytes) -> int:
        self.parts.append(bytes(b))
        self.pos += len(b)
        return len(b)

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def zip_stream(files: list[tuple[Path, str, tuple[str, ...]]]) -> Iterator[bytes]:
    """Yield a zip of `files` (path, name in the archive, roots it must lie in) chunk by chunk: stored, not
    recompressed (photos are compressed already), never holding more than one chunk. A file that became a
    link out of its roots since it was checked is left out."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:  # type: ignore[arg-type]
        for path, name, roots in files:
            try:
                fd, st = open_inside(str(path), roots)
            except OSError:
                continue
            info = zipfile.ZipInfo(name, time.localtime(st.st_mtime)[:6])
            info.file_size, info.external_attr = st.st_size, (st.st_mode & 0xFFFF) << 16
            with os.fdopen(fd, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


@router.post("/api/assets/download")
def download(
    request: Request,
    ctx: Ctx,
    ids: Annotated[str, Form(max_length=MAX_BULK * 37, description="Comma-separated asset ids")] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> StreamingResponse:
    """A zip of the caller's originals among `ids`, streamed while it is written (no copy on disk).
    Files that went offline are left out."""
    user = _download_user(request, csrf_token)
    try:
        wanted = list(dict.fromkeys(UUID(i.strip()) for i in ids.split(",") if i.strip()))
    except ValueError as exc:
        raise ApiError(422, "ids: comma-separated asset ids expected") from exc
    if not wanted or len(wanted) > MAX_BULK:
        raise ApiError(422, f"ids: between 1 and {MAX_BULK} asset ids")
    files: list[tuple[Path, str, tuple[str, ...]]] = []
    names: set[str] = set()
    for row in assets_for_download(ctx.db, user["id"], wanted):
        try:
            path = safe_original_path(row)
        except ApiError:
            continue
        name, stem, n = row["original_file_name"], Path(row["original_file_name"]).stem, 1
        while name.lower() in names:
            n += 1
            name = f"{stem} ({n}){Path(row['original_file_name']).suffix}"
        names.add(name.lower())
        files.append((path, name, original_roots(row)))
    if not files:
        raise ApiError(404, "none of these photos is available for download")
    return StreamingResponse(
        zip_stream(files),
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="photos.zip"'},
    )
