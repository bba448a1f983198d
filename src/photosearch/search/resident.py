"""The search lists' vectors held in the server's memory, ranked with numpy.

PostgreSQL spends ~1 µs on each candidate row of a list probe (reach the row, decode its half-precision
vector, compute the distance, sort): a far (text) query at 1M photos reads ~20,000 rows, 25-35 ms. numpy ranks
the same rows held as float32, grouped by list, in ~3 ms (one matrix-vector product per list, contiguous
memory). The candidates it keeps are then checked against the filters and re-scored at full precision by
PostgreSQL, by primary key (db.search.candidate_search), so the filters, the owner scope and the distances all
stay in SQL.

The copy also holds each row's owner, date taken, place and camera (hashed) and flags (HeldFilter): numpy then
ranks only the rows those filters match, as PostgreSQL's indexes would find them, so owner-scoped, date-range,
place, camera and favourites searches hand over a few dozen candidates, not the thousands a filter that rare
would need. The held columns only ever narrow the rows to a superset of the matches (NULLs and hash collisions
pass); PostgreSQL still applies every filter.

The copy is used only while it is current: it is keyed by the lists' training and `search_version`, a counter
every change to an embedding (migration 041) or to a held column (042) bumps, which each search reads with its
context. When they differ the search runs in PostgreSQL as before and a background thread brings the copy up to
date (ResidentCache.update): it reads just the rows of the photos the change log (056) names since the snapshot the
copy was read in, marks their old rows dead and adds the current ones after the lists, into room the vectors'
array keeps for them (SPARE_ROWS), and rebuilds the small indexes; the next search after that (100 changed photos:
well under a second) is in memory again, and memory never holds two copies of the vectors. Only a training of the
lists or a full room loads the whole library again, the old copy dropped first (searches run in PostgreSQL
meanwhile), not more often than every `min_interval` (60 s) nor than 10x the last load's duration.

The flags (favourite, in the trash, on the timeline) have a counter of their own (043): favouriting or archiving
a photo is common, so it re-reads only the flags of the photos whose flags are not the common ones, in the
background, while the vectors stay; until then the copy checks no flag and PostgreSQL applies those filters.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from uuid import UUID

import numpy as np

from photosearch.db import Database
from photosearch.db import resident as dr
from photosearch.search.filters import EARTH_KM, KM_PER_DEGREE

log = logging.getLogger(__name__)

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # timestamptz's binary form counts µs from here
NONE_TAKEN = np.iinfo(np.int64).min  # '-infinity': what the loader reads for a photo without a date
NAIVE_WIDEN = timedelta(hours=3)  # a date without a zone, read in the session's: the DST changes' doubt, and more
FLAG_CHECK_SHARE = 0.05  # the trash and timeline flags are checked in memory only when they remove more than this
GPS_SLACK = 1e-4  # degrees and km: float32 coordinates are within ~1e-5 degrees of PostgreSQL's float8 ones

SPARE_ROWS = 0.1  # room for this share more rows in the copy's vectors, for changes applied to it (update)

Key = tuple[str | None, int | None]  # (the lists' trained_at, search_version)
Spans = tuple[np.ndarray, np.ndarray]  # (starts, ends) of row ranges: the probed lists


class _RowNumbers:
    """A column whose value at each row is the row's number: a check that needs the rows themselves."""

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return rows


