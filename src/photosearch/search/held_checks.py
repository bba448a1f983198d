"""The numpy side of each filter the in-memory copy holds, as the table of filters (search/filters.py) names it:
its tests on the copy's columns (`*_checks`: (column, test) pairs, each test a superset of SQL's), the rows one
of the copy's indexes finds for it (`*_index`), and its share of the rows for the estimate (`*_share`). Each
reads the HeldFilter fields its entry's `prepare` fills in (search/held_filter.py)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from photosearch.search.held_filter import HeldFilter
    from photosearch.search.resident_lists import ResidentLists

EARTH_KM = 6371.0088  # the haversine's radius, in SQL and in numpy alike
KM_PER_DEGREE = 111.0  # a radius's latitude band: km per degree of latitude (a little less: the band is wider)
GPS_SLACK = 1e-4  # degrees and km: float32 coordinates are within ~1e-5 degrees of PostgreSQL's float8 ones
FLAG_CHECK_SHARE = 0.05  # the trash and timeline flags are checked in memory only when they remove more than this
NONE_TAKEN = np.iinfo(np.int64).min  # '-infinity': what the loader reads for a photo without a date

Spans = tuple[np.ndarray, np.ndarray]  # (starts, ends) of row ranges: the probed lists
Check = tuple[Any, Callable[[np.ndarray], np.ndarray]]  # (a column, or ROW_NUMBERS; its test)
Index = tuple[int, Callable[[], np.ndarray], np.ndarray]  # (rows it finds, a function finding them, their column)


class _RowNumbers:
    """A column whose value at each row is the row's number: a check that needs the rows themselves."""

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return rows


ROW_NUMBERS: Any = _RowNumbers()


# -- the owner, the file name and the dates: an index each ----------------------------------------------------


def owner_index(f: HeldFilter, held: ResidentLists, spans: Spans | None) -> list[Index]:
    owners = f.owners
    if owners is None:
        return []
    return [(held.owner_count(owners), lambda: held.owner_rows(owners, spans), held.owners)]


def owner_checks(f: HeldFilter, held: ResidentLists) -> list[Check]:
    return [] if f.owners is None else [(held.owners, lambda v: np.isin(v, f.owners))]


def name_index(f: HeldFilter, held: ResidentLists, spans: Spans | None) -> list[Index]:
    names = f.names
    if names is None or f.name_mask is None:
        return []
    return [(len(names), lambda: _within(names, spans), f.name_mask)]


def name_checks(f: HeldFilter, held: ResidentLists) -> list[Check]:
    return [] if f.name_mask is None else [(f.name_mask, lambda v: v)]


def _dates_index(column: str, lo: int | None, hi: int | None, held: ResidentLists, spans: Spans | None) -> list[Index]:
    """The sorted dates' rows, only over every row (they are not in row order)."""
    if spans is not None or (lo is None and hi is None):
        return []
    order, ordered = getattr(held, f"{column}_order"), getattr(held, f"{column}_sorted")
    a, b = _sorted_range(ordered, lo, hi)
    return [(b - a, lambda: order[a:b], getattr(held, column))]


def taken_index(f: HeldFilter, held: ResidentLists, spans: Spans | None) -> list[Index]:
    return _dates_index("taken", f.taken_min, f.taken_max, held, spans)


def created_index(f: HeldFilter, held: ResidentLists, spans: Spans | None) -> list[Index]:
    return _dates_index("created", f.created_min, f.created_max, held, spans)


def taken_checks(f: HeldFilter, held: ResidentLists) -> list[Check]:
    lo, hi = f.taken_min, f.taken_max
    if lo is not None and hi is not None:
        # NONE_TAKEN (no date) fails `>=`, as NULL >= x does, and passes `<`, where SQL's NULL < x fails: a
        # superset either way
        return [(held.taken, lambda v: (v >= lo) & (v < hi))]
    if lo is not None:
        return [(held.taken, lambda v: v >= lo)]
    return [] if hi is None else [(held.taken, lambda v: v < hi)]


