"""The pieces the table of filters (search/filters.py) is built from: what a filter is compiled from
(FilterInput), what preparing one for the in-memory copy needs (Preparation), and the SQL conditions and
preparations its entries name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple, Protocol
from uuid import UUID

import numpy as np

from photosearch.search.held_checks import EARTH_KM, KM_PER_DEGREE
from photosearch.search.query import SearchQuery

Join = Literal["", "assets", "exif"]  # the table a condition needs joined to smart_search (search_ivf has exif's)
Condition = tuple[str, tuple[Any, ...], Join]  # (SQL template with {} per value, the values, the join)


class FilterInput(NamedTuple):
    """What the conditions are compiled from: the query, the owners in scope (None: every owner) and the asset a
    "more like this" search leaves out."""

    query: SearchQuery
    owner_ids: Sequence[UUID] | None
    exclude_asset: UUID | None


class Preparation(Protocol):
    """What turning a query into the in-memory filter needs from the search (SearchService._held)."""

    flags: bool  # the copy's favourite/trash/timeline/archived/offline flags are current
    added: bool  # the copy holds the times photos were added
    scope: Sequence[UUID] | None

    def text_hash(self, value: str) -> int: ...  # a place or camera as the copy holds it

    def name_rows(self, value: str) -> np.ndarray | None: ...  # the rows a file-name filter matches, None: too many


Prepared = tuple[dict[str, Any], bool]  # (HeldFilter.of keyword arguments, whether the copy checks the filter)


def like_pattern(text: str) -> str:
    """`contains` pattern for ILIKE with the wildcards in user text escaped (backslash is the escape)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def where_range(column: str, join: Join, after: str, before: str) -> Callable[[FilterInput], list[Condition]]:
    def where(i: FilterInput) -> list[Condition]:
        lo, hi = getattr(i.query, after), getattr(i.query, before)
        return ([(f"{column} >= {{}}", (lo,), join)] if lo is not None else []) + (
            [(f"{column} < {{}}", (hi,), join)] if hi is not None else []
        )

    return where


def where_equals(column: str, name: str) -> Callable[[FilterInput], list[Condition]]:
    def where(i: FilterInput) -> list[Condition]:
        value = getattr(i.query, name)
        return [] if value is None else [(f"s.{column} = {{}}", (value,), "")]

    return where


def prepare_flag(key: str, name: str) -> Callable[[SearchQuery, Preparation], Prepared]:
    """A flag the copy checks only while its flags are current (they are re-read in the background)."""

    def prepare(q: SearchQuery, p: Preparation) -> Prepared:
        value = getattr(q, name)
        if key in ("archived", "offline"):
            return {"marks": {key: value if p.flags else None}}, value is None or p.flags
        return {key: value if p.flags else None}, value is None or p.flags

    return prepare


def where_trash(i: FilterInput) -> list[Condition]:
    """trashed_only wins over with_deleted (the query refuses both at once)."""
    if i.query.trashed_only:
        return [("s.deleted_at IS NOT NULL", (), "")]
    return [] if i.query.with_deleted else [("s.deleted_at IS NULL", (), "")]


def prepare_live(q: SearchQuery, p: Preparation) -> Prepared:
    """The trash as the copy checks it: the same precedence as where_trash. Without current flags the default (not in
    the trash, which nearly every photo passes) is left to PostgreSQL; trashed_only is then not held."""
    if not p.flags:
        return {}, not q.trashed_only
    return {"live": False if q.trashed_only else None if q.with_deleted else True}, True


def prepare_visibility(q: SearchQuery, p: Preparation) -> Prepared:
    if q.visibility is None:
        return {}, True
    if q.visibility == ["timeline"]:
        return {"timeline": True if p.flags else None}, True
    return {}, False  # hidden or locked photos: not held


def where_rating(i: FilterInput) -> list[Condition]:
    q = i.query
    found: list[Condition] = [] if q.rating_min is None else [("e.rating >= {}", (q.rating_min,), "exif")]
    return found + ([] if q.rating is None else [("e.rating = {}", (q.rating,), "exif")])


def where_gps(i: FilterInput) -> list[Condition]:
    if i.query.has_gps is True:
        return [("e.latitude IS NOT NULL AND e.longitude IS NOT NULL", (), "exif")]
    if i.query.has_gps is False:
        return [("(e.latitude IS NULL OR e.longitude IS NULL)", (), "exif")]
    return []


def where_bbox(i: FilterInput) -> list[Condition]:
    if i.query.bbox is None:
        return []
    south, west, north, east = i.query.bbox
    found: list[Condition] = [("e.latitude BETWEEN {} AND {}", (south, north), "exif")]
    if west <= east:
        return [*found, ("e.longitude BETWEEN {} AND {}", (west, east), "exif")]
    return [*found, ("(e.longitude >= {} OR e.longitude <= {})", (west, east), "exif")]  # across the antimeridian


HAVERSINE = (
    "2 * {} * asin(sqrt(power(sin(radians(e.latitude - {}) / 2), 2) + cos(radians({})) * cos(radians("
    "e.latitude)) * power(sin(radians(e.longitude - {}) / 2), 2))) <= {}"
)


def where_near(i: FilterInput) -> list[Condition]:
    if i.query.near is None:
        return []
    lat, lon, km = i.query.near
    dlat = km / KM_PER_DEGREE  # a latitude band first, so the GPS index narrows the haversine test
    return [
        ("e.latitude BETWEEN {} AND {}", (lat - dlat, lat + dlat), "exif"),
        (HAVERSINE, (EARTH_KM, lat, lat, lon, km), "exif"),
    ]


def where_ocr(i: FilterInput) -> list[Condition]:
    if not i.query.ocr_text:
        return []
    from photosearch.db.ocr import text_condition, text_values

    return [(text_condition(), tuple(text_values(i.query.ocr_text)), "")]


def prepare_file_name(q: SearchQuery, p: Preparation) -> Prepared:
    if q.file_name_contains is None:
        return {}, True
    names = p.name_rows(q.file_name_contains)
    return {"names": names}, names is not None


def prepare_created(q: SearchQuery, p: Preparation) -> Prepared:
    bounds = (q.created_after, q.created_before)
    if not p.added:
        return {}, bounds == (None, None)
    return {"created": bounds}, True