ROW_NUMBERS: Any = _RowNumbers()


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

    def _checks(self, held: ResidentLists) -> list[tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]]:
        """(column, test) per condition, the ones that usually keep fewest rows first."""
        checks: list[tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]] = []
        if self.name_mask is not None:
            checks.append((self.name_mask, lambda v: v))
        if self.favorite is not None:
            checks.append((held.favorites, lambda v: v == self.favorite))
        for column, value in self.texts:
            checks.append((held.texts[column], lambda v, value=value: v == value))
        if self.rating is not None:
            checks.append((held.attributes["rating"], lambda v: v == self.rating))
        elif self.rating_min is not None:
            checks.append((held.attributes["rating"], lambda v: v >= self.rating_min))
        for name, want in self.marks:
            checks.append((held.attributes[name], lambda v, want=want: v == want))
        if self.owners is not None:
            checks.append((held.owners, lambda v: np.isin(v, self.owners)))
        if self.libraries is not None:
            checks.append((held.columns["library"], lambda v: np.isin(v, self.libraries)))
        if self.created_min is not None:
            checks.append((held.created, lambda v: v >= self.created_min))
        if self.created_max is not None:
            checks.append((held.created, lambda v: v < self.created_max))
        checks.extend(self._place_checks(held))
        lo, hi = self.taken_min, self.taken_max
        if lo is not None and hi is not None:
            # NONE_TAKEN (no date) fails `>=`, as NULL >= x does, and passes `<`, where SQL's NULL < x fails: a
            # superset either way
            checks.append((held.taken, lambda v: (v >= lo) & (v < hi)))
        elif lo is not None:
            checks.append((held.taken, lambda v: v >= lo))
        elif hi is not None:
            checks.append((held.taken, lambda v: v < hi))
        # Last, and only when they remove more than a few rows: nearly every photo is out of the trash and on the
        # timeline, and PostgreSQL checks the candidates anyway (the page's slack covers the few that fail).
        n = max(len(held.ids), 1)
        for want, flags, count in (
            (self.live, held.live, held.live_count),
            (self.timeline, held.timeline, held.timeline_count),
        ):
            if want is not None and (count if not want else n - count) / n > FLAG_CHECK_SHARE:
                checks.append((flags, lambda v, want=want: v == want))
        return checks

    def _place_checks(self, held: ResidentLists) -> list[tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]]:
        """The bounding box and the radius, on the float32 coordinates (NaN, no GPS, fails as NULL does), widened
        by GPS_SLACK degrees and km so float32 rounding never drops a row SQL's float8 test keeps; the radius is
        SQL's haversine, after a latitude band."""
        checks: list[tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]] = []
        lat, lon, e = held.columns["latitude"], held.columns["longitude"], GPS_SLACK
        if self.bbox is not None:
            south, west, north, east = self.bbox
            checks.append((lat, lambda v: (v >= south - e) & (v <= north + e)))
            if west <= east:
                checks.append((lon, lambda v: (v >= west - e) & (v <= east + e)))
            else:
                checks.append((lon, lambda v: (v >= west - e) | (v <= east + e)))
        if self.near is not None:
            la, lo, km = self.near
            band = km / KM_PER_DEGREE + e
            checks.append((lat, lambda v: (v >= la - band) & (v <= la + band)))

            def within(rows: np.ndarray) -> np.ndarray:
                p, q = np.radians(lat[rows].astype(np.float64)), np.radians(lon[rows].astype(np.float64))
                a = np.sin((p - math.radians(la)) / 2) ** 2
                a += math.cos(math.radians(la)) * np.cos(p) * np.sin((q - math.radians(lo)) / 2) ** 2
                return 2 * EARTH_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0))) <= km + e

            checks.append((ROW_NUMBERS, within))  # after the band: on the rows left, by their numbers
        return checks

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
            rows = _span_rows(*spans)
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

    def index_options(
        self, held: ResidentLists, spans: Spans | None
    ) -> list[tuple[int, Callable[[], np.ndarray], np.ndarray]]:
        """(how many rows, a function that finds them, the column whose condition they meet) for each of the copy's
        indexes this filter can start from: owners and file names within `spans`, the sorted dates (taken, added)
        only over every row (their rows are not in row order)."""
        options: list[tuple[int, Callable[[], np.ndarray], np.ndarray]] = []
        if self.owners is not None:
            owners = self.owners
            options.append((held.owner_count(owners), lambda: held.owner_rows(owners, spans), held.owners))
        if self.names is not None and self.name_mask is not None:
            names = self.names
            options.append((len(names), lambda: _within(names, spans), self.name_mask))
        if spans is None:
            for column, order, ordered, lo, hi in (
                (held.taken, held.taken_order, held.taken_sorted, self.taken_min, self.taken_max),
                (held.created, held.created_order, held.created_sorted, self.created_min, self.created_max),
            ):
                if lo is not None or hi is not None:
                    a, b = _sorted_range(ordered, lo, hi)
                    options.append((b - a, lambda order=order, a=a, b=b: order[a:b], column))
        return options


