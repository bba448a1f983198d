"""Open a library file so that what is read lies inside the library's folders, whatever its path has turned
into since it was listed or checked: a file swapped for a symlink, a folder for a link out of the library.

Checking a path and then opening it leaves a window in which the path can change (time of check to time of
use). Here the check is made on the opened file itself: the last component is opened without following a
link (O_NOFOLLOW), and the real path of the open descriptor (/proc/self/fd, or where /proc is missing the
resolved path with the same device and inode) must lie inside one of the roots. Links to folders inside the
library stay allowed: only where the file really is counts.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable

_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)


class OutsideRoots(PermissionError):
    """The opened file lies outside every root (reached through a link out of the library)."""


class LinkRefused(OSError):
    """The path's last component is a symbolic link: links to files are never followed when reading."""


def real_roots(roots: Iterable[str]) -> tuple[str, ...]:
    """Each root resolved, ending in a separator (so `/photos` does not contain `/photos2`)."""
    return tuple(os.path.join(os.path.realpath(os.fsdecode(r)), "") for r in roots)


def is_inside(real: str, resolved_roots: Iterable[str]) -> bool:
    """Whether a resolved path is one of `real_roots` or below one."""
    return any(os.path.join(real, "").startswith(r) for r in resolved_roots)


def _fd_real_path(fd: int, path: str, st: os.stat_result) -> str:
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
        if not real.endswith(" (deleted)"):
            return real
    except OSError:
        pass
    real = os.path.realpath(path)  # no /proc: the resolved path must still name the opened file
    now = os.stat(real)
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
        raise OutsideRoots(errno.EACCES, "the file changed while it was opened", path)
    return real


def open_inside(path: str, roots: Iterable[str]) -> tuple[int, os.stat_result]:
    """A read-only descriptor of the regular file at `path` and its stat, if it lies inside `roots` (as given
    by `real_roots`). Raises LinkRefused for a link, OutsideRoots for a file outside, IsADirectoryError for
    anything that is not a regular file (a FIFO is opened non-blocking, so it cannot hang the reader), and the
    usual OSErrors (FileNotFoundError, PermissionError)."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            raise LinkRefused(errno.ELOOP, "a symbolic link to a file is not followed", path) from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", path)
        if not is_inside(_fd_real_path(fd, path, st), roots):
            raise OutsideRoots(errno.EACCES, "the file lies outside the library's folders", path)
        if _FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return fd, st
    except BaseException:
        os.close(fd)
        raise
