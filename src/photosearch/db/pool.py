"""Connection pool with the pgvector adapter registered, plus the checks that must pass before use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from photosearch.config import Settings
from photosearch.db.migrate import MIGRATION_LOCK_KEY, migrate
from photosearch.db.server import DatabaseError, ReadOnlyError, ServerInfo, read_only_message, resolve_server

POOL_TIMEOUT_S = 30.0  # every connection busy this long: overloaded (503)
MIN_PGVECTOR = (0, 8, 0)
MIN_POSTGRES = 14


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("-")[0].split(".") if p.isdigit())


def check_pgvector(dsn: str) -> str:
    """Make sure the `vector` extension exists (creating it if allowed) and is new enough; return its version.

    pgvector >= 0.8 is required for `hnsw.iterative_scan`, which complete filtered search relies on.
    """
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL ({exc}). Check PHOTOSEARCH_DATABASE_URL.") from exc
    with conn:
        server_major = conn.info.server_version // 10000
        if server_major < MIN_POSTGRES:
            raise DatabaseError(f"PostgreSQL {server_major} is too old; photosearch needs {MIN_POSTGRES} or newer.")
        row = conn.execute(
            "SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'vector'"
        ).fetchone()
        if row is None:
            raise DatabaseError(
                "the PostgreSQL server has no pgvector extension. Install pgvector >= 0.8 "
                "(e.g. `apt install postgresql-<major>-pgvector`, or build from github.com/pgvector/pgvector), "
                "or unset PHOTOSEARCH_DATABASE_URL to use the embedded server."
            )
        default_version, installed = row
        if installed is None:
            try:
                with conn.transaction():  # serialised: concurrent first starts would race on pg_extension
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"pgvector is available but not enabled and could not be created ({exc}). "
                    "Run `CREATE EXTENSION vector;` as a superuser in this database."
                ) from exc
            installed = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        if _version_tuple(installed) < MIN_PGVECTOR:
            hint = (
                "Run `ALTER EXTENSION vector UPDATE;`"
                if _version_tuple(default_version) >= MIN_PGVECTOR
                else "Install pgvector 0.8 or newer on the server"
            )
            raise DatabaseError(f"pgvector {installed} is too old; photosearch needs >= 0.8.0. {hint}.")
        return installed


def _configure(conn: psycopg.Connection) -> None:
    register_vector(conn)


@dataclass
class Database:
    """A pool of connections to one photosearch database.

    `prepare_threshold=None`: psycopg's auto-prepared generic plans would ignore the per-query
    `SET LOCAL` planner settings the search planner relies on.
    """

    server: ServerInfo
    pool: ConnectionPool
    read_only: bool = False  # a replica standing in for a primary that does not answer
    # Set while the server is known to be down (db/watch.py in a running server): waiting for a connection
    # then fails at once instead of after the pool's timeout.
    down: bool = False

    @property
    def dsn(self) -> str:
        return self.server.dsn

    def _getconn(self) -> psycopg.Connection:
        deadline = time.monotonic() + POOL_TIMEOUT_S
        while True:
            if self.down:
                raise DatabaseError("the database is not available; it is being restarted, try again shortly")
            try:
                return self.pool.getconn(timeout=max(0.01, min(0.5, deadline - time.monotonic())))
            except PoolTimeout:
                if time.monotonic() >= deadline:
                    raise

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        conn = self._getconn()
        try:
            with self._writes_refused(), conn:  # a pooled connection: commits or rolls back, stays open
                yield conn
        finally:
            self.pool.putconn(conn)

    @contextmanager
    def cursor(self) -> Iterator[psycopg.Cursor]:
        """A dict-row cursor inside a transaction (committed on success)."""
        with self.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            yield cur

    @contextmanager
    def _writes_refused(self) -> Iterator[None]:
        """A write that reached a replica becomes one clear error instead of PostgreSQL's."""
        try:
            yield
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise ReadOnlyError(read_only_message(self.read_only)) from exc

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_pool(server: ServerInfo, max_size: int = 8) -> Database:
    pool = ConnectionPool(
        server.dsn,
        min_size=1,
        max_size=max_size,
        kwargs={"prepare_threshold": None},
        configure=_configure,
        open=True,
        name="photosearch",
    )
    pool.wait(timeout=30)
    return Database(server=server, pool=pool)


def open_database(settings: Settings, *, run_migrations: bool = True) -> Database:
    """Resolve the server, verify pgvector, apply migrations, open the pool.

    When the primary does not answer and read replicas are configured, the first replica that does is opened
    read-only: searches keep working, and writes fail with a message saying why."""
    server = resolve_server(settings)
    try:
        check_pgvector(server.dsn)
    except DatabaseError as exc:
        from photosearch.db.replicas import open_standing_in

        stand_in = open_standing_in(settings.database_replica_urls, exc)
        if stand_in is None:
            raise
        return stand_in
    if run_migrations:
        applied = migrate(server.dsn)
        from photosearch.db.embedding import adopt_index_type_on_create  # imports this module

        adopt_index_type_on_create(server.dsn, [m.version for m in applied], settings.vector_index_type)
    return connect_pool(server, max_size=settings.pool_max_size)
