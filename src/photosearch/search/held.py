"""The in-memory copy's part of a search: the copy, if current, and the query's filters as it checks them
(filters.prepare_held), with the values PostgreSQL converts for it (hashed places and cameras, lower-cased file
names) and the rows recent file-name filters matched, cached."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple
from uuid import UUID

import numpy as np
import psycopg

from photosearch.db import resident as dr
from photosearch.db import search as sq
from photosearch.search.filters import prepare_held
from photosearch.search.query import SearchQuery
from photosearch.search.resident import HeldFilter, ResidentCache, ResidentLists


class Held(NamedTuple):
    """The server's in-memory copy of the lists for one search (None: none, or not current), the part of the
    query's filters it checks itself, and whether that is every filter (filters.prepare_held)."""

    copy: ResidentLists | None
    filter: HeldFilter | None
    only: bool


class HeldLookup:
    """A service's way to the copy: `resident` (None: PostgreSQL only), and its caches of converted values."""

    def __init__(self, resident: ResidentCache | None, name_max_matches: int) -> None:
        self.resident = resident
        self.name_max_matches = name_max_matches
        # place and camera filters (hashed) and file-name filters (lower-cased) as the in-memory copy holds them
        self._converted: dict[Any, Any] = {}
        self._names: OrderedDict[tuple, np.ndarray | None] = OrderedDict()  # recent file-name searches' rows
        self._names_lock = threading.Lock()

    def held(
        self, conn: psycopg.Connection, query: SearchQuery, scope: list[UUID] | None, ctx: sq.SearchContext
    ) -> Held:
        """The in-memory copy, if current, with the part of the filters it checks itself."""
        copy = None if self.resident is None else self.resident.get((ctx.lists_version, ctx.search_version))
        if copy is None or self.resident is None:
            return Held(None, None, False)
        prep = _Preparation(self, conn, copy, scope, self.resident.flags(copy, ctx.flags_version))
        kwargs, every = prepare_held(query, prep)
        found = HeldFilter.of(**kwargs, zone=conn.info.timezone, rows=len(copy.ids))  # the session's zone: how
        # PostgreSQL reads a date without one
        only = found is not None and every
        return Held(copy, found, only)

    def _name_rows(self, copy: ResidentLists, needle: bytes) -> np.ndarray | None:
        """The copy's rows a file-name filter matches (ResidentLists.name_matches), kept for the 32 latest needles
        per copy: the next page of the same search, or a search refined with another filter, skips the pass over
        every name (1M photos: 11-22 ms)."""
        key = (copy.key, needle)  # names change only with the copy's key
        with self._names_lock:  # the API serves searches from several threads
            if key in self._names:
                self._names.move_to_end(key)
                return self._names[key]
        found = copy.name_matches(needle, self.name_max_matches)
        with self._names_lock:
            self._names[key] = found
            while len(self._names) > 32:
                self._names.popitem(last=False)
        return found

    def _lowered(self, conn: psycopg.Connection, value: str) -> bytes:
        """A file-name filter as the copy holds names: lower-cased by PostgreSQL."""
        return self._by_postgres(("name", value), lambda: dr.lowered(conn, value))

    def _text_hash(self, conn: psycopg.Connection, value: str) -> int:
        """A place or camera as the in-memory copy holds it: hashed by PostgreSQL."""
        return self._by_postgres(value, lambda: dr.text_hash(conn, value))

    def _by_postgres(self, key: Any, compute: Callable[[], Any]) -> Any:
        """A filter value as PostgreSQL turns it into what the copy holds: one round trip per value, then cached."""
        found = self._converted.get(key)
        if found is None:
            if len(self._converted) > 10_000:
                self._converted.clear()
            found = self._converted[key] = compute()
        return found


class _Preparation:
    """What the table of filters needs to turn a query into the copy's filter (filters.Preparation)."""

    def __init__(
        self,
        lookup: HeldLookup,
        conn: psycopg.Connection,
        copy: ResidentLists,
        scope: list[UUID] | None,
        flags: bool,
    ) -> None:
        self.lookup, self.conn, self.copy, self.scope, self.flags = lookup, conn, copy, scope, flags
        self.added = len(copy.created) == len(copy.ids)  # the copy has the times photos were added

    def text_hash(self, value: str) -> int:
        return self.lookup._text_hash(self.conn, value)

    def name_rows(self, value: str) -> np.ndarray | None:
        return self.lookup._name_rows(self.copy, self.lookup._lowered(self.conn, value))
