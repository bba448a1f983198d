"""The search lists' vectors held in the server's memory, ranked with numpy.

PostgreSQL spends ~1 µs on each candidate row of a list probe (reach the row, decode its half-precision
vector, compute the distance, sort): a far (text) query at 1M photos reads ~20,000 rows, 25-35 ms. numpy ranks
the same rows held as float32, grouped by list, in ~3 ms (one matrix-vector product per list, contiguous
memory). The candidates it keeps are then checked against the filters and re-scored at full precision by
PostgreSQL, by primary key (db.search.candidate_search), so the filters, the owner scope and the distances all
stay in SQL.

The copy is used only while it is current: it is keyed by the lists' training and `search_version`, a counter
every change to smart_search bumps (migration 041), which each search reads with its context. When they differ
the search runs in PostgreSQL as before and a background thread loads a new copy: not more often than every
`min_interval` (60 s) nor than 10x the last load's duration. An ingest bumps the counter every batch for hours;
re-reading the library each time would take a core from it (1M rows: ~10 s a load, so one in 100 s at most),
and searches meanwhile run in PostgreSQL, complete as ever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import numpy as np

from photosearch.db import Database
from photosearch.db import search as sq

log = logging.getLogger(__name__)

Key = tuple[str | None, int | None]  # (the lists' trained_at, search_version)


@dataclass(frozen=True)
class ResidentLists:
    """Every embedded asset's vector, float32, rows grouped by search list: list i is rows offsets[i]:offsets[i+1]."""

    key: Key
    ids: np.ndarray  # (n,) 16-byte UUIDs
    vectors: np.ndarray  # (n, dim) float32
    offsets: np.ndarray  # (lists + 1,) int64

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.vectors.nbytes + self.offsets.nbytes)

    def rows_in(self, lists: Sequence[int] | None) -> int:
        """Rows a probe of `lists` (None = every list) ranks."""
        if lists is None:
            return len(self.ids)
        sizes = np.diff(self.offsets)
        return int(sizes[[x for x in lists if 0 <= x < len(sizes)]].sum())

    def scores(self, q: np.ndarray, lists: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
        """(row numbers, cosine similarity to q) of every row in `lists` (None = every row). One matrix-vector
        product per list, in memory order, written into one array."""
        if lists is None:
            return np.arange(len(self.ids)), self.vectors @ q
        valid = np.array(sorted(x for x in set(lists) if 0 <= x < len(self.offsets) - 1), dtype=np.int64)
        starts, ends = self.offsets[valid], self.offsets[valid + 1]
        sizes = ends - starts
        total = int(sizes.sum())
        sims = np.empty(total, dtype=np.float32)
        pos = 0
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            if b > a:
                np.dot(self.vectors[a:b], q, out=sims[pos : pos + b - a])
                pos += b - a
        # row numbers of the concatenated spans, without a Python list per span
        rows = np.arange(total, dtype=np.int64) + np.repeat(starts - (np.cumsum(sizes) - sizes), sizes)
        return rows, sims

    def top(self, rows: np.ndarray, scores: np.ndarray, count: int) -> list[UUID]:
        """The ids of the `count` best-scoring rows, best first."""
        if count < len(rows):
            part = np.argpartition(-scores, count - 1)[:count]
            rows, scores = rows[part], scores[part]
        order = np.argsort(-scores, kind="stable")
        return [UUID(bytes=b) for b in self.ids[rows[order]].tolist()]


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
        self._next_load = 0.0

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
        """Start loading a new copy in the background, unless one is loading or the last one was too recent."""
        with self._lock:
            if (self._thread is not None and self._thread.is_alive()) or time.monotonic() < self._next_load:
                return
            self._thread = threading.Thread(target=self._load_logged, name="photosearch-resident", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def load(self) -> ResidentLists | None:
        """Load a copy now (in this thread) and make it current; None when the library is over the budget."""
        t = time.monotonic()
        with self.db.connection() as conn:
            loaded = sq.resident_lists(conn, self.budget_bytes)
        elapsed = time.monotonic() - t
        self._next_load = time.monotonic() + max(self.min_interval, 10 * elapsed)
        if isinstance(loaded, str):
            self.skipped, self.current = loaded, None
            return None
        key, ids, vectors, offsets = loaded
        self.current = ResidentLists(key=key, ids=ids, vectors=vectors, offsets=offsets)
        self.skipped = None
        self.loaded_at = datetime.now(UTC).isoformat(timespec="seconds")
        log.info(
            "search lists in memory: %d rows, %.0f MB, loaded in %.1f s", len(ids), vectors.nbytes / 2**20, elapsed
        )
        return self.current

    def _load_logged(self) -> None:
        try:
            self.load()
            self.last_error = None
        except Exception as exc:  # noqa: BLE001 - searches go on in PostgreSQL; the next request retries
            self.last_error = str(exc)
            self._next_load = time.monotonic() + self.min_interval
            log.warning("loading the search lists into memory failed: %s", exc)