@dataclass(frozen=True)
class ResidentLists:
    """Every embedded asset's vector, float32, rows grouped by search list: list i is rows offsets[i]:offsets[i+1];
    with each row's owner, date taken, EXIF text hashes and flags for HeldFilter."""

    key: Key
    ids: np.ndarray  # (n,) 16-byte UUIDs
    vectors: np.ndarray  # (n, dim) float32
    offsets: np.ndarray  # (lists + 1,) int64
    owners: np.ndarray  # (n,) int64 owner prefixes (owner_prefix; 0 = none)
    taken: np.ndarray  # (n,) int64 µs since PG_EPOCH (NONE_TAKEN = none)
    texts: dict[str, np.ndarray]  # HELD_TEXT column -> (n,) int64 hashes (0 = none)
    favorites: np.ndarray  # (n,) bool
    live: np.ndarray  # (n,) bool: not in the trash
    timeline: np.ndarray  # (n,) bool: visibility = 'timeline'
    flags_version: int | None  # system_metadata.flags_version the flags (and archived, offline) are current for
    attributes: dict[str, np.ndarray]  # db.resident.HELD_ATTRIBUTES name -> (n,) int8 rating (-2: none) or bool
    columns: dict[str, np.ndarray]  # db.resident.HELD_COLUMNS name -> (n,) library prefix or float32 coordinate
    id_order: np.ndarray  # (n,) int64: row numbers sorted by id (locate)
    id_sorted: np.ndarray  # (n,) uint64: the first 8 bytes of ids[id_order]
    taken_order: np.ndarray  # (n,) int64: row numbers sorted by `taken` (a date range's rows)
    taken_sorted: np.ndarray  # (n,) int64: `taken[taken_order]`
    owner_order: np.ndarray  # (n,) int64: row numbers sorted by owner, then by row (an owner's rows)
    owner_spans: dict[int, tuple[int, int]]  # owner prefix -> its rows' span in owner_order
    text_counts: dict[str, dict[int, int]]  # HELD_TEXT column -> rows per hash
    attribute_counts: dict[str, dict[int, int]]  # HELD_ATTRIBUTES name -> rows per value (bools as 0 and 1)
    created: np.ndarray  # (n,) int64: when each photo was added, µs since PG_EPOCH (db.resident.AssetColumns)
    created_order: np.ndarray  # (n,) int64: row numbers sorted by `created`
    created_sorted: np.ndarray  # (n,) int64: `created[created_order]`
    library_counts: dict[int, int]  # rows per library prefix
    names: bytes | None  # every row's file name, lower-cased, NUL after each (db.resident.AssetColumns); None: not held
    name_ends: np.ndarray  # (m,) int64: where each name's NUL is in `names`
    name_rows: np.ndarray  # (m,) int64: the row of each name (-1: a photo the copy does not hold)
    favorite_count: int  # rows with each flag set
    live_count: int
    timeline_count: int
    snapshot: str | None = None  # the snapshot the rows were read in: the change log has what came after
    store: np.ndarray | None = None  # `vectors` are its first rows; the rest is room for changed rows (appended)
    dead: np.ndarray | None = None  # (n,) bool: rows replaced or removed since the load (None: none)

    @classmethod
    def build(cls, loaded: dr.ResidentRows, dead: np.ndarray | None = None) -> ResidentLists:
        """The copy, with its indexes: ids (a changed flag's row; rows `dead` left out), dates and owners (the rows
        a held filter matches, and how many); and the counts that estimate a held filter's other conditions."""
        first = loaded.ids.view(">u8")[::2].astype(np.uint64)
        alive = np.arange(len(first)) if dead is None else np.flatnonzero(~dead)
        order = alive[np.argsort(first[alive], kind="stable")]
        taken_order = np.argsort(loaded.taken, kind="stable")
        owner_order = np.argsort(loaded.owners, kind="stable")  # stable: each owner's rows stay in row order
        owners, starts, counts = np.unique(loaded.owners[owner_order], return_index=True, return_counts=True)
        none = np.zeros(0, dtype=np.int64)
        extra = ("assets", "changed")
        held = cls(
            **{k: v for k, v in loaded._asdict().items() if k not in extra},
            dead=dead,
            created=none,
            created_order=none,
            created_sorted=none,
            library_counts=_counts(loaded.columns["library"]),
            names=None,
            name_ends=none,
            name_rows=none,
            id_order=order,
            id_sorted=first[order],
            taken_order=taken_order,
            taken_sorted=loaded.taken[taken_order],
            owner_order=owner_order,
            owner_spans={
                o: (a, a + c) for o, a, c in zip(owners.tolist(), starts.tolist(), counts.tolist(), strict=True)
            },
            text_counts={column: _counts(values) for column, values in loaded.texts.items()},
            attribute_counts={name: _counts(values) for name, values in loaded.attributes.items()},
            **_flag_counts(loaded.favorites, loaded.live, loaded.timeline),
        )
        if loaded.assets is None:
            return held
        rows, which = held.locate(loaded.assets.ids)
        created = np.full(len(loaded.ids), NONE_TAKEN, dtype=np.int64)  # (every row is there: one snapshot)
        created[rows] = loaded.assets.created[which]
        created_order = np.argsort(created, kind="stable")
        held = replace(held, created=created, created_order=created_order, created_sorted=created[created_order])
        if loaded.assets.names is None:
            return held
        name_rows = np.full(len(loaded.assets.ids), -1, dtype=np.int64)
        name_rows[which] = rows
        ends = np.flatnonzero(np.frombuffer(loaded.assets.names, dtype=np.uint8) == 0)
        return replace(held, names=loaded.assets.names, name_ends=ends, name_rows=name_rows)

    def appended(self, delta: dr.ResidentRows) -> ResidentLists | None:
        """This copy with the changes `delta` read (resident_lists with `since`): the rows of every photo it names
        marked dead, the current rows of those still there added after the lists (in no list: every probe ranks
        them), the indexes rebuilt. The vectors go into the room left in `store`, so no second copy of them is
        made; None when there is not room enough (the caller loads the whole library again)."""
        n, m = len(self.ids), len(delta.ids)
        if self.store is None or n + m > len(self.store) or delta.changed is None:
            return None
        self.store[n : n + m] = delta.vectors  # beyond every current reader's rows
        dead = np.zeros(n + m, dtype=bool)
        if self.dead is not None:
            dead[:n] = self.dead
        dead[self.locate(delta.changed)[0]] = True

        def cat(old: np.ndarray, new: np.ndarray) -> np.ndarray:
            return np.concatenate([old, new.astype(old.dtype)])

        loaded = dr.ResidentRows(
            delta.key,
            cat(self.ids, delta.ids),
            self.store[: n + m],
            self.offsets,
            cat(self.owners, delta.owners),
            cat(self.taken, delta.taken),
            {column: cat(values, delta.texts[column]) for column, values in self.texts.items()},
            cat(self.favorites, delta.favorites),
            cat(self.live, delta.live),
            cat(self.timeline, delta.timeline),
            delta.flags_version,  # every flag change is in the log: the ones read are current
            {name: cat(values, delta.attributes[name]) for name, values in self.attributes.items()},
            {name: cat(values, delta.columns[name]) for name, values in self.columns.items()},
            None,
            delta.snapshot,
            None,
            self.store,
        )
        held = ResidentLists.build(loaded, dead)
        if delta.assets is None or len(self.created) != n:
            return held
        # the added photos' file names and added times, by their row (assets' rows come in id order)
        where = {bytes(x): i for i, x in enumerate(delta.ids)}
        rows = np.array([n + where.get(bytes(x), -n - 1) for x in delta.assets.ids], dtype=np.int64)
        created = np.full(m, NONE_TAKEN, dtype=np.int64)
        created[rows[rows >= 0] - n] = delta.assets.created[rows >= 0]
        created = cat(self.created, created)
        created_order = np.argsort(created, kind="stable")
        held = replace(held, created=created, created_order=created_order, created_sorted=created[created_order])
        if self.names is None or delta.assets.names is None:
            return held
        ends = np.flatnonzero(np.frombuffer(delta.assets.names, dtype=np.uint8) == 0) + len(self.names)
        return replace(
            held,
            names=self.names + delta.assets.names,
            name_ends=cat(self.name_ends, ends),
            name_rows=cat(self.name_rows, np.where(rows >= 0, rows, -1)),
        )

    def name_matches(self, needle: bytes, limit: int) -> np.ndarray | None:
        """The rows (sorted) whose file name contains `needle` (lower-cased by PostgreSQL: db.resident.lowered), or
        None when the names are not held or more than `limit` contain it: finding each match is a Python step
        (~1 µs), so a common needle is left to PostgreSQL. One pass of bytes.find over the blob: ~1 GB/s here on
        names that share long prefixes (1M names, 16 MB: 11-22 ms; ILIKE on every asset row took 0.8-2.3 s)."""
        blob = self.names
        if blob is None or not needle or b"\x00" in needle:
            return None
        found, at = [], blob.find(needle)
        while at >= 0:
            if len(found) == limit:
                return None
            found.append(at)
            at = blob.find(needle, at + 1)
        names = np.unique(np.searchsorted(self.name_ends, np.array(found, dtype=np.int64), side="left"))
        rows = self.name_rows[names]
        return np.sort(rows[rows >= 0])

    @property
    def nbytes(self) -> int:
        vectors = self.vectors if self.store is None else self.store  # with the room for changed rows
        arrays = (self.ids, vectors, self.offsets, self.owners, self.taken, *self.texts.values())
        arrays += tuple(self.attributes.values()) + tuple(self.columns.values())
        arrays += (self.created, self.created_order, self.created_sorted)
        arrays += (self.favorites, self.live, self.timeline)
        extra = self.id_order.nbytes + self.id_sorted.nbytes + self.taken_sorted.nbytes + self.taken_order.nbytes
        extra += self.owner_order.nbytes + self.name_ends.nbytes + self.name_rows.nbytes + len(self.names or b"")
        return int(sum(a.nbytes for a in arrays) + extra)

    def estimate(self, held: HeldFilter) -> int:
        """Rows `held` matches, from the copy's counts, each condition taken as independent of the others (as
        PostgreSQL's planner takes them): what a search with only held filters plans with, instead of asking
        PostgreSQL (EXPLAIN: ~1-2 ms at 1M photos)."""
        n = len(self.ids)
        if n == 0:
            return 0
        share = 1.0
        for count, _, _ in held.index_options(self, None):  # owners, file names, dates taken and added: exact counts
            share *= count / n
        if held.libraries is not None:
            share *= sum(self.library_counts.get(x, 0) for x in set(held.libraries.tolist())) / n
        if held.bbox is not None or held.near is not None:
            # every 16th row or so: the box or radius tested on ~65k rows instead of all of them
            sample = np.arange(0, n, max(1, n // 65_536))
            kept = sample
            for column, test in held._place_checks(self):
                kept = kept[test(column[kept])]
            share *= len(kept) / max(len(sample), 1)
        for column, value in held.texts:
            share *= self.text_counts[column].get(value, 0) / n
        ratings = self.attribute_counts["rating"]
        if held.rating is not None:
            share *= ratings.get(held.rating, 0) / n
        elif held.rating_min is not None:
            share *= sum(c for r, c in ratings.items() if r >= held.rating_min) / n
        for name, want in held.marks:
            share *= self.attribute_counts[name].get(int(want), 0) / n
        counts = (
            (held.favorite, self.favorite_count),
            (held.live, self.live_count),
            (held.timeline, self.timeline_count),
        )
        for want, yes in counts:
            if want is not None:
                share *= (yes if want else n - yes) / n
        return int(math.ceil(n * share))

    def held_rows(self, held: HeldFilter | None) -> int:
        """Rows `held` reads when it checks every row: those of its smallest index (HeldFilter.index_options), or
        every row."""
        options = [] if held is None else held.index_options(self, None)
        return min([len(self.ids), *(count for count, _, _ in options)])

    def owner_count(self, owners: np.ndarray) -> int:
        """Rows the `owners` (prefixes) own."""
        return sum(b - a for a, b in (self.owner_spans.get(o, (0, 0)) for o in set(owners.tolist())))

    def owner_rows(self, owners: np.ndarray, spans: Spans | None) -> np.ndarray:
        """The row numbers the `owners` own, within `spans` (None = every row), ascending: each owner's rows are
        sorted, so a binary search per span cuts them out without reading the other rows."""
        parts = []
        for owner in set(owners.tolist()):
            a, b = self.owner_spans.get(owner, (0, 0))
            parts.append(_within(self.owner_order[a:b], spans))
        if len(parts) <= 1:
            return parts[0] if parts else np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate(parts))  # in memory order, as the vectors are read

    def locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row numbers, positions in `ids`) of the `ids` (16-byte UUIDs) that the copy holds; the others are
        left out."""
        none = np.zeros(0, dtype=np.int64)
        if len(ids) == 0 or len(self.id_order) == 0:
            return none, none
        first = ids.view(">u8")[::2].astype(np.uint64)
        lo = np.searchsorted(self.id_sorted, first, side="left")
        hi = np.searchsorted(self.id_sorted, first, side="right")
        mine, theirs = self.ids.view(np.uint64).reshape(-1, 2), ids.view(np.uint64).reshape(-1, 2)
        cand = self.id_order[np.minimum(lo, len(self.id_order) - 1)]
        exact = (hi > lo) & (mine[cand] == theirs).all(axis=1)
        rows, which = cand[exact].tolist(), np.flatnonzero(exact).tolist()
        for i in np.flatnonzero(~exact & (hi - lo > 1)).tolist():  # ids sharing their first 8 bytes: look on
            for r in self.id_order[lo[i] + 1 : hi[i]].tolist():
                if (mine[r] == theirs[i]).all():
                    rows.append(r)
                    which.append(i)
                    break
        return np.array(rows, dtype=np.int64), np.array(which, dtype=np.int64)

    def _spans(self, lists: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The row spans of `lists`, and of the rows added since the load (in no list: every probe ranks them)."""
        valid = np.array(sorted(x for x in set(lists) if 0 <= x < len(self.offsets) - 1), dtype=np.int64)
        starts, ends = self.offsets[valid], self.offsets[valid + 1]
        if len(self.ids) > self.offsets[-1]:
            starts, ends = np.append(starts, self.offsets[-1]), np.append(ends, len(self.ids))
        return starts, ends

    def scores(
        self, q: np.ndarray, lists: Sequence[int] | None, held: HeldFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(row numbers, cosine similarity to q) of every live row in `lists` (None = every row) that `held` lets
        through (_scores), without the rows replaced or removed since the load."""
        rows, sims = self._scores(q, lists, held)
        if self.dead is not None:
            keep = ~self.dead[rows]
            rows, sims = rows[keep], sims[keep]
        return rows, sims

    def _scores(
        self, q: np.ndarray, lists: Sequence[int] | None, held: HeldFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(row numbers, cosine similarity to q) of every row in `lists` (None = every row) that `held` lets
        through. Without a filter: one matrix-vector product per list, in memory order, written into one array;
        with one, the rows that pass are gathered first (a 10 % filter reads a tenth of the vectors)."""
        if lists is None:
            if held is None:
                return np.arange(len(self.ids)), self.vectors @ q
            return self._gathered(q, held.select(self, None))  # every row: from an index, or columns read in place
        starts, ends = self._spans(lists)
        if held is not None:
            return self._gathered(q, held.select(self, (starts, ends)))
        rows = _span_rows(starts, ends)
        sims = np.empty(len(rows), dtype=np.float32)
        pos = 0
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            if b > a:
                np.dot(self.vectors[a:b], q, out=sims[pos : pos + b - a])
                pos += b - a
        return rows, sims

    def _gathered(self, q: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, their similarity to q): the rows' vectors gathered first (np.take: faster than fancy indexing
        here, 1.7 ms against 2.2 ms for 3k scattered rows at 1M)."""
        return rows, np.take(self.vectors, rows, axis=0) @ q

    def top(self, rows: np.ndarray, scores: np.ndarray, count: int) -> np.ndarray:
        """The ids (16 bytes each) of the `count` best-scoring rows, best first."""
        if count < len(rows):
            part = np.argpartition(-scores, count - 1)[:count]
            rows, scores = rows[part], scores[part]
        order = np.argsort(-scores, kind="stable")
        return self.ids[rows[order]]


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
    return rows[_span_rows(np.searchsorted(rows, spans[0]), np.searchsorted(rows, spans[1]))]


def _span_rows(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The numbers starts[i]..ends[i]-1 of every span, concatenated, without a Python list per span."""
    sizes = ends - starts
    return np.arange(int(sizes.sum()), dtype=np.int64) + np.repeat(starts - (np.cumsum(sizes) - sizes), sizes)


