"""The table of search filters: the place to start when adding or changing one.

Each entry says, for one filter, which SearchQuery fields give it, its SQL condition(s) and the table they need
joined, whether a PostgreSQL index serves it, and, when the server's in-memory copy of the lists
(search/resident.py) holds it: the source columns the copy reads (which the triggers must watch, or the copy
goes stale silently), the counter their change bumps, what the loader reads for it, and how a query's value
becomes the in-memory filter (HeldFilter). Everything else is derived from this list:

- the SQL WHERE clause (db.search.compile_filters walks FILTERS in order: the parameters are numbered in it);
- the in-memory filter of a query and whether it is every filter (prepare_held), the query→column mapping
  included (`lens` is the EXIF column `lens_model`);
- which filters no PostgreSQL index serves (unindexed);
- the loader's columns (db.resident: HELD_TEXT, HELD_ATTRIBUTES, HELD_COLUMNS, FLAG_ATTRIBUTES);
- the columns the triggers must watch (WATCHED), which tests/search/test_filter_table.py compares with the
  triggers' definitions in the database.

A new filter the copy holds: an entry here, a migration adding its column to search_ivf (and to the trigger
that watches the held columns), a test. The numpy test and the estimate of a held condition are HeldFilter's
(search/resident.py), keyed by the names `prepare` fills in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol
from uuid import UUID

import numpy as np

from photosearch.search import held_checks as hc
from photosearch.search.held_checks import EARTH_KM, KM_PER_DEGREE
from photosearch.search.query import SearchQuery

Join = Literal["", "assets", "exif"]  # the table a condition needs joined to smart_search (search_ivf has exif's)
Counter = Literal["search_version", "flags_version"]
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


def _no_index(f: Any, held: Any, spans: Any) -> list:
    return []


@dataclass(frozen=True)
class Memory:
    """How the in-memory copy holds a filter. `watch`: the source columns ("search_ivf.x" or "assets.x") the copy
    reads for it: a change to one must bump `counter` (migrations 042-046). `prepare`: the query's value as the
    copy checks it (HeldFilter.of's keywords), and whether the copy checks it at all. `checks`: its numpy tests on
    the copy's columns, `share`: its share of the rows (the estimate), `index`: the rows an index of the copy finds
    for it (search/held_checks.py). `holds`: what the loader reads for it beyond its fixed fields (owner, date,
    flags, file names, added times): ("text", column) a hashed EXIF text, ("attribute", name, SQL expression,
    dtype) a byte, ("column", name, SQL expression, record fields, dtype)."""

    watch: tuple[str, ...]
    prepare: Callable[[SearchQuery, Preparation], Prepared]
    checks: Callable[..., list[hc.Check]]
    share: Callable[..., list[float]]
    counter: Counter = "search_version"
    holds: tuple[tuple[Any, ...], ...] = ()
    index: Callable[..., list[hc.Index]] = _no_index


@dataclass(frozen=True)
class Filter:
    """One filter. `where` gives its conditions (none when the query does not ask for it); `indexed`: a
    PostgreSQL index finds its rows (without one its exact path reads every photo); `memory`: None when the copy
    does not hold it (PostgreSQL applies it to the copy's candidates)."""

    name: str
    fields: tuple[str, ...]
    where: Callable[[FilterInput], list[Condition]]
    indexed: bool = True
    memory: Memory | None = None
    notes: str = field(default="", compare=False)

    def given(self, q: SearchQuery) -> bool:
        return any(getattr(q, name) not in (None, []) for name in self.fields)


def like_pattern(text: str) -> str:
    """`contains` pattern for ILIKE with the wildcards in user text escaped (backslash is the escape)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _range(column: str, join: Join, after: str, before: str) -> Callable[[FilterInput], list[Condition]]:
    def where(i: FilterInput) -> list[Condition]:
        lo, hi = getattr(i.query, after), getattr(i.query, before)
        return ([(f"{column} >= {{}}", (lo,), join)] if lo is not None else []) + (
            [(f"{column} < {{}}", (hi,), join)] if hi is not None else []
        )

    return where


def _equals(column: str, name: str) -> Callable[[FilterInput], list[Condition]]:
    def where(i: FilterInput) -> list[Condition]:
        value = getattr(i.query, name)
        return [] if value is None else [(f"s.{column} = {{}}", (value,), "")]

    return where


def _flag(key: str, name: str) -> Callable[[SearchQuery, Preparation], Prepared]:
    """A flag the copy checks only while its flags are current (they are re-read in the background)."""

    def prepare(q: SearchQuery, p: Preparation) -> Prepared:
        value = getattr(q, name)
        if key in ("archived", "offline"):
            return {"marks": {key: value if p.flags else None}}, value is None or p.flags
        return {key: value if p.flags else None}, value is None or p.flags

    return prepare


def _trash(i: FilterInput) -> list[Condition]:
    """trashed_only wins over with_deleted (the query refuses both at once)."""
    if i.query.trashed_only:
        return [("s.deleted_at IS NOT NULL", (), "")]
    return [] if i.query.with_deleted else [("s.deleted_at IS NULL", (), "")]


def _live(q: SearchQuery, p: Preparation) -> Prepared:
    """The trash as the copy checks it: the same precedence as _trash. Without current flags the default (not in
    the trash, which nearly every photo passes) is left to PostgreSQL; trashed_only is then not held."""
    if not p.flags:
        return {}, not q.trashed_only
    return {"live": False if q.trashed_only else None if q.with_deleted else True}, True


def _visibility(q: SearchQuery, p: Preparation) -> Prepared:
    if q.visibility is None:
        return {}, True
    if q.visibility == ["timeline"]:
        return {"timeline": True if p.flags else None}, True
    return {}, False  # hidden or locked photos: not held


def _exif_text(name: str, column: str) -> Filter:
    """A camera or place filter: case-insensitive (people type names as they like), PostgreSQL lowers both sides;
    the copy holds the lower-cased value's hash (db.resident.text_hash)."""

    def where(i: FilterInput) -> list[Condition]:
        value = getattr(i.query, name)
        return [] if value is None else [(f"lower(e.{column}) = lower({{}})", (value,), "exif")]

    def prepare(q: SearchQuery, p: Preparation) -> Prepared:
        value = getattr(q, name)
        return ({} if value is None else {"texts": {column: p.text_hash(value)}}), True

    memory = Memory(
        (f"search_ivf.{column}",), prepare, hc.text_checks(column), hc.text_share(column), holds=(("text", column),)
    )
    return Filter(name, (name,), where, memory=memory)


def _rating(i: FilterInput) -> list[Condition]:
    q = i.query
    found: list[Condition] = [] if q.rating_min is None else [("e.rating >= {}", (q.rating_min,), "exif")]
    return found + ([] if q.rating is None else [("e.rating = {}", (q.rating,), "exif")])


def _gps(i: FilterInput) -> list[Condition]:
    if i.query.has_gps is True:
        return [("e.latitude IS NOT NULL AND e.longitude IS NOT NULL", (), "exif")]
    if i.query.has_gps is False:
        return [("(e.latitude IS NULL OR e.longitude IS NULL)", (), "exif")]
    return []


def _bbox(i: FilterInput) -> list[Condition]:
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


def _near(i: FilterInput) -> list[Condition]:
    if i.query.near is None:
        return []
    lat, lon, km = i.query.near
    dlat = km / KM_PER_DEGREE  # a latitude band first, so the GPS index narrows the haversine test
    return [
        ("e.latitude BETWEEN {} AND {}", (lat - dlat, lat + dlat), "exif"),
        (HAVERSINE, (EARTH_KM, lat, lat, lon, km), "exif"),
    ]


def _ocr(i: FilterInput) -> list[Condition]:
    if not i.query.ocr_text:
        return []
    from photosearch.db.ocr import text_condition, text_values

    return [(text_condition(), tuple(text_values(i.query.ocr_text)), "")]


def _file_name(q: SearchQuery, p: Preparation) -> Prepared:
    if q.file_name_contains is None:
        return {}, True
    names = p.name_rows(q.file_name_contains)
    return {"names": names}, names is not None


def _created(q: SearchQuery, p: Preparation) -> Prepared:
    bounds = (q.created_after, q.created_before)
    if not p.added:
        return {}, bounds == (None, None)
    return {"created": bounds}, True


GPS_COLUMNS = (
    ("column", "latitude", "coalesce(latitude, 'NaN')::float4", [">f4"], np.float32),
    ("column", "longitude", "coalesce(longitude, 'NaN')::float4", [">f4"], np.float32),
)
NO_UUID = "'00000000-0000-0000-0000-000000000000'"

# In the order the SQL conditions are written (their parameters are numbered in it).
FILTERS: tuple[Filter, ...] = (
    Filter(
        "owner",
        ("owners", "exclude_owners"),  # resolved to the owners in scope (SearchService.owner_scope)
        lambda i: [] if i.owner_ids is None else [("s.owner_id = ANY({})", (list(i.owner_ids),), "")],
        memory=Memory(
            ("search_ivf.owner_id",),
            lambda q, p: ({"owners": p.scope}, True),
            hc.owner_checks,
            hc.index_share(hc.owner_index),
            index=hc.owner_index,
        ),
    ),
    Filter(
        "library",
        ("library_ids",),
        lambda i: [("s.library_id = ANY({})", (list(i.query.library_ids),), "")] if i.query.library_ids else [],
        memory=Memory(
            ("search_ivf.library_id",),
            lambda q, p: ({"libraries": q.library_ids}, True),
            hc.library_checks,
            hc.library_share,
            holds=(("column", "library", f"coalesce(library_id, {NO_UUID})", [">i8", "V8"], np.int64),),
        ),
    ),
    Filter(
        "type",
        ("asset_type",),
        lambda i: [("s.type = {}", (i.query.asset_type,), "")] if i.query.asset_type else [],
        memory=Memory(
            ("search_ivf.type",),
            lambda q, p: ({"marks": {"video": None if q.asset_type is None else q.asset_type == "VIDEO"}}, True),
            hc.mark_checks("video"),
            hc.mark_share("video"),
            holds=(("attribute", "video", "coalesce(type = 'VIDEO', false)", np.bool_),),
        ),
    ),
    Filter(
        "taken",
        ("taken_after", "taken_before"),
        _range("s.local_date_time", "", "taken_after", "taken_before"),
        memory=Memory(
            ("search_ivf.local_date_time",),
            lambda q, p: ({"after": q.taken_after, "before": q.taken_before}, True),
            hc.taken_checks,
            hc.index_share(hc.taken_index),
            index=hc.taken_index,
        ),
    ),
    Filter(
        "created",
        ("created_after", "created_before"),
        _range("a.created_at", "assets", "created_after", "created_before"),
        indexed=False,
        memory=Memory(
            ("assets.created_at",),
            _created,
            hc.created_checks,
            hc.index_share(hc.created_index),
            index=hc.created_index,
        ),
    ),
    Filter(  # every edit changes it: not worth making the copy stale for
        "updated",
        ("updated_after", "updated_before"),
        _range("a.updated_at", "assets", "updated_after", "updated_before"),
        indexed=False,
    ),
    Filter(
        "favorite",
        ("is_favorite",),
        _equals("is_favorite", "is_favorite"),
        memory=Memory(
            ("search_ivf.is_favorite",),
            _flag("favorite", "is_favorite"),
            hc.favorite_checks,
            hc.flag_share("favorite"),
            counter="flags_version",
        ),
    ),
    Filter(
        "archived",
        ("is_archived",),
        _equals("is_archived", "is_archived"),
        memory=Memory(
            ("search_ivf.is_archived",),
            _flag("archived", "is_archived"),
            hc.mark_checks("archived"),
            hc.mark_share("archived"),
            counter="flags_version",
            holds=(("attribute", "archived", "coalesce(is_archived, false)", np.bool_),),
        ),
    ),
    Filter(
        "offline",
        ("is_offline",),
        _equals("is_offline", "is_offline"),
        memory=Memory(
            ("search_ivf.is_offline",),
            _flag("offline", "is_offline"),
            hc.mark_checks("offline"),
            hc.mark_share("offline"),
            counter="flags_version",
            holds=(("attribute", "offline", "coalesce(is_offline, false)", np.bool_),),
        ),
    ),
    Filter(
        "visibility",
        ("visibility",),
        lambda i: [("s.visibility = ANY({})", (list(i.query.visibility),), "")] if i.query.visibility else [],
        memory=Memory(
            ("search_ivf.visibility",),
            _visibility,
            hc.timeline_checks,
            hc.flag_share("timeline"),
            counter="flags_version",
        ),
    ),
    Filter(
        "trash",
        ("trashed_only", "with_deleted"),
        _trash,
        memory=Memory(
            ("search_ivf.deleted_at",), _live, hc.live_checks, hc.flag_share("live"), counter="flags_version"
        ),
    ),
    Filter(
        "file_name",
        ("file_name_contains",),
        lambda i: (
            [("a.original_file_name ILIKE {} ESCAPE '\\'", (like_pattern(i.query.file_name_contains),), "assets")]
            if i.query.file_name_contains
            else []
        ),
        indexed=False,
        memory=Memory(
            ("assets.original_file_name",),
            _file_name,
            hc.name_checks,
            hc.index_share(hc.name_index),
            index=hc.name_index,
        ),
    ),
    Filter("ocr_text", ("ocr_text",), _ocr),
    _exif_text("make", "make"),
    _exif_text("model", "model"),
    _exif_text("lens", "lens_model"),
    _exif_text("city", "city"),
    _exif_text("state", "state"),
    _exif_text("country", "country"),
    Filter(
        "rating",
        ("rating_min", "rating"),
        _rating,
        memory=Memory(
            ("search_ivf.rating",),
            lambda q, p: ({"rating_min": q.rating_min, "rating": q.rating}, True),
            hc.rating_checks,
            hc.rating_share,
            holds=(("attribute", "rating", "coalesce(rating, -2)::int2", np.int8),),  # -1 is a real one: rejected
        ),
    ),
    Filter(
        "gps",
        ("has_gps",),
        _gps,
        memory=Memory(
            ("search_ivf.latitude", "search_ivf.longitude"),
            lambda q, p: ({"marks": {"gps": q.has_gps}}, True),
            hc.mark_checks("gps"),
            hc.mark_share("gps"),
            holds=(("attribute", "gps", "(latitude IS NOT NULL AND longitude IS NOT NULL)", np.bool_),),
        ),
    ),
    Filter(
        "bbox",
        ("bbox",),
        _bbox,
        indexed=False,
        memory=Memory(
            ("search_ivf.latitude", "search_ivf.longitude"),
            lambda q, p: ({"bbox": q.bbox}, True),
            hc.bbox_checks,
            hc.place_share,
            holds=GPS_COLUMNS,
        ),
    ),
    Filter(
        "near",
        ("near",),
        _near,
        indexed=False,
        memory=Memory(
            ("search_ivf.latitude", "search_ivf.longitude"),
            lambda q, p: ({"near": q.near}, True),
            hc.near_checks,
            hc.place_share,
            holds=GPS_COLUMNS,
        ),
    ),
    Filter(  # "more like this": the example itself; one row, which PostgreSQL leaves out of the candidates
        "exclude",
        (),
        lambda i: [] if i.exclude_asset is None else [("s.asset_id <> {}", (i.exclude_asset,), "")],
    ),
)

BY_NAME = {f.name: f for f in FILTERS}

# The orders the copy works through its held filters in (each a permutation of them, or of those with an index):
# its indexes, the smallest found first (HeldFilter.index_options); the numpy tests, those that usually keep fewest
# rows first (the owner and the dates come from an index more often than not, the default flags usually pass);
# the estimate's factors (ResidentLists.estimate: a product rounds in the order it is taken).
INDEXED_IN = ("owner", "file_name", "taken", "created")
CHECKED_IN = (
    "file_name",
    "favorite",
    "city",
    "country",
    "lens",
    "make",
    "model",
    "state",
    "rating",
    "archived",
    "gps",
    "offline",
    "type",
    "owner",
    "library",
    "created",
    "bbox",
    "near",
    "taken",
    "trash",
    "visibility",
)
ESTIMATED_IN = (
    "owner",
    "file_name",
    "taken",
    "created",
    "library",
    "bbox",
    "near",
    "city",
    "country",
    "lens",
    "make",
    "model",
    "state",
    "rating",
    "archived",
    "gps",
    "offline",
    "type",
    "favorite",
    "trash",
    "visibility",
)
HELD = frozenset(f.name for f in FILTERS if f.memory is not None)
assert set(CHECKED_IN) == set(ESTIMATED_IN) == HELD and len(CHECKED_IN) == len(ESTIMATED_IN) == len(HELD)
assert {n for n in HELD if BY_NAME[n].memory.index is not _no_index} == set(INDEXED_IN)  # type: ignore[union-attr]


def memory_of(name: str) -> Memory:
    """The held filter `name`'s Memory."""
    memory = BY_NAME[name].memory
    assert memory is not None
    return memory


def unindexed(q: SearchQuery) -> bool:
    """Whether the query has a filter no PostgreSQL index serves: its exact path reads every photo."""
    return any(not f.indexed and f.given(q) for f in FILTERS)


def prepare_held(q: SearchQuery, p: Preparation) -> tuple[dict[str, Any], bool]:
    """(HeldFilter.of keyword arguments, whether the copy checks every filter of the query itself)."""
    kwargs: dict[str, Any] = {"texts": {}, "marks": {}}
    every = True
    for f in FILTERS:
        if f.memory is None:
            every = every and not f.given(q)
            continue
        found, held = f.memory.prepare(q, p)
        every = every and held
        for key, value in found.items():
            if key in ("texts", "marks"):
                kwargs[key].update(value)
            else:
                kwargs[key] = value
    return kwargs, every


def _holds(kind: str) -> list[tuple[Any, ...]]:
    found: dict[str, tuple[Any, ...]] = {}
    for f in FILTERS:
        for h in f.memory.holds if f.memory else ():
            if h[0] == kind:
                found.setdefault(h[1], h)
    return list(found.values())


# What the loader (db.resident) reads beyond its fixed fields, derived from the table.
HELD_TEXT = tuple(h[1] for h in _holds("text"))  # hashed EXIF texts
HELD_ATTRIBUTES = {h[1]: (h[2], h[3]) for h in _holds("attribute")}  # a byte each: name -> (expression, dtype)
HELD_COLUMNS = {h[1]: (h[2], h[3], h[4]) for h in _holds("column")}  # name -> (expression, record fields, dtype)
FLAG_ATTRIBUTES = tuple(
    h[1] for f in FILTERS if f.memory and f.memory.counter == "flags_version" for h in f.memory.holds
)


def watched() -> dict[tuple[str, Counter], set[str]]:
    """(table, counter) -> the columns whose change must bump that counter: what the copy holds."""
    found: dict[tuple[str, Counter], set[str]] = {}
    for f in FILTERS:
        if f.memory is not None:
            for source in f.memory.watch:
                table, column = source.split(".")
                found.setdefault((table, f.memory.counter), set()).add(column)
    return found
