"""Read replicas (setting `database_replica_urls`): searches and the timeline read from them, round-robin, and
everything else — every write — goes to the primary.

A replica that fails a connection is left out for `RETRY_AFTER` seconds (then tried again); with none left, reads
go to the primary. A replica may lag, so what it returns is confirmed on the primary before it is shown
(`confirm_owned`): one primary-key lookup of the page's ids. A photo the primary has deleted, trashed or given
to another owner fails it, and the read runs again on the primary. If the primary itself is away, the
replica's page is served as is (searches keep working) and writes fail with `ReadOnlyError`; a process that starts
while the primary is away opens the first replica that answers in its place (`open_standing_in`).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from photosearch.db.pool import Database, _configure, check_pgvector
from photosearch.db.server import DatabaseError, ServerInfo

log = logging.getLogger(__name__)

RETRY_AFTER = 5.0  # seconds a failed server is left out before it is tried again
CONNECT_TIMEOUT = 3.0  # seconds to wait for a connection from a replica's (or, when confirming, the primary's) pool
UNAVAILABLE = (psycopg.OperationalError, PoolTimeout)


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

    def read(self, fetch: Callable[[Database], list[dict]], owner: UUID) -> list[dict]:
        """`fetch` on a replica, its rows (live photos of `owner`, keyed "id") confirmed on the primary; on the
        primary when no replica is healthy or the primary knows better."""
        replica = self.pick()
        if replica is None:
            return fetch(self.primary)
        try:
            rows = fetch(replica)
        except UNAVAILABLE as exc:
            self.mark_down(replica, exc)
            return self.read(fetch, owner)
        if self.confirm_owned([(r["id"], owner, False) for r in rows]) is False:
            return fetch(self.primary)
        return rows

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
