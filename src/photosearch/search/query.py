"""`SearchQuery`: what to look for (text, image, an asset, a raw vector) and which photos may match.

One validated model shared by the CLI, the API and the web UI. Invalid input raises `SearchError`
(a ValueError; the API maps it to 400) or pydantic's ValidationError (422).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_K = 1000
MAX_DEPTH = 10_000  # page * k: deeper pages would need unbounded scans
# Date bounds a filter accepts: a day's margin inside Python's years 1..9999 either way, so converting a bound
# between time zones (up to a day apart, plus the in-memory copy's widening) can never leave datetime's range.
DATE_MIN, DATE_MAX = datetime(2, 1, 1), datetime(9998, 12, 31, 23, 59, 59)
DATE_FIELDS = ("taken_after", "taken_before", "created_after", "created_before", "updated_after", "updated_before")

Distance = Literal["cosine", "l2", "ip"]
Order = Literal["relevance", "date", "date_asc"]
Strategy = Literal["auto", "exact", "quantized", "approximate", "memory"]
Visibility = Literal["timeline", "hidden", "locked"]


class SearchError(ValueError):
    """A query that cannot run as asked; the message says why."""


# The fields that narrow which photos match (the rest say what to look for, or shape the page).
FILTER_FIELDS = frozenset(
    "owners exclude_owners library_ids asset_type taken_after taken_before created_after created_before updated_after"
    " updated_before is_favorite is_archived visibility with_deleted trashed_only is_offline file_name_contains make"
    " model lens city state country rating_min rating has_gps bbox near ocr_text".split()
)


class SearchQuery(BaseModel):
    """A kNN query plus filters. Exactly one of text / image_* / like_asset_id / vector is required, unless
    ocr_text is given: alone, it is a search by the text in photos."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # -- what to look for --
    text: str | None = Field(default=None, max_length=1000)
    negative_text: str | None = Field(default=None, max_length=1000, description="Steer away from this text")
    add_text: list[str] | None = Field(
        default=None,
        max_length=8,
        description="Words added to the query's vector (rclip-style arithmetic, with any query: an image plus"
        ' "at night"); `2:word` weighs a term. `text` itself may be arithmetic: \'"beach" + "sunset" - "people"\'',
    )
    subtract_text: list[str] | None = Field(default=None, max_length=8, description="Words taken away, as add_text")
    image_path: Path | None = None
    image_bytes: bytes | None = Field(default=None, repr=False)
    image_embedding: list[float] | None = Field(default=None, repr=False, description="Precomputed image vector")
    like_asset_id: UUID | None = Field(default=None, description="More like this asset (itself excluded)")
    vector: list[float] | None = Field(default=None, repr=False)

    # -- whose photos --
    owners: list[str] | None = Field(default=None, description="User ids, emails or names (admin: any)")
    exclude_owners: list[str] | None = None
    library_ids: list[UUID] | None = None

    # -- asset filters --
    asset_type: Literal["IMAGE", "VIDEO"] | None = None
    taken_after: datetime | None = None
    taken_before: datetime | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    is_favorite: bool | None = None
    is_archived: bool | None = None
    visibility: list[Visibility] | None = Field(default_factory=lambda: ["timeline"])
    with_deleted: bool = False
    trashed_only: bool = False
    is_offline: bool | None = None
    file_name_contains: str | None = Field(default=None, min_length=1, max_length=255)
    ocr_text: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="Text seen in the photo (read by OCR): all its words, or the text as a substring (CJK)."
        " Alone, it ranks photos by how well their text matches.",
    )

    # -- EXIF filters --
    make: str | None = Field(default=None, max_length=255)
    model: str | None = Field(default=None, max_length=255)
    lens: str | None = Field(default=None, max_length=255)
    city: str | None = Field(default=None, max_length=255)
    state: str | None = Field(default=None, max_length=255)
    country: str | None = Field(default=None, max_length=255)
    rating_min: int | None = Field(default=None, ge=-1, le=5)
    rating: int | None = Field(default=None, ge=-1, le=5)
    has_gps: bool | None = None
    bbox: tuple[float, float, float, float] | None = Field(default=None, description="south, west, north, east")
    near: tuple[float, float, float] | None = Field(default=None, description="latitude, longitude, radius km")

    # -- result shape --
    k: int = Field(default=50, ge=1, le=MAX_K, alias="size", description="Results per page")
    page: int = Field(default=1, ge=1)
    order: Order = "relevance"
    understand: bool = Field(
        default=False,
        description="Read the text query as one search box (search/hybrid.py): places and cameras it names filter"
        ' ("dog in Kyoto" = city Kyoto), its words are also looked up as text in the photo, file name, description'
        ' and folder (those photos first), "phrases" must appear, -word / NOT word rules out, a OR b',
    )
    relevant_only: bool = Field(
        default=False,
        description="Only the photos that stand out for this query (an adaptive cutoff, search/relevance.py), all"
        " of them across pages; with order date / date_asc, sorted by date taken",
    )
    max_distance: float | None = Field(default=None, ge=0)
    distance: Distance = "cosine"

    # -- planner overrides (tests, benchmarks, debugging) --
    strategy: Strategy = "auto"
    ef_search: int | None = Field(default=None, ge=1, le=1000)

    @field_validator("bbox", "near")
    @classmethod
    def _to_centimetres(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        """Coordinates to 1e-7 degrees (~1 cm): finer ones mean nothing, and a denormal one makes PostgreSQL's
        radians() underflow into an error."""
        return None if value is None else tuple(round(v, 7) for v in value)

    @model_validator(mode="after")
    def _check(self) -> SearchQuery:
        sources = [
            self.text is not None and self.text.strip() != "",
            self.image_path is not None or self.image_bytes is not None or self.image_embedding is not None,
            self.like_asset_id is not None,
            self.vector is not None,
        ]
        if sum(sources) > 1 or (sum(sources) == 0 and not (self.ocr_text or "").strip()):
            raise SearchError("give exactly one of: text, an image, like_asset_id, or a vector")
        if self.negative_text is not None and self.text is None:
            raise SearchError("negative_text needs a text query")
        if (self.add_text or self.subtract_text) and sum(sources) == 0:
            raise SearchError("add_text and subtract_text need a query (text, an image, like_asset_id or a vector)")
        for term in [*(self.add_text or []), *(self.subtract_text or [])]:
            if not term.strip() or len(term) > 1000 or "\x00" in term:
                raise SearchError("add_text and subtract_text need words (at most 1,000 characters, no NUL)")
        if self.text is not None:
            from photosearch.search.arithmetic import parse

            try:
                parse(self.text)
            except ValueError as exc:
                raise SearchError(str(exc)) from exc
        if self.page * self.k > MAX_DEPTH:
            raise SearchError(f"page * k must be at most {MAX_DEPTH}; narrow the query with filters instead")
        for name in DATE_FIELDS:
            value = getattr(self, name)
            if value is not None and not DATE_MIN <= value.replace(tzinfo=None) <= DATE_MAX:
                raise SearchError(f"{name} must lie between {DATE_MIN.date()} and {DATE_MAX.date()}")
        if self.with_deleted and self.trashed_only:
            raise SearchError("with_deleted and trashed_only are mutually exclusive")
        if self.bbox is not None:
            south, west, north, east = self.bbox
            if not (-90 <= south <= north <= 90) or not (-180 <= west <= 180 and -180 <= east <= 180):
                raise SearchError("bbox must be south, west, north, east with -90 <= south <= north <= 90")
        if self.near is not None:
            lat, lon, km = self.near
            if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 < km <= 20_040):
                raise SearchError("near must be latitude, longitude, radius_km with a radius of 0–20040 km")
        for name in (
            "text",
            "negative_text",
            "file_name_contains",
            "ocr_text",
            "make",
            "model",
            "lens",
            "city",
            "state",
            "country",
        ):
            value = getattr(self, name)
            if value is not None and "\x00" in value:
                raise SearchError(f"{name} must not contain NUL characters")
        return self

    @property
    def given_filters(self) -> int:
        """How many filters the caller gave. The defaults (on the timeline, not in the trash) are not counted:
        `--explain` must not report filters nobody asked for."""
        return sum(
            getattr(self, name) != field.get_default(call_default_factory=True)
            for name, field in type(self).model_fields.items()
            if name in FILTER_FIELDS
        )

    @property
    def text_only(self) -> bool:
        """Only text in photos to look for: ranked by the text match, not by CLIP."""
        return self.ocr_text is not None and not any(
            (self.text, self.image_path, self.image_bytes, self.image_embedding, self.like_asset_id, self.vector)
        )

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.k

    @property
    def depth(self) -> int:
        """Rows the ranking must get right to serve this page."""
        return self.page * self.k
