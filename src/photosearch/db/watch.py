"""A running server's watch on its database: notice within a second or two that it died, say so at once (the
API answers 503 without waiting for a pool timeout), restart an embedded server itself, and resume.

An embedded postmaster is checked by its pid every `interval` (a few µs); an external server by a fresh
connection every `probe_every` seconds (the pool's own connections may hang on a dead host). A restart is what
the CLI does on its next call (`start_embedded`: orphaned backends reaped, stale pid file removed, crash
recovery); the pool then drops its broken connections and opens new ones to the restarted server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import psycopg
from psycopg.conninfo import conninfo_to_dict

from photosearch.db.pool import Database
from photosearch.db.server import _forget, embedded_running, start_embedded, with_dbname

log = logging.getLogger(__name__)


class DatabaseWatch:
    def __init__(
        self,
        db: Database,
        tuning: Callable[[int], dict[str, str]] | None = None,
        interval: float = 0.5,
        probe_every: float = 5.0,
    ) -> None:
        self.db = db
        self.tuning = tuning
        self.interval = interval
        self.probe_every = probe_every
        self.down_since: float | None = None  # monotonic time the database was found dead; None = up
        self.restarts = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_probe = 0.0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="photosearch-db-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the watch must outlive any one failed check
                log.exception("database check failed")

    def check(self) -> bool:
        """One round: is the database up? If not, mark it down and (embedded) restart it. Returns up-ness."""
        if self._alive():
            if self.down:
                self._resume()
            return True
        if not self.down:
            self.down_since = time.monotonic()
            self.db.down = True
            log.error("the database is not running; requests get 503 until it is back")
        if self.db.server.embedded and self.db.server.pgdata is not None:
            self._restart()
            if self._alive(probe=True):
                self._resume()
                return True
        return False

    def _alive(self, probe: bool = False) -> bool:
        server = self.db.server
        if server.embedded and server.pgdata is not None and not embedded_running(server.pgdata):
            return False
        now = time.monotonic()
        if not probe and not self.down and (server.embedded or now - self._last_probe < self.probe_every):
            return True
        self._last_probe = now
        try:
            with psycopg.connect(server.dsn, connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def _restart(self) -> None:
        server = self.db.server
        assert server.pgdata is not None
        log.warning("restarting the embedded PostgreSQL in %s", server.pgdata)
        _forget(server.pgdata)  # pgserver's handle in this process still believes the old server runs
        admin = start_embedded(server.pgdata, self.tuning)
        dsn = with_dbname(admin, conninfo_to_dict(server.dsn).get("dbname") or "postgres")
        if dsn != server.dsn:  # a new socket directory: new connections go there
            self.db.server = replace(server, dsn=dsn)
            self.db.pool.conninfo = dsn
        self.restarts += 1

    def _resume(self) -> None:
        self.db.pool.check()  # drop the connections to the dead server, open fresh ones
        took = time.monotonic() - (self.down_since or time.monotonic())
        self.down_since = None
        self.db.down = False
        log.warning("the database is back after %.1f s", took)
