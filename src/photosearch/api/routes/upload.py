"""Uploads from the browser (or any client): one image per request into the caller's own "uploads"
library under the data dir, indexed right away by the same pipeline as `photosearch index`.

The bytes are checked (size, type sniffed from the bytes, decodable) before anything is stored; a photo
the caller already has (same checksum, any library) is reported and not stored again."""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from photosearch.api.context import AppContext
from photosearch.api.deps import Ctx, CurrentUser
from photosearch.api.errors import ApiError
from photosearch.api.schemas import asset_out
from photosearch.api.uploads import decode_image, read_image_upload, release_memory
from photosearch.db.accounts import Conflict
from photosearch.db.libraries import create_library, list_libraries

router = APIRouter(tags=["uploads"])
UPLOADS_LIBRARY = "uploads"
_user_locks: dict[str, threading.Lock] = {}
# One upload decodes and indexes at a time: a photo up to ingest's pixel limit holds a full frame (4 bytes a
# pixel for formats without a reduced decode) while it is checked and again while it is indexed in this process.
_decoding = threading.Lock()
_locks_guard = threading.Lock()


def _lock_for(user_id: str) -> threading.Lock:
    with _locks_guard:
        return _user_locks.setdefault(user_id, threading.Lock())


def safe_name(name: str | None) -> str:
    """A file name without folders or control characters (the original name is kept where possible)."""
    base = Path((name or "").replace("\\", "/")).name
    base = re.sub(r"[\x00-\x1f/]", "", base).strip().lstrip(".")
    return base[:200] or "upload.jpg"


def uploads_library(ctx: AppContext, user: dict) -> dict:
    """The caller's uploads library (data dir/uploads/<user id>), created on first use."""
    root = ctx.settings.data_dir / "uploads" / str(user["id"])
    root.mkdir(parents=True, exist_ok=True)
    for lib in list_libraries(ctx.db, user["id"]):
        if str(root.resolve()) in lib["import_paths"]:
            return lib
    try:
        return create_library(ctx.db, user["id"], f"{UPLOADS_LIBRARY} ({user['email']})", [str(root.resolve())])
    except Conflict as exc:
        raise ApiError(409, f"a library named '{UPLOADS_LIBRARY} ({user['email']})' exists with other folders") from exc


def _existing(ctx: AppContext, owner_id: object, checksum: bytes) -> dict | None:
    with ctx.db.cursor() as cur:
        cur.execute(
            "SELECT id, original_file_name, deleted_at FROM assets WHERE owner_id = %s AND checksum = %s",
            (owner_id, checksum),
        )
        return cur.fetchone()


@router.post("/api/uploads", status_code=201)
async def upload(
    user: CurrentUser,
    ctx: Ctx,
    response: Response,
    file: Annotated[UploadFile, File(description="One photo (the bytes decide the type, not the name)")],
) -> dict:
    """Store and index one photo. 201 `indexed` with the asset; 200 `duplicate` when the caller has
    it already (nothing stored); 413/415/422 for too large, not an image, or undecodable."""
    data = await read_image_upload(file, ctx.max_upload_bytes)
    name = safe_name(file.filename)

    def work() -> dict:
        with _decoding:
            try:
                return store(data)
            finally:
                release_memory()

    def store(data: bytes) -> dict:
        decode_image(data, None)  # a broken file is refused before anything is written
        checksum = hashlib.sha1(data, usedforsecurity=False).digest()
        with _lock_for(str(user["id"])):
            found = _existing(ctx, user["id"], checksum)
            if found is not None:
                return {"status": "duplicate", "asset_id": found["id"], "in_trash": found["deleted_at"] is not None}
            lib = uploads_library(ctx, user)
            folder = Path(lib["import_paths"][0]) / checksum.hex()
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_bytes(data)
            from photosearch.ingest import IngestError, index_library

            try:
                summary = index_library(ctx.db, ctx.settings, lib, model=ctx.model(), roots=[str(folder)])
            except IngestError as exc:  # a scan of the uploads library is running: keep the file, say so
                raise ApiError(
                    409, "your uploads library is being scanned: the photo is stored; the next scan indexes it"
                ) from exc
            with ctx.db.cursor() as cur:
                cur.execute(
                    "SELECT a.*, e.* FROM assets a LEFT JOIN exif e ON e.asset_id = a.id"
                    " WHERE a.library_id = %s AND a.original_path = %s",
                    (lib["id"], str(path)),
                )
                row = cur.fetchone()
            if row is None or not row.get("indexed_at"):
                reasons = ", ".join(summary.error_reasons) or "unknown"
                path.unlink(missing_ok=True)
                try:
                    folder.rmdir()
                except OSError:
                    pass
                raise ApiError(422, f"file: the photo could not be indexed ({reasons})")
            return {"status": "indexed", "asset": asset_out(row)}

    result = await run_in_threadpool(work)
    if result["status"] == "duplicate":
        response.status_code = 200
    return result
