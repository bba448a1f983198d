"""The search lists' vectors held in memory (ResidentLists): every embedded photo's vector, float32, grouped by
list, with the filter columns the table of filters (search/filters.py) says the copy holds, their indexes and
counts; ranked with numpy (scores, top), a held filter's rows found (HeldFilter.select) and estimated (estimate).
search/resident.py keeps it current."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from photosearch.db import resident as dr
from photosearch.search.filters import ESTIMATED_IN, memory_of
from photosearch.search.held_checks import NONE_TAKEN, Spans, _within, span_rows
from photosearch.search.held_filter import HeldFilter, Key


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
        share, applied = 1.0, set()
        for name in ESTIMATED_IN:  # each filter's share (held_checks), in this order: products round in it
            estimate = memory_of(name).share
            if estimate not in applied:  # the box and the radius share one, on a sample
                applied.add(estimate)
                for factor in estimate(held, self):
                    share *= factor
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
        rows = span_rows(starts, ends)
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


def _counts(values: np.ndarray) -> dict[int, int]:
    found, counts = np.unique(values, return_counts=True)
    return dict(zip(found.tolist(), counts.tolist(), strict=True))


def _flag_counts(favorites: np.ndarray, live: np.ndarray, timeline: np.ndarray) -> dict[str, int]:
    return {
        "favorite_count": int(np.count_nonzero(favorites)),
        "live_count": int(np.count_nonzero(live)),
        "timeline_count": int(np.count_nonzero(timeline)),
    }
