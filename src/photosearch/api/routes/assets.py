"""One asset: its details, thumbnails, the original file, and "more like this".

Every lookup is scoped to the caller: another user's asset is a 404, exactly like a missing one.
Admins get no special access to other people's photos here.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from photosearch.api.deps import Ctx, CurrentUser
from photosearch.api.errors import ApiError
from photosearch.api.files import cached_file_response, media_type, safe_original_path, thumbnail_path
from photosearch.api.schemas import AssetOut, SearchResponse, asset_out
from photosearch.db.asset_access import asset_for_user, recent_assets, update_asset_flags

router = APIRouter(tags=["assets"])


def owned_asset(ctx, user: dict, asset_id: UUID) -> dict:
    asset = asset_for_user(ctx.db, asset_id, user["id"])
    if asset is None:
        raise ApiError(404, f"no asset {asset_id}")
    return asset


@router.get("/api/assets", response_model=SearchResponse)
def timeline(
    user: CurrentUser,
    ctx: Ctx,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict:
    """The caller's photos, newest first (archived and hidden ones left out)."""
    rows = recent_assets(ctx.db, user["id"], size + 1, (page - 1) * size)
    return {"items": [asset_out(r) for r in rows[:size]], "next_page": page + 1 if len(rows) > size else None}


@router.get("/api/assets/{asset_id}", response_model=AssetOut)
def get_asset(asset_id: UUID, user: CurrentUser, ctx: Ctx) -> dict:
    return asset_out(owned_asset(ctx, user, asset_id))


class AssetUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    is_favorite: bool | None = None
    is_archived: bool | None = None


@router.put("/api/assets/{asset_id}", response_model=AssetOut)
def update_asset(asset_id: UUID, body: AssetUpdate, user: CurrentUser, ctx: Ctx) -> dict:
    """Mark as favorite / archive (or undo). Only the owner can; the file on disk is never touched."""
    if not update_asset_flags(ctx.db, asset_id, user["id"], is_favorite=body.is_favorite, is_archived=body.is_archived):
        raise ApiError(404, f"no asset {asset_id}")
    return asset_out(owned_asset(ctx, user, asset_id))


@router.get("/api/assets/{asset_id}/thumbnail", response_class=Response)
def get_thumbnail(
    asset_id: UUID,
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
    size: Annotated[Literal["thumb", "preview"], Query(description="thumb ≈250 px, preview ≈1440 px")] = "thumb",
) -> Response:
    asset = owned_asset(ctx, user, asset_id)
    path = thumbnail_path(asset, size, ctx.settings.thumbs_dir)
    return cached_file_response(request, path, media_type(path))


@router.get("/api/assets/{asset_id}/original", response_class=Response)
def get_original(asset_id: UUID, request: Request, user: CurrentUser, ctx: Ctx) -> Response:
    """The file as stored, streamed; only if it still resolves inside the asset's library roots."""
    asset = owned_asset(ctx, user, asset_id)
    path = safe_original_path(asset)
    return cached_file_response(request, path, media_type(path), filename=asset["original_file_name"])


@router.get("/api/assets/{asset_id}/similar", response_model=SearchResponse)
def similar(
    asset_id: UUID,
    user: CurrentUser,
    ctx: Ctx,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict:
    """Assets that look like this one, nearest first (the asset itself excluded)."""
    from photosearch.api.routes.search import run_search

    owned_asset(ctx, user, asset_id)
    return run_search(ctx, user, {"like_asset_id": asset_id, "page": page, "size": size})
