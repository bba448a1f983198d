"""The table of search filters: the place to start when adding or changing one.

Each entry says, for one filter, which SearchQuery fields give it, its SQL condition(s) and the table they need
joined, whether a PostgreSQL index serves it, and, when the server's in-memory copy of the lists
(search/resident.py) holds it: the source columns the copy reads (which the triggers must watch, or the copy
goes stale silently), the counter their change bumps, what the loader reads for it, how a query's value becomes
the in-memory filter (HeldFilter), and its numpy tests, estimate and index (search/held_checks.py). Everything
else is derived from this list:

- the SQL WHERE clause (db.search.compile_filters walks FILTERS in order: the parameters are numbered in it);
- the in-memory filter of a query and whether it is every filter (prepare_held), the query→column mapping
  included (`lens` is the EXIF column `lens_model`), the trash's precedence stated once (where_trash, prepare_live);
- its numpy mask, index and estimate (HeldFilter.select, ResidentLists.estimate: the entries' functions, in the
  orders below);
- which filters no PostgreSQL index serves (unindexed);
- the loader's columns (db.resident: HELD_TEXT, HELD_ATTRIBUTES, HELD_COLUMNS, FLAG_ATTRIBUTES);
- the columns the triggers must watch (watched()), which tests/search/test_filter_table.py compares with the
  triggers' definitions in the database.

A new filter the copy holds: an entry here (a hashed text or a byte attribute reuses held_checks' functions), a
migration adding its column to search_ivf and to the trigger that watches the held columns, a row in the
staleness test's table; its SearchQuery field and the test reference besides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from photosearch.search import held_checks as hc
from photosearch.search.filter_parts import (
    HAVERSINE,
    Condition,
    FilterInput,
    Preparation,
    Prepared,
    like_pattern,
    prepare_created,
    prepare_file_name,
    prepare_flag,
    prepare_live,
    prepare_visibility,
    where_bbox,
    where_equals,
    where_gps,
    where_near,
    where_ocr,
    where_range,
    where_rating,
    where_trash,
)
from photosearch.search.held_checks import EARTH_KM, KM_PER_DEGREE
from photosearch.search.query import SearchQuery

Counter = Literal["search_version", "flags_version"]
# what others take from here with the table
__all__ = ["EARTH_KM", "FILTERS", "HAVERSINE", "KM_PER_DEGREE", "FilterInput", "like_pattern", "prepare_held",
           "unindexed", "watched"]  # fmt: skip


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


def _mark(name: str) -> Filter:
    """A yes/no mark of the photo (`is_<name>`): the copy holds it as an attribute, stale when flags change."""
    column = f"is_{name}"
    memory = Memory(
        (f"search_ivf.{column}",),
        prepare_flag(name, column),
        hc.mark_checks(name),
        hc.mark_share(name),
        counter="flags_version",
        holds=(("attribute", name, f"coalesce({column}, false)", np.bool_),),
    )
    return Filter(name, (column,), where_equals(column, column), memory=memory)


GPS_COLUMNS = (
    ("column", "latitude", "coalesce(latitude, 'NaN')::float4", [">f4"], np.float32),
    ("column", "longitude", "coalesce(longitude, 'NaN')::float4", [">f4"], np.float32),
)


def _area(name: str, where: Callable[[FilterInput], list[Condition]], checks: Callable[..., list[hc.Check]]) -> Filter:
    """A region of the map (`bbox`, `near`): no index serves it; the copy tests the held GPS columns."""
    memory = Memory(
        ("search_ivf.latitude", "search_ivf.longitude"),
        lambda q, p: ({name: getattr(q, name)}, True),
        checks,
        hc.place_share,
        holds=GPS_COLUMNS,
    )
    return Filter(name, (name,), where, indexed=False, memory=memory)


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
        where_range("s.local_date_time", "", "taken_after", "taken_before"),
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
        where_range("a.created_at", "assets", "created_after", "created_before"),
        indexed=False,
        memory=Memory(
            ("assets.created_at",),
            prepare_created,
            hc.created_checks,
            hc.index_share(hc.created_index),
            index=hc.created_index,
        ),
    ),
    Filter(  # every edit changes it: not worth making the copy stale for
        "updated",
        ("updated_after", "updated_before"),
        where_range("a.updated_at", "assets", "updated_after", "updated_before"),
        indexed=False,
    ),
    Filter(
        "favorite",
        ("is_favorite",),
        where_equals("is_favorite", "is_favorite"),
        memory=Memory(
            ("search_ivf.is_favorite",),
            prepare_flag("favorite", "is_favorite"),
            hc.favorite_checks,
            hc.flag_share("favorite"),
            counter="flags_version",
        ),
    ),
    _mark("archived"),
    _mark("offline"),
    Filter(
        "visibility",
        ("visibility",),
        lambda i: [("s.visibility = ANY({})", (list(i.query.visibility),), "")] if i.query.visibility else [],
        memory=Memory(
            ("search_ivf.visibility",),
            prepare_visibility,
            hc.timeline_checks,
            hc.flag_share("timeline"),
            counter="flags_version",
        ),
    ),
    Filter(
        "trash",
        ("trashed_only", "with_deleted"),
        where_trash,
        memory=Memory(
            ("search_ivf.deleted_at",), prepare_live, hc.live_checks, hc.flag_share("live"), counter="flags_version"
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
            prepare_file_name,
            hc.name_checks,
            hc.index_share(hc.name_index),
            index=hc.name_index,
        ),
    ),
    Filter("ocr_text", ("ocr_text",), where_ocr),
    _exif_text("make", "make"),
    _exif_text("model", "model"),
    _exif_text("lens", "lens_model"),
    _exif_text("city", "city"),
    _exif_text("state", "state"),
    _exif_text("country", "country"),
    Filter(
        "rating",
        ("rating_min", "rating"),
        where_rating,
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
        where_gps,
        memory=Memory(
            ("search_ivf.latitude", "search_ivf.longitude"),
            lambda q, p: ({"marks": {"gps": q.has_gps}}, True),
            hc.mark_checks("gps"),
            hc.mark_share("gps"),
            holds=(("attribute", "gps", "(latitude IS NOT NULL AND longitude IS NOT NULL)", np.bool_),),
        ),
    ),
    _area("bbox", where_bbox, hc.bbox_checks),
    _area("near", where_near, hc.near_checks),
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
    "file_name", "favorite", "city", "country", "lens", "make", "model", "state", "rating", "archived", "gps",
    "offline", "type", "owner", "library", "created", "bbox", "near", "taken", "trash", "visibility"
)  # fmt: skip
ESTIMATED_IN = (
    "owner", "file_name", "taken", "created", "library", "bbox", "near", "city", "country", "lens", "make", "model",
    "state", "rating", "archived", "gps", "offline", "type", "favorite", "trash", "visibility"
)  # fmt: skip
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
