"""Smart search (text), search by an uploaded image, and duplicates — thin shells over
`photosearch.search.SearchService`, always scoped to the caller."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, File, Form, Query, UploadFile
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from photosearch.api.context import AppContext
from photosearch.api.deps import Ctx, CurrentUser
from photosearch.api.errors import ApiError, error_text
from photosearch.api.schemas import SearchResponse, asset_out
from photosearch.api.uploads import decode_query_upload
from photosearch.db.asset_access import filter_options, indexed_counts, photo_places
from photosearch.models.registry import is_test_model

router = APIRouter(tags=["search"])

_Text = Annotated[str | None, Field(default=None, max_length=200)]


class SearchFilters(BaseModel):
    """Metadata filters of the search service, combined with AND (the caller's own photos only).
    Unknown fields are refused rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")

    taken_after: datetime | None = Field(default=None, description="Taken at or after (ISO 8601)")
    taken_before: datetime | None = Field(default=None, description="Taken before (ISO 8601)")
    created_after: datetime | None = Field(default=None, description="Added to the index at or after")
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    make: _Text = None
    model: _Text = None
    lens_model: _Text = None
    country: _Text = None
    state: _Text = None
    city: _Text = None
    file_name_contains: _Text = None
    add_text: list[Annotated[str, Field(min_length=1, max_length=1000)]] | None = Field(
        default=None,
        max_length=8,
        description='Words added to the query vector (an image plus "at night"); "2:word" weighs a term. The query'
        ' itself may be arithmetic: \'"beach" + "sunset" - "people"\'',
    )
    subtract_text: list[Annotated[str, Field(min_length=1, max_length=1000)]] | None = Field(
        default=None, max_length=8, description="Words taken away from the query vector, as add_text"
    )
    ocr_text: _Text = Field(
        default=None,
        description="Text seen in the photo (read by OCR at ingest): every word, or the text as a substring."
        " Without a query, photos are ranked by how well their text matches",
    )
    is_favorite: bool | None = None
    is_archived: bool | None = Field(
        default=False, description="false (default) hides archived photos, true shows only them, null shows both"
    )
    is_offline: bool | None = None
    visibility: list[Literal["timeline", "hidden", "locked"]] | None = Field(default=None, max_length=3)
    with_deleted: bool = False
    trashed_only: bool = False
    rating_min: int | None = Field(default=None, ge=-1, le=5)
    rating: int | None = Field(default=None, ge=-1, le=5, description="Exactly this rating")
    has_gps: bool | None = None
    bbox: tuple[float, float, float, float] | None = Field(default=None, description="south, west, north, east")
    near: tuple[float, float, float] | None = Field(default=None, description="latitude, longitude, radius km")
    library_ids: list[UUID] | None = Field(default=None, max_length=100)
    type: Literal["IMAGE", "VIDEO"] | None = None
    order: Literal["relevance", "date", "date_asc"] = Field(
        default="relevance",
        description="date / date_asc: by date taken, newest / oldest first (with relevant_only: every relevant"
        " photo; otherwise the page's hits)",
    )
    understand: bool = Field(
        default=True,
        description="Read the query as one search box (on by default; false: CLIP only). Places and cameras of the"
        ' caller\'s photos it names become filters ("dog in Kyoto": city Kyoto); its words are also looked up as text'
        ' in the photo (OCR), description, file name and folder, and those photos come first; "a phrase" must'
        " appear as text; -word / NOT word rules out; a OR b finds either. `understood` in the response says what"
        " each part became",
    )
    relevant_only: bool = Field(
        default=False,
        description="Only the photos that stand out for the query: an adaptive cutoff from its own scores (the"
        " largest drop above the library's background), complete across pages",
    )
    max_distance: float | None = Field(default=None, ge=0, le=2, description="Drop hits farther than this")


class PageParams(BaseModel):
    page: int = Field(default=1, ge=1, le=10_000)
    size: int = Field(default=50, ge=1, le=200)


class SmartSearchRequest(SearchFilters, PageParams):
    query: str | None = Field(
        default=None, max_length=1000, description="What to look for, in words (may be left out with ocr_text)"
    )
    negative_text: str | None = Field(default=None, max_length=1000, description="Steer away from this")


# API field name -> SearchQuery field name, where they differ.
_RENAMES = {"lens_model": "lens", "type": "asset_type", "size": "k"}


def run_search(ctx: AppContext, user: dict, fields: dict[str, Any]) -> dict[str, Any]:
    """Build a SearchQuery from API fields, run it for `user`, shape the page for JSON.

    `owners` is always the caller: the search service lets admins search everyone, the API does not
    (an admin's web UI shows the admin's own photos, as in immich)."""
    from photosearch.search import SearchQuery

    args = {_RENAMES.get(k, k): v for k, v in fields.items() if v is not None}
    args["owners"] = [str(user["id"])]
    try:
        query = SearchQuery(**args)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        raise ApiError(422, f"{loc}: {error_text(err)}" if loc else error_text(err)) from exc
    result = ctx.search_service().search(query, user)
    items = [asset_out(_row(hit)) for hit in result.items]
    plan = getattr(result, "plan", None)
    out: dict[str, Any] = {
        "items": items,
        "next_page": getattr(result, "next_page", None),
        "plan": _plan_for(user, _row(plan)) if plan is not None else None,
    }
    understood = getattr(result, "understood", None)
    if understood is not None:
        out["understood"] = [u.model_dump() for u in understood]
    if not items:
        out["total_indexed"] = indexed_counts(ctx.db, user["id"])["embedded"]
    if is_test_model(ctx.settings):
        out["test_model"] = True
    return out


# What a plan may show someone who is not an administrator: its estimates, reasons and list counts describe the
# whole installation (other users' photos included), so they are an administrator's view only.
_PLAN_FOR_USERS = ("strategy", "filters", "rows", "timings_ms")


def _plan_for(user: dict, plan: dict[str, Any]) -> dict[str, Any]:
    if user.get("is_admin"):
        return plan
    return {k: plan[k] for k in _PLAN_FOR_USERS if k in plan}


def _row(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return dict(vars(obj))


@router.post("/api/search/smart", response_model=SearchResponse)
def smart_search(body: SmartSearchRequest, user: CurrentUser, ctx: Ctx) -> dict:
    """Text search with filters. An empty page carries `total_indexed` to tell "nothing indexed yet"
    apart from "no matches"."""
    fields = body.model_dump(exclude={"query"})
    return run_search(ctx, user, {**fields, "text": body.query})


class SimilarSearchRequest(SearchFilters, PageParams):
    asset_id: UUID = Field(description="One of the caller's photos: find the ones that look like it")


@router.post("/api/search/similar", response_model=SearchResponse)
def similar_search(body: SimilarSearchRequest, user: CurrentUser, ctx: Ctx) -> dict:
    """ "More like this" with filters: the photo itself is left out."""
    from photosearch.api.routes.assets import owned_asset

    owned_asset(ctx, user, body.asset_id)
    fields = body.model_dump(exclude={"asset_id"})
    return run_search(ctx, user, {**fields, "like_asset_id": body.asset_id})


@router.post("/api/search/image", response_model=SearchResponse)
async def image_search(
    user: CurrentUser,
    ctx: Ctx,
    file: Annotated[UploadFile, File(description="The query image (sniffed from its bytes)")],
    filters: Annotated[str | None, Form(max_length=10_000, description="SearchFilters as JSON")] = None,
    page: Annotated[int, Form(ge=1, le=10_000)] = 1,
    size: Annotated[int, Form(ge=1, le=200)] = 50,
) -> dict:
    """Find photos that look like an uploaded image."""
    from starlette.concurrency import run_in_threadpool

    try:
        parsed = SearchFilters.model_validate(json.loads(filters)) if filters else SearchFilters()
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        raise ApiError(422, f"filters.{loc}: {error_text(err)}" if loc else f"filters: {error_text(err)}") from exc
    except (ValueError, RecursionError) as exc:  # json.JSONDecodeError, or a nesting too deep to parse
        raise ApiError(422, "filters: not valid JSON (expected an object of search filters)") from exc

    def work() -> dict:
        model = ctx.model()
        img = decode_query_upload(file, ctx.max_upload_bytes, model, int(ctx.settings.query_image_max_mp * 1e6))
        embedding = model.encode_images([img])[0]
        return run_search(
            ctx, user, {**parsed.model_dump(), "image_embedding": embedding.tolist(), "page": page, "size": size}
        )

    return await run_in_threadpool(work)


@router.get("/api/search/suggestions")
def suggestions(user: CurrentUser, ctx: Ctx) -> dict:
    """Values for the filter panel: the caller's cameras, lenses and places, and the cities their
    geotagged photos were taken in with a point for each (the web UI's "near place" filter)."""
    places = photo_places(ctx.db, user["id"])
    return {
        **filter_options(ctx.db, user["id"]),
        "places": [{"name": p["name"], "lat": float(p["lat"]), "lon": float(p["lon"])} for p in places],
    }


@router.get("/api/duplicates")
def duplicates(
    user: CurrentUser,
    ctx: Ctx,
    max_distance: Annotated[float, Query(ge=0, le=0.5, description="Cosine distance; immich uses 0.01")] = 0.01,
) -> dict:
    """Groups of the caller's own assets that are near-identical (every two within `max_distance`; largest groups
    first), each with `keep`: the suggested asset to keep (most pixels, largest file, most metadata, oldest)."""
    from photosearch.search.duplicates import find_duplicates

    groups = find_duplicates(ctx.db, user, max_distance=max_distance, owner_ids=[user["id"]])
    return {
        "groups": [
            {"max_distance": g.max_distance, "keep": g.keep, "assets": [asset_out(_row(a)) for a in g.assets]}
            for g in groups
        ]
    }


class ResolveDuplicates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep: UUID = Field(description="The asset to keep")
    trash: list[UUID] = Field(min_length=1, max_length=1000, description="The group's other assets: to the trash")


@router.post("/api/duplicates/resolve")
def resolve_duplicates(body: ResolveDuplicates, user: CurrentUser, ctx: Ctx) -> dict:
    """Resolve a group of duplicates: keep one asset, move the others to the trash (restorable; files are never
    touched). Only the caller's own live assets are trashed; `trashed` says how many."""
    from photosearch.search.duplicates import resolve_group
    from photosearch.search.query import SearchError

    try:
        trashed = resolve_group(ctx.db, user, body.keep, body.trash)
    except SearchError as exc:
        raise ApiError(404 if "no photo" in str(exc) else 400, str(exc)) from exc
    return {"kept": body.keep, "trashed": trashed}
