"""Atomic file writes: a temp file in the same folder, then `os.replace`, so a reader (a concurrent request, a
resumed run) sees the old file or the whole new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from photosearch.config import private_dir


def atomic_write(path: Path, write: Callable[[BinaryIO], object], *, private: bool = False) -> None:
    """Write `path` through `write(file)`; `private` makes missing parents 0700 (mkstemp makes the file 0600)."""
    if private:
        private_dir(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