def _counts(values: np.ndarray) -> dict[int, int]:
    found, counts = np.unique(values, return_counts=True)
    return dict(zip(found.tolist(), counts.tolist(), strict=True))


def _flag_counts(favorites: np.ndarray, live: np.ndarray, timeline: np.ndarray) -> dict[str, int]:
    return {
        "favorite_count": int(np.count_nonzero(favorites)),
        "live_count": int(np.count_nonzero(live)),
        "timeline_count": int(np.count_nonzero(timeline)),
    }


class ResidentCache:
    """The current ResidentLists (or None) and the background thread that replaces it."""

    def __init__(self, db: Database, budget_bytes: int, min_interval: float = 60.0) -> None:
        self.db = db
        self.budget_bytes = budget_bytes
        self.min_interval = min_interval
        self.current: ResidentLists | None = None
        self.last_error: str | None = None
        self.skipped: str | None = None  # why the library is not held (over the budget)
        self.loaded_at: str | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._flags_thread: threading.Thread | None = None
        self._next_flags = 0.0
        self._next_load = 0.0
        self._next_apply = 0.0
        self._next_prune = 0.0

    def status(self) -> dict[str, object]:
        """What /api/server/stats shows: whether the copy is loaded, its size, and why not."""
        held = self.current
        loading = self._thread is not None and self._thread.is_alive()
        state = (
            "loaded" if held is not None else "loading" if loading else "over budget" if self.skipped else "not loaded"
        )
        return {
            "state": state,
            "rows": len(held.ids) if held is not None else 0,
            "mb": round(held.nbytes / 2**20, 1) if held is not None else 0.0,
            "budget_mb": round(self.budget_bytes / 2**20),
            "loaded_at": self.loaded_at,
            "reloading": loading and held is not None,
            "note": self.skipped or self.last_error,
        }

    def get(self, key: Key) -> ResidentLists | None:
        """The copy if it is current for `key` (else None, and a new one is requested)."""
        held = self.current
        if held is not None and held.key == key:
            return held
        self.request()
        return None

    def request(self) -> None:
        """Bring the copy up to date in the background: apply the logged changes (apply), or load the library
        again when they cannot be applied; unless that is under way or the last one was too recent."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            now = time.monotonic()
            if now < (self._next_apply if self.current is not None else self._next_load):
                return
            self._thread = threading.Thread(target=self._load_logged, name="photosearch-resident", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        for thread in (self._thread, self._flags_thread):
            if thread is not None:
                thread.join(timeout)

    def flags(self, held: ResidentLists, version: int | None) -> bool:
        """Whether `held`'s flags are current for `version` (SearchContext.flags_version); if not, they are
        re-read in the background (the vectors stay) and searches leave those filters to SQL meanwhile."""
        if held.flags_version == version:
            return True
        with self._lock:
            busy = any(t is not None and t.is_alive() for t in (self._thread, self._flags_thread))
            if not busy and time.monotonic() >= self._next_flags:
                self._flags_thread = threading.Thread(target=self._refresh_flags, name="photosearch-flags", daemon=True)
                self._flags_thread.start()
        return False

    def refresh_flags(self) -> ResidentLists | None:
        """Re-read the flags into the current copy (in this thread): every photo not listed has the common ones
        (not a favourite, not trashed, on the timeline). The vectors stay."""
        held = self.current
        if held is None:
            return None
        t = time.monotonic()
        with self.db.connection() as conn:
            found = dr.flag_rows(conn)
        # 1M photos, 40k of them favourites or trashed: ~0.5-4 s of scattered heap reads. A burst of favouriting
        # re-reads at most once per 10x that (searches meanwhile leave the flags to SQL).
        self._next_flags = time.monotonic() + min(self.min_interval, 10 * (time.monotonic() - t))
        rows, which = held.locate(found.ids)
        n = len(held.ids)
        favorites, live, timeline = np.zeros(n, dtype=bool), np.ones(n, dtype=bool), np.ones(n, dtype=bool)
        favorites[rows], live[rows], timeline[rows] = found.favorite[which], found.live[which], found.timeline[which]
        attributes = dict(held.attributes)
        for name in dr.FLAG_ATTRIBUTES:
            attributes[name] = np.zeros(n, dtype=bool)
            attributes[name][rows] = getattr(found, name)[which]
        counts = {**held.attribute_counts, **{name: _counts(attributes[name]) for name in dr.FLAG_ATTRIBUTES}}
        with self._lock:
            if self.current is held:  # not replaced by a whole new copy meanwhile
                self.current = replace(
                    held,
                    favorites=favorites,
                    live=live,
                    timeline=timeline,
                    attributes=attributes,
                    attribute_counts=counts,
                    flags_version=found.version,
                    **_flag_counts(favorites, live, timeline),
                )
        return self.current

    def _refresh_flags(self) -> None:
        try:
            self.refresh_flags()
        except Exception as exc:  # noqa: BLE001 - those filters go on in PostgreSQL; the next search retries
            log.warning("re-reading the photos' flags failed: %s", exc)

    def update(self) -> ResidentLists | None:
        """Apply the changes since the copy was read (in this thread) if the copy can take them, else load it
        again (load). Searches run in PostgreSQL only until this returns."""
        held = self.current
        if held is None or held.snapshot is None:
            return self.load()
        t = time.monotonic()
        with self.db.connection() as conn:
            delta = dr.resident_lists(conn, self.budget_bytes, since=held.snapshot)
        new = None
        if (
            not isinstance(delta, str)
            and delta.key == held.key
            and delta.changed is not None
            and not len(delta.changed)
        ):
            new = held  # nothing to apply
        elif (
            not isinstance(delta, str)
            and delta.key[0] == held.key[0]  # the same training of the lists
            and len(delta.changed if delta.changed is not None else ())  # else a change the log cannot name (TRUNCATE)
            and delta.vectors.shape[1] == held.vectors.shape[1]
        ):
            new = held.appended(delta)
        if new is None:
            return self.load()
        with self._lock:
            if self.current is held:
                self.current = new
        # 1M rows: ~1 s to rebuild the indexes; while an ingest changes rows every second, at most a fifth of a core
        self._next_apply = time.monotonic() + max(1.0, 4 * (time.monotonic() - t))
        self._prune(new)
        return self.current

    def _prune(self, held: ResidentLists) -> None:
        """Delete the change log's entries this copy has (a minute apart at most)."""
        if held.snapshot is None or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + 60.0
        with self.db.connection() as conn:
            dr.prune_changes(conn, held.snapshot)
            conn.commit()

    def load(self) -> ResidentLists | None:
        """Load a copy now (in this thread) and make it current; None when the library is over the budget. The old
        copy goes first, so memory never holds two (searches run in PostgreSQL meanwhile), and the new one keeps
        room for SPARE_ROWS more rows (update)."""
        t = time.monotonic()
        with self._lock:
            self.current = None
        with self.db.connection() as conn:
            loaded = dr.resident_lists(conn, self.budget_bytes, spare=SPARE_ROWS)
        elapsed = time.monotonic() - t
        self._next_load = time.monotonic() + max(self.min_interval, 10 * elapsed)
        if isinstance(loaded, str):
            self.skipped, self.current = loaded, None
            return None
        held = ResidentLists.build(loaded)
        with self._lock:  # after a flags refresh of the old copy, never before it
            self.current = held
        self.skipped = None
        self.loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
        self._prune(held)
        log.info(
            "search lists in memory: %d rows, %.0f MB, loaded in %.1f s", len(held.ids), held.nbytes / 2**20, elapsed
        )
        return self.current

    def _load_logged(self) -> None:
        try:
            self.update()
            self.last_error = None
        except Exception as exc:  # noqa: BLE001 - searches go on in PostgreSQL; the next request retries
            self.last_error = str(exc)
            self._next_load = time.monotonic() + self.min_interval
            log.warning("loading the search lists into memory failed: %s", exc)
