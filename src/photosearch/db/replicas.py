"""Read replicas (setting `database_replica_urls`): searches, the timeline and single-photo metadata (asset details,
thumbnails, originals) read from them, round-robin, and everything else — every write — goes to the primary.

A replica that fails a connection is left out for `RETRY_AFTER` seconds (then tried again); with none left, reads
go to the primary. A replica may lag, so what it returns is confirmed on the primary before it is shown
(`confirm_owned`): one primary-key lookup of the page's ids. A photo the primary has deleted, trashed or given
to another owner fails it, and the read runs again on the primary. A single photo's row is confirmed the same way
plus its file's path and its library's roots (`confirm_access`), since file serving trusts them. If the primary
itself is away, the replica's answer is served as is (searches keep working) and writes fail with `ReadOnlyError`;
a process that starts while the primary is away opens the first replica that answers in its place
(`open_standing_in`).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from photosearch.db.pool import Database, _configure, check_pgvector
from photosearch.db.server import DatabaseError, ServerInfo

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_AFTER = 5.0  # seconds a failed server is left out before it is tried again
CONNECT_TIMEOUT = 3.0  # seconds to wait for a connection from a replica's (or, when confirming, the primary's) pool
UNAVAILABLE = (psycopg.OperationalError, PoolTimeout)
# What decides who may see a photo and which file it serves: owner, trash state, path, the library's roots.
ACCESS_SQL = (
    "SELECT a.owner_id, a.deleted_at IS NOT NULL, a.original_path, l.import_paths"
    " FROM assets a JOIN libraries l ON l.id = a.library_id WHERE a.id = %s"
)


@dataclass
class _Server:
    db: Database
    down_until: float = 0.0

    def up(self, now: float) -> bool:
        return now >= self.down_until


@dataclass
class ReplicaSet:
    primary: Database
    replicas: list[_Server]
    _turn: itertools.count = field(default_factory=itertools.count)
    _primary_down_until: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # reads answered by a replica ("replica"), by the primary because none was healthy ("no replica"), and again on
    # the primary after the confirmation failed ("primary confirmed otherwise")
    served: Counter = field(default_factory=Counter)

    @classmethod
    def open(cls, primary: Database, urls: Iterable[str], max_size: int = 4) -> ReplicaSet:
        servers = []
        for url in urls:
            pool = ConnectionPool(
                url,
                min_size=0,  # a replica that is down must not keep the server from starting
                max_size=max_size,
                kwargs={"prepare_threshold": None, "connect_timeout": int(CONNECT_TIMEOUT)},
                configure=_configure,
                timeout=CONNECT_TIMEOUT,
                open=True,
                name="photosearch-replica",
            )
            servers.append(_Server(Database(server=ServerInfo(dsn=url, embedded=False, pgdata=None), pool=pool)))
        return cls(primary, servers)

    def pick(self) -> Database | None:
        """The next healthy replica, round-robin; None when every one is down (read from the primary)."""
        now = time.monotonic()
        n = len(self.replicas)
        for _ in range(n):
            server = self.replicas[next(self._turn) % n]
            if server.up(now):
                return server.db
        return None

    def mark_down(self, db: Database, exc: BaseException) -> None:
        for server in self.replicas:
            if server.db is db:
                log.warning("replica %s is unavailable (%s); reading from the others", _where(db), exc)
                server.down_until = time.monotonic() + RETRY_AFTER

    def primary_up(self) -> bool:
        return time.monotonic() >= self._primary_down_until

    def confirm_owned(self, rows: list[tuple[UUID, UUID, bool]]) -> bool | None:
        """Whether the primary still has every (asset id, owner id, trashed) of a replica's answer: not deleted,
        with that owner and that trash state. None: the primary did not answer (the answer stands unconfirmed)."""
        if not rows:
            return True
        if not self.primary_up():
            return None
        ids = [r[0] for r in rows]
        try:
            with self.primary.pool.connection(timeout=CONNECT_TIMEOUT) as conn:
                rows_now = conn.execute(
                    "SELECT id, owner_id, deleted_at IS NOT NULL FROM assets WHERE id = ANY(%s)", (ids,)
                ).fetchall()
        except UNAVAILABLE as exc:
            log.warning("the primary database is unavailable (%s); serving replica answers unconfirmed", exc)
            self._primary_down_until = time.monotonic() + RETRY_AFTER
            return None
        found = {r[0]: (r[1], r[2]) for r in rows_now}
        return all(found.get(aid) == (owner, trashed) for aid, owner, trashed in rows)

    def _on_replica(self, fetch: Callable[[Database], T]) -> tuple[bool, T]:
        """(True, `fetch` on a healthy replica), marking down each that fails on the way; (False, `fetch` on the
        primary) when none is left."""
        while (replica := self.pick()) is not None:
            try:
                return True, fetch(replica)
            except UNAVAILABLE as exc:
                self.mark_down(replica, exc)
        self.served["no replica"] += 1
        return False, fetch(self.primary)

    def read(self, fetch: Callable[[Database], list[dict]], owner: UUID) -> list[dict]:
        """`fetch` on a replica, its rows (live photos of `owner`, keyed "id") confirmed on the primary; on the
        primary when no replica is healthy or the primary knows better."""
        on_replica, rows = self._on_replica(fetch)
        if not on_replica:
            return rows
        if self.confirm_owned([(r["id"], owner, False) for r in rows]) is False:
            self.served["primary confirmed otherwise"] += 1
            return fetch(self.primary)
        self.served["replica"] += 1
        return rows

    def confirm_access(self, row: dict) -> bool | None:
        """Whether the primary agrees with a replica's live asset row (`asset_for_user`'s: owner, path, library
        roots) on everything that decides access: one primary-key lookup. None: the primary did not answer."""
        if not self.primary_up():
            return None
        try:
            with self.primary.pool.connection(timeout=CONNECT_TIMEOUT) as conn:
                now = conn.execute(ACCESS_SQL, (row["id"],)).fetchone()
        except UNAVAILABLE as exc:
            log.warning("the primary database is unavailable (%s); serving replica answers unconfirmed", exc)
            self._primary_down_until = time.monotonic() + RETRY_AFTER
            return None
        want = (row["owner_id"], False, row["original_path"], list(row["import_paths"] or []))
        return now is not None and (now[0], now[1], now[2], list(now[3] or [])) == want

    def read_counts(self, fetch: Callable[[Database], list[dict]]) -> list[dict]:
        """`fetch` on a replica, unconfirmed: for answers that name no photo (the timeline's month counts), which a
        lagging replica can only make a lag old."""
        on_replica, rows = self._on_replica(fetch)
        if on_replica:
            self.served["replica"] += 1
        return rows

    def read_one(self, fetch: Callable[[Database], dict | None]) -> dict | None:
        """`fetch` (one live asset of the caller, or None) on a replica, confirmed on the primary (`confirm_access`).
        A photo the replica does not have (added or restored moments ago) is looked up on the primary."""
        on_replica, row = self._on_replica(fetch)
        if not on_replica:
            return row
        if row is None:
            confirmed = False if self.primary_up() else None
        else:
            confirmed = self.confirm_access(row)
        if confirmed is not False:
            self.served["replica"] += 1
            return row
        self.served["primary confirmed otherwise" if row is not None else "not on the replica"] += 1
        try:
            return fetch(self.primary)
        except UNAVAILABLE as exc:  # the primary left between the two reads; it had said otherwise: not served
            self._primary_down_until = time.monotonic() + RETRY_AFTER
            log.warning("the primary database is unavailable (%s)", exc)
            return None

    def close(self) -> None:
        for server in self.replicas:
            server.db.close()


def _where(db: Database) -> str:
    info = psycopg.conninfo.conninfo_to_dict(db.dsn)
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}"


def open_replicas(primary: Database, urls: list[str]) -> ReplicaSet | None:
    if not urls or primary.read_only:  # a replica standing in for the primary reads from itself
        return None
    return ReplicaSet.open(primary, urls)


def open_standing_in(urls: list[str], why: BaseException) -> Database | None:
    """The first replica that answers, opened read-only in place of a primary that does not (None: none do)."""
    from photosearch.db.pool import connect_pool

    for url in urls:
        try:
            check_pgvector(url)
        except DatabaseError:
            continue
        log.warning("the primary database does not answer (%s); searching read-only on replica %s", why, url)
        db = connect_pool(ServerInfo(dsn=url, embedded=False, pgdata=None), max_size=4)
        db.read_only = True
        return db
    return None
