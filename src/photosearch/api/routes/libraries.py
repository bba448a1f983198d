"""Libraries: list (own; admins see all), create (admins: a library lets the server read a folder),
and scan in the background."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from photosearch.api.deps import AdminUser, Ctx, CurrentUser
from photosearch.api.errors import ApiError
from photosearch.api.schemas import JobOut, LibraryCreate, LibraryOut
from photosearch.db.accounts import NotFound, get_user
from photosearch.db.libraries import create_library, get_library, list_libraries

router = APIRouter(tags=["libraries"])


@router.get("/api/libraries", response_model=list[LibraryOut])
def libraries(user: CurrentUser, ctx: Ctx) -> list[dict]:
    return list_libraries(ctx.db, user["id"])


@router.post("/api/libraries", response_model=LibraryOut, status_code=201)
def add_library(body: LibraryCreate, user: AdminUser, ctx: Ctx) -> dict:
    """Admin only: whoever names the folders decides which files the server reads and serves."""
    owner_id = user["id"]
    if body.owner_id is not None:
        try:
            owner_id = get_user(ctx.db, body.owner_id)["id"]
        except NotFound as exc:
            raise ApiError(422, f"owner_id: no user {body.owner_id}") from exc
    paths = []
    for raw in body.import_paths:
        p = Path(raw)  # never expanded: "~root" names another account's home, not a path
        if "\0" in raw or not p.is_absolute():
            raise ApiError(422, f"import_paths: {raw!r} is not an absolute path")
        try:
            if not p.is_dir():
                raise ApiError(422, f"import_paths: {raw!r} is not a directory on the server")
            paths.append(str(p.resolve(strict=True)))
        except OSError as exc:  # a name too long, a symlink loop, no permission
            raise ApiError(422, f"import_paths: {raw[:200]!r} cannot be used ({exc.strerror or exc})") from exc
    lib = create_library(ctx.db, owner_id, body.name.strip(), paths, body.exclusion_patterns)
    return {**lib, "assets": 0}


def owned_library(ctx, user: dict, library_id: UUID) -> dict:
    """The library if the caller owns it (admins: any). Someone else's library is a 404, not a 403,
    so ids cannot be probed."""
    return get_library(ctx.db, library_id, None if user["is_admin"] else user["id"])


@router.get("/api/libraries/{library_id}", response_model=LibraryOut)
def library(library_id: UUID, user: CurrentUser, ctx: Ctx) -> dict:
    lib = owned_library(ctx, user, library_id)
    counts = {str(row["id"]): row["assets"] for row in list_libraries(ctx.db, lib["owner_id"])}
    return {**lib, "assets": counts.get(str(lib["id"]), 0)}


@router.post("/api/libraries/{library_id}/scan", response_model=JobOut, status_code=202)
def scan_library(library_id: UUID, user: CurrentUser, ctx: Ctx, response: Response) -> dict:
    """Start indexing in the background; poll `GET /api/jobs/{id}`. A running scan is returned as is."""
    lib = owned_library(ctx, user, library_id)
    job, created = ctx.jobs.start_scan(lib, lib["owner_id"])
    response.headers["Location"] = f"/api/jobs/{job['id']}"
    if not created:
        response.status_code = 200
    return job


@router.get("/api/libraries/{library_id}/errors")
def library_errors(
    library_id: UUID,
    user: CurrentUser,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict:
    """Files the last scans could not index, with the reason (what `photosearch errors` prints)."""
    from photosearch.db.assets import list_ingest_errors

    lib = owned_library(ctx, user, library_id)
    return {"errors": list_ingest_errors(ctx.db, library_id=lib["id"], limit=limit)}
