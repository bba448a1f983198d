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
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from photosearch.db import Database
from photosearch.db import resident as dr
from photosearch.search.held_checks import NONE_TAKEN
from photosearch.search.held_filter import NAIVE_WIDEN, PG_EPOCH, HeldFilter, Key, owner_prefix
from photosearch.search.resident_lists import ResidentLists, _counts, _flag_counts

# the copy's parts, for those who import them from here
__all__ = ["NAIVE_WIDEN", "NONE_TAKEN", "PG_EPOCH", "SPARE_ROWS", "HeldFilter", "ResidentCache", "ResidentLists",
           "owner_prefix"]  # fmt: skip

log = logging.getLogger(__name__)

SPARE_ROWS = 0.1  # room for this share more rows in the copy's vectors, for changes applied to it (update)


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