def created_checks(f: HeldFilter, held: ResidentLists) -> list[Check]:
    found: list[Check] = []
    if f.created_min is not None:
        found.append((held.created, lambda v: v >= f.created_min))
    if f.created_max is not None:
        found.append((held.created, lambda v: v < f.created_max))
    return found


def index_share(index: Callable[[HeldFilter, ResidentLists, Spans | None], list[Index]]) -> Callable:
    """The share of the rows an index finds: exact counts."""

    def share(f: HeldFilter, held: ResidentLists) -> list[float]:
        return [count / len(held.ids) for count, _, _ in index(f, held, None)]

    return share


# -- the other columns ---------------------------------------------------------------------------------------------


def library_checks(f: HeldFilter, held: ResidentLists) -> list[Check]:
    return [] if f.libraries is None else [(held.columns["library"], lambda v: np.isin(v, f.libraries))]


def library_share(f: HeldFilter, held: ResidentLists) -> list[float]:
    if f.libraries is None:
        return []
    return [sum(held.library_counts.get(x, 0) for x in set(f.libraries.tolist())) / len(held.ids)]


def text_checks(column: str) -> Callable[[HeldFilter, ResidentLists], list[Check]]:
    """A hashed EXIF text (0: none); two values whose hashes collide both pass: a superset."""

    def checks(f: HeldFilter, held: ResidentLists) -> list[Check]:
        return [(held.texts[column], lambda v, value=value: v == value) for c, value in f.texts if c == column]

    return checks


def text_share(column: str) -> Callable[[HeldFilter, ResidentLists], list[float]]:
    def share(f: HeldFilter, held: ResidentLists) -> list[float]:
        return [held.text_counts[column].get(value, 0) / len(held.ids) for c, value in f.texts if c == column]

    return share


def rating_checks(f: HeldFilter, held: ResidentLists) -> list[Check]:
    if f.rating is not None:
        return [(held.attributes["rating"], lambda v: v == f.rating)]
    return [] if f.rating_min is None else [(held.attributes["rating"], lambda v: v >= f.rating_min)]


def rating_share(f: HeldFilter, held: ResidentLists) -> list[float]:
    ratings, n = held.attribute_counts["rating"], len(held.ids)
    if f.rating is not None:
        return [ratings.get(f.rating, 0) / n]
    return [] if f.rating_min is None else [sum(c for r, c in ratings.items() if r >= f.rating_min) / n]


def mark_checks(name: str) -> Callable[[HeldFilter, ResidentLists], list[Check]]:
    """A byte-wide attribute (HELD_ATTRIBUTES), wanted true or false."""

    def checks(f: HeldFilter, held: ResidentLists) -> list[Check]:
        return [(held.attributes[name], lambda v, want=want: v == want) for m, want in f.marks if m == name]

    return checks


def mark_share(name: str) -> Callable[[HeldFilter, ResidentLists], list[float]]:
    def share(f: HeldFilter, held: ResidentLists) -> list[float]:
        counts = held.attribute_counts[name]
        return [counts.get(int(want), 0) / len(held.ids) for m, want in f.marks if m == name]

    return share


def favorite_checks(f: HeldFilter, held: ResidentLists) -> list[Check]:
    return [] if f.favorite is None else [(held.favorites, lambda v: v == f.favorite)]


def _flag_checks(want: bool | None, flags: np.ndarray, count: int, held: ResidentLists) -> list[Check]:
    """Only when it removes more than a few rows (FLAG_CHECK_SHARE): nearly every photo is out of the trash and on
    the timeline, and PostgreSQL checks the candidates anyway (the page's slack covers the few that fail)."""
    n = max(len(held.ids), 1)
    if want is None or (count if not want else n - count) / n <= FLAG_CHECK_SHARE:
        return []
    return [(flags, lambda v: v == want)]


def live_checks(f: HeldFilter, held: ResidentLists) -> list[Check]:
    return _flag_checks(f.live, held.live, held.live_count, held)


