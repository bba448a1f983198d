"""One asset: its details, thumbnails, the original file, and "more like this".

Every lookup is scoped to the caller: another user's asset is a 404, exactly like a missing one.
Admins get no special access to other people's photos here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from photosearch.api.deps import Ctx, CurrentUser
from photosearch.api.errors import ApiError
from photosearch.api.files import (
    cached_file_response,
    media_type,
    original_roots,
    safe_original_path,
    thumbnail_path,
)
from photosearch.api.schemas import AssetOut, SearchResponse, asset_out
from photosearch.db.asset_access import recent_assets, update_asset_flags
from photosearch.db.timeline import month_buckets, timeline_page

router = APIRouter(tags=["assets"])


def owned_asset(ctx, user: dict, asset_id: UUID, *, fresh: bool = False) -> dict:
    """The caller's live photo (from a read replica when configured: `AppContext.asset`), else 404."""
    asset = ctx.asset(asset_id, user, fresh=fresh)
    if asset is None:
        raise ApiError(404, f"no asset {asset_id}")
    return asset


def _cursor(raw: str | None, name: str) -> tuple[datetime, UUID] | None:
    """A timeline cursor is `<date taken ISO 8601>|<asset id>`, as `next_cursor` hands it out."""
    if raw is None:
        return None
    try:
        ts, aid = raw.split("|", 1)
        return datetime.fromisoformat(ts), UUID(aid)
    except ValueError as exc:
        raise ApiError(422, f"{name}: not a timeline cursor (expected the next_cursor of a previous page)") from exc


@router.get("/api/assets", response_model=SearchResponse)
def timeline(
    user: CurrentUser,
    ctx: Ctx,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=100, description="next_cursor of the previous page")] = None,
    before: Annotated[datetime | None, Query(description="Only photos taken before this (scrubber jumps)")] = None,
    newer_than: Annotated[
        str | None, Query(max_length=100, description="A cursor: the photos just newer than it (scrolling up)")
    ] = None,
) -> dict:
    """The caller's photos, newest first (archived, hidden and trashed ones left out). Page with
    `cursor` (keyset: constant time at any depth); `page` still works for small offsets."""
    after, newer = _cursor(cursor, "cursor"), _cursor(newer_than, "newer_than")
    if after or before or newer:
        rows = ctx.read(
            lambda db: timeline_page(db, user["id"], size + 1, cursor=after, before=before, newer_than=newer), user
        )
        more = len(rows) > size
        rows = rows[1:] if newer and more else rows[:size]
        last = rows[-1] if rows else None
        return {
            "items": [asset_out(r) for r in rows],
            "next_page": None,
            "next_cursor": _format_cursor(last) if last and (more or newer) else None,
            "has_newer": more if newer else None,
        }
    rows = ctx.read(lambda db: recent_assets(db, user["id"], size + 1, (page - 1) * size), user)
    shown = rows[:size]
    return {
        "items": [asset_out(r) for r in shown],
        "next_page": page + 1 if len(rows) > size else None,
        "next_cursor": _format_cursor(shown[-1]) if len(rows) > size else None,
    }


def _format_cursor(row: dict) -> str:
    return f"{row['local_date_time'].isoformat()}|{row['id']}"


@router.get("/api/timeline/buckets")
def buckets(user: CurrentUser, ctx: Ctx) -> dict:
    """Photos per month on the caller's timeline, newest first: what the scrubber draws. Jump to a
    month with `GET /api/assets?before=<first day of the next month>`."""
    rows = ctx.read_counts(lambda db: month_buckets(db, user["id"]))
    return {"buckets": rows, "total": sum(r["count"] for r in rows)}


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
    return asset_out(owned_asset(ctx, user, asset_id, fresh=True))


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
    name, roots = asset["original_file_name"], original_roots(asset)
    return cached_file_response(request, path, media_type(path), filename=name, roots=roots)


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
