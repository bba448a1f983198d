"""The part of a query's filters the in-memory copy of the lists checks itself (HeldFilter), as numpy tests on the
copy's columns and indexes: which filters those are, and how a query's values become them, is the table of
filters' (search/filters.py, prepare_held)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING
from uuid import UUID

import numpy as np

from photosearch.search.filters import CHECKED_IN, INDEXED_IN, memory_of
from photosearch.search.held_checks import ROW_NUMBERS, Check, Index, Spans, span_rows

if TYPE_CHECKING:
    from photosearch.search.resident_lists import ResidentLists

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # timestamptz's binary form counts µs from here
NAIVE_WIDEN = timedelta(hours=3)  # a date without a zone, read in the session's: the DST changes' doubt, and more

Key = tuple[str | None, int | None]  # (the lists' trained_at, search_version)


def owner_prefix(owner: UUID) -> int:
    """The owner as the copy holds it: the UUID's first 8 bytes as a signed big-endian int64."""
    return int.from_bytes(owner.bytes[:8], "big", signed=True)


def _pg_micros(value: datetime) -> int:
    return (value - PG_EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class HeldFilter:
    """The part of a query's filters the copy checks itself: the owner scope and libraries, the dates taken and
    added, the EXIF place and camera (db.resident.HELD_TEXT), the rating, type and GPS (presence, box, radius), the
    file name, the flags. A superset of the rows SQL matches, never less: a date without a
    time zone is read in the session's zone, as PostgreSQL reads it, widened by NAIVE_WIDEN either way (a local
    time a DST change repeats or skips may be read an hour apart), or by a day when the zone is not known; NULLs
    compare as SQL would or pass, and two values whose hashes collide both pass. PostgreSQL applies every filter
    to the candidates again."""

    owners: np.ndarray | None = None  # int64 owner prefixes (owner_prefix) allowed; None = any owner
    taken_min: int | None = None  # µs since PG_EPOCH, inclusive
    taken_max: int | None = None  # µs since PG_EPOCH, exclusive
    texts: tuple[tuple[str, int], ...] = ()  # (HELD_TEXT column, the value's hash: db.resident.text_hash)
    favorite: bool | None = None
    live: bool | None = None  # True: not in the trash (deleted_at IS NULL); False: in it
    timeline: bool | None = None  # True: visibility = 'timeline'
    rating_min: int | None = None  # EXIF rating >= this (a photo without one fails, as NULL >= x does)
    rating: int | None = None  # EXIF rating = this
    marks: tuple[tuple[str, bool], ...] = ()  # (a bool HELD_ATTRIBUTES name: video, gps, archived, offline; wanted)
    names: np.ndarray | None = None  # the rows whose file name matches (ResidentLists.name_matches), sorted
    name_mask: np.ndarray | None = None  # the same as a bool per row
    libraries: np.ndarray | None = None  # int64 library prefixes (as owner_prefix) allowed; None = any library
    created_min: int | None = None  # added at or after (µs since PG_EPOCH)
    created_max: int | None = None  # added before
    bbox: tuple[float, float, float, float] | None = None  # south, west, north, east (west > east: the antimeridian)
    near: tuple[float, float, float] | None = None  # latitude, longitude, km

    @classmethod
    def of(
        cls,
        owners: Sequence[UUID] | None,
        after: datetime | None,
        before: datetime | None,
        texts: Mapping[str, int] | None,
        favorite: bool | None = None,
        live: bool | None = None,
        timeline: bool | None = None,
        zone: tzinfo | None = None,
        rating_min: int | None = None,
        rating: int | None = None,
        marks: Mapping[str, bool | None] | None = None,
        names: np.ndarray | None = None,
        rows: int = 0,
        libraries: Sequence[UUID] | None = None,
        created: tuple[datetime | None, datetime | None] = (None, None),
        bbox: tuple[float, float, float, float] | None = None,
        near: tuple[float, float, float] | None = None,
    ) -> HeldFilter | None:
        """The filter for these conditions, None when there is none to check. `zone`: the session's time zone,
        in which PostgreSQL reads a date without one (psycopg: `conn.info.timezone`). `marks`: wanted values of
        the bool attributes (video, gps, archived, offline; None = either). `names`: the rows a file-name filter
        matches (ResidentLists.name_matches), of the copy's `rows`. `created`: the added-after and -before bounds."""
        wanted = tuple(sorted((k, bool(v)) for k, v in (marks or {}).items() if v is not None))
        singles = (owners, after, before, favorite, live, timeline, rating_min, rating, libraries or None, *created)
        singles += (bbox, near)
        if not texts and not wanted and names is None and all(x is None for x in singles):
            return None
        name_mask = None
        if names is not None:
            name_mask = np.zeros(rows, dtype=bool)
            name_mask[names] = True
        widen = NAIVE_WIDEN if zone is not None else timedelta(days=1)

        def micros(value: datetime | None, sign: int) -> int | None:
            if value is None:
                return None
            if value.tzinfo is None:
                value = value.replace(tzinfo=zone or UTC).astimezone(UTC) + sign * widen  # real hours, not wall
            return _pg_micros(value)

        return cls(
            owners=None if owners is None else np.array([owner_prefix(o) for o in owners], dtype=np.int64),
            taken_min=micros(after, -1),
            taken_max=micros(before, 1),
            texts=tuple(sorted((texts or {}).items())),
            favorite=favorite,
            live=live,
            timeline=timeline,
            rating_min=rating_min,
            rating=rating,
            marks=wanted,
            names=names,
            name_mask=name_mask,
            libraries=None if not libraries else np.array([owner_prefix(x) for x in libraries], dtype=np.int64),
            created_min=micros(created[0], -1),
            created_max=micros(created[1], 1),
            bbox=bbox,
            near=near,
        )

    def _checks(self, held: ResidentLists) -> list[Check]:
        """(column, test) per condition, each filter's as the table of filters names them (held_checks), the ones
        that usually keep fewest rows first (filters.CHECKED_IN)."""
        return [c for name in CHECKED_IN for c in memory_of(name).checks(self, held)]

    def select(self, held: ResidentLists, spans: Spans | None) -> np.ndarray:
        """The row numbers, within the row `spans` (the probed lists; None = every row), that may match.

        Where the copy's indexes narrow the rows first, they do: the owners' rows (sorted by row, per owner) or a
        file name's matches cut to the spans, or, over every row, the date range's rows (sorted by date), whichever
        are fewest. The other conditions
        are then tested on just those rows, one after another, each on the rows still left (1M rows: one owner's
        ~1,000 photos in ~0.1 ms instead of ~1 ms for a full column; a 200-list probe of a 1 % owner, her ~2,000
        rows there, without reading the 200k rows' owners)."""
        rows, used = self._indexed(held, spans)
        checks = [c for c in self._checks(held) if c[0] is not used]
        if rows is None and spans is not None:
            rows = span_rows(*spans)
        for column, test in checks:
            if rows is None and column is ROW_NUMBERS:
                rows = np.arange(len(held.ids))
            rows = np.flatnonzero(test(column)) if rows is None else rows[test(column[rows])]
        return np.arange(len(held.ids)) if rows is None else rows

    def _indexed(self, held: ResidentLists, spans: Spans | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(rows, the column whose condition they meet already) from the copy's smaller index, or (None, None)."""
        options = self.index_options(held, spans)
        if not options:
            return None, None
        _, rows, column = min(options, key=lambda option: option[0])
        return rows(), column

    def index_options(self, held: ResidentLists, spans: Spans | None) -> list[Index]:
        """(how many rows, a function that finds them, the column whose condition they meet) for each of the copy's
        indexes this filter can start from (filters.INDEXED_IN): owners and file names within `spans`, the sorted
        dates (taken, added) only over every row (their rows are not in row order)."""
        return [option for name in INDEXED_IN for option in memory_of(name).index(self, held, spans)]