def timeline_checks(f: HeldFilter, held: ResidentLists) -> list[Check]:
    return _flag_checks(f.timeline, held.timeline, held.timeline_count, held)


def flag_share(key: str) -> Callable[[HeldFilter, ResidentLists], list[float]]:
    """favorite, live or timeline: the rows with the flag as wanted."""

    def share(f: HeldFilter, held: ResidentLists) -> list[float]:
        want, n = getattr(f, key), len(held.ids)
        if want is None:
            return []
        yes = getattr(held, f"{key}_count")
        return [(yes if want else n - yes) / n]

    return share


def bbox_checks(f: HeldFilter, held: ResidentLists) -> list[Check]:
    """On the float32 coordinates (NaN, no GPS, fails as NULL does), widened by GPS_SLACK degrees so float32
    rounding never drops a row SQL's float8 test keeps."""
    if f.bbox is None:
        return []
    lat, lon, e = held.columns["latitude"], held.columns["longitude"], GPS_SLACK
    south, west, north, east = f.bbox
    found: list[Check] = [(lat, lambda v: (v >= south - e) & (v <= north + e))]
    if west <= east:
        return [*found, (lon, lambda v: (v >= west - e) & (v <= east + e))]
    return [*found, (lon, lambda v: (v >= west - e) | (v <= east + e))]


def near_checks(f: HeldFilter, held: ResidentLists) -> list[Check]:
    """SQL's haversine (widened by GPS_SLACK km), after a latitude band."""
    if f.near is None:
        return []
    lat, lon, e = held.columns["latitude"], held.columns["longitude"], GPS_SLACK
    la, lo, km = f.near
    band = km / KM_PER_DEGREE + e

    def within(rows: np.ndarray) -> np.ndarray:
        p, q = np.radians(lat[rows].astype(np.float64)), np.radians(lon[rows].astype(np.float64))
        a = np.sin((p - math.radians(la)) / 2) ** 2
        a += math.cos(math.radians(la)) * np.cos(p) * np.sin((q - math.radians(lo)) / 2) ** 2
        return 2 * EARTH_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0))) <= km + e

    # after the band: on the rows left, by their numbers
    return [(lat, lambda v: (v >= la - band) & (v <= la + band)), (ROW_NUMBERS, within)]


def place_share(f: HeldFilter, held: ResidentLists) -> list[float]:
    """The box and the radius together, tested on every 16th row or so (~65k rows instead of all of them)."""
    if f.bbox is None and f.near is None:
        return []
    n = len(held.ids)
    sample = np.arange(0, n, max(1, n // 65_536))
    kept = sample
    for column, test in bbox_checks(f, held) + near_checks(f, held):
        kept = kept[test(column[kept])]
    return [len(kept) / max(len(sample), 1)]


# -- row spans -----------------------------------------------------------------------------------------------------


def _sorted_range(ordered: np.ndarray, lo: int | None, hi: int | None) -> tuple[int, int]:
    """(start, end) in sorted `ordered` of the values in [lo, hi), as HeldFilter tests them: a missing date
    (NONE_TAKEN, sorted first) is before any `lo` and within any `hi`."""
    start = 0 if lo is None else int(np.searchsorted(ordered, lo, side="left"))
    end = len(ordered) if hi is None else int(np.searchsorted(ordered, hi, side="left"))
    return start, max(start, end)


def _within(rows: np.ndarray, spans: Spans | None) -> np.ndarray:
    """The sorted `rows` that fall in `spans` (None = all of them): one binary search per span."""
    if spans is None:
        return rows
    return rows[span_rows(np.searchsorted(rows, spans[0]), np.searchsorted(rows, spans[1]))]


def span_rows(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The numbers starts[i]..ends[i]-1 of every span, concatenated, without a Python list per span."""
    sizes = ends - starts
    return np.arange(int(sizes.sum()), dtype=np.int64) + np.repeat(starts - (np.cumsum(sizes) - sizes), sizes)
