"""What a search returns: a page of hits, each with its asset and EXIF fields, and the plan that found them."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from photosearch.search.plan import QueryPlan


class SearchHit(BaseModel):
    id: UUID
    owner_id: UUID
    owner_name: str | None = None
    library_id: UUID
    type: str
    original_path: str
    original_file_name: str
    file_size: int | None = None
    local_date_time: datetime
    file_created_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    width: int | None = None
    height: int | None = None
    is_favorite: bool = False
    is_archived: bool = False
    visibility: str = "timeline"
    is_offline: bool = False
    deleted_at: datetime | None = None
    thumbnail_path: str | None = None
    preview_path: str | None = None
    make: str | None = None
    model: str | None = None
    lens_model: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    rating: int | None = None
    description: str | None = None
    distance: float
    score: float


class SearchPage(BaseModel):
    items: list[SearchHit]
    page: int
    k: int
    next_page: int | None
    plan: QueryPlan


def score_of(metric: str, distance: float) -> float:
    """Higher is better: cosine similarity, inner product, or negative L2 distance."""
    if metric == "cosine":
        return 1.0 - distance
    return -distance
