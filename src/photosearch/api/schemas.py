"""Response and request models of the REST API (what /docs shows). Field names follow the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, field_validator


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL (\\x00) characters")
    if isinstance(value, list):
        for item in value:
            _no_nul(item)
    return value


class RequestModel(BaseModel):
    """A request body: no text in it may hold a NUL character (PostgreSQL text cannot store or compare one)."""

    @field_validator("*", mode="after")
    @classmethod
    def _text_without_nul(cls, value: Any) -> Any:
        return _no_nul(value)


class UserOut(BaseModel):
    id: UUID
    name: str
    email: str
    is_admin: bool
    libraries: int | None = None
    assets: int | None = None


class LibraryOut(BaseModel):
    id: UUID
    owner_id: UUID
    name: str
    import_paths: list[str]
    exclusion_patterns: list[str]
    assets: int | None = None
    created_at: datetime
    refreshed_at: datetime | None = None


class LibraryCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    import_paths: list[str] = Field(min_length=1, max_length=50)
    exclusion_patterns: list[str] = Field(default_factory=list, max_length=100)
    owner_id: UUID | None = Field(default=None, description="Admins may create a library for another user.")


class JobOut(BaseModel):
    id: str
    type: str
    library_id: str
    status: str = Field(description="queued | running | succeeded | failed | cancelled")
    progress: dict[str, Any]
    summary: dict[str, Any] | None
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None


class ExifOut(BaseModel):
    make: str | None = None
    model: str | None = None
    lens_model: str | None = None
    exposure_time: str | None = None
    f_number: float | None = None
    focal_length: float | None = None
    iso: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    time_zone: str | None = None
    date_time_original: datetime | None = None
    description: str | None = None
    rating: int | None = None


EXIF_FIELDS = tuple(ExifOut.model_fields)


class AssetOut(BaseModel):
    id: UUID
    library_id: UUID
    type: str = "IMAGE"
    original_file_name: str
    original_path: str
    file_size: int | None = None
    file_created_at: datetime | None = None
    local_date_time: datetime | None = None
    width: int | None = None
    height: int | None = None
    is_favorite: bool = False
    is_archived: bool = False
    is_offline: bool = False
    deleted_at: datetime | None = Field(default=None, description="When it went to the trash")
    exif: ExifOut
    distance: float | None = Field(default=None, description="Cosine distance to the query (search results)")
    thumbnail_url: str
    preview_url: str
    original_url: str


def asset_out(row: dict[str, Any]) -> dict[str, Any]:
    """Shape an asset row (asset columns + exif columns, flat) into the API's nested form."""
    exif = row.get("exif") if isinstance(row.get("exif"), dict) else {k: row.get(k) for k in EXIF_FIELDS}
    aid = row.get("id") or row.get("asset_id")
    out = {k: row.get(k) for k in AssetOut.model_fields if k in row and k not in ("exif", "id")}
    out.update(
        id=aid,
        exif=exif,
        thumbnail_url=f"/api/assets/{aid}/thumbnail?size=thumb",
        preview_url=f"/api/assets/{aid}/thumbnail?size=preview",
        original_url=f"/api/assets/{aid}/original",
    )
    if out.get("distance") is None and row.get("score") is not None and "distance" not in row:
        out["distance"] = 1.0 - float(row["score"])
    return out


class SearchPlanOut(BaseModel):
    strategy: str | None = None
    reason: str | None = None
    estimated_matches: float | None = None


class Understood(BaseModel):
    text: str = Field(description="The part of the query, as typed")
    kind: str = Field(description="place, camera, text, description, file name, folder, not, or")
    field: str | None = Field(default=None, description="The search filter it set (city, model, ocr_text...)")
    value: str | None = None
    matches: int | None = Field(default=None, description="Photos whose text matched it (they come first)")


class SearchResponse(BaseModel):
    items: list[AssetOut]
    next_page: int | None = None
    plan: dict[str, Any] | None = None
    understood: list[Understood] | None = Field(
        default=None,
        description="Text search: what each part of the query became — a filter (`field` = `value`: a place, a"
        " camera, a phrase that must appear) or text found in `matches` photos (`kind`: text, description, file"
        " name, folder), a NOT (`kind` not) or OR alternatives (`kind` or)",
    )
    total_indexed: int | None = Field(
        default=None, description="How many of the caller's assets are indexed (explains empty results)."
    )
    next_cursor: str | None = Field(default=None, description="Timeline: pass as `cursor` for the next page")
    has_newer: bool | None = Field(default=None, description="Timeline with `newer_than`: more newer photos exist")
    test_model: bool = Field(
        default=False,
        description="The active model is a test model with random weights (the bundled fixture): rankings are"
        " meaningless; show a note.",
    )
