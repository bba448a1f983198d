"""Walk library roots: which files are photos, without hanging on symlink loops or choking on odd names.

Paths go to the database as text. File names that are not valid UTF-8 arrive from `os.fsdecode` with
lone surrogates (U+DC80..U+DCFF), which PostgreSQL cannot store; `db_path` maps them into a private-use
range (U+10FF80..U+10FFFF) and `fs_path` maps them back, so every path round-trips losslessly.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from photosearch.confine import is_inside, real_roots

# Extensions that are decoded without sniffing (content is still checked by the worker).
IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .jfif .png .webp .gif .bmp .dib .tif .tiff .heic .heif .hif .avif .jxl".split()
)
# Common non-image files: skipped without reading them.
SKIP_EXTENSIONS = frozenset(
    (
        ".xmp .txt .json .xml .md .html .htm .pdf .doc .docx .xls .csv .zip .gz .tar .7z .rar .db .ini .log"
        " .mp4 .mov .m4v .avi .mkv .webm .mts .m2ts .3gp .wmv .mpg .mpeg .mp3 .wav .aac .flac .m4a .ogg"
        " .aae .thm .lrv .dng .cr2 .cr3 .nef .arw .raf .orf .rw2 .pef .srw .psd .svg .py .exe .dll .so"
    ).split()
)
SNIFF_BYTES = 32
log = logging.getLogger(__name__)

_PUA_BASE = 0x10FF00  # U+DCxx <-> U+10FFxx


def db_path(path: str) -> str:
    """A filesystem path (from os.fsdecode) as storable text: lone surrogates → private-use code points."""
    if not any("\udc80" <= ch <= "\udcff" for ch in path):
        return path
    return "".join(chr(_PUA_BASE + (ord(ch) & 0xFF)) if "\udc80" <= ch <= "\udcff" else ch for ch in path)


def fs_path(text: str) -> str:
    """The inverse of `db_path`: the text from the database back to a path `open()` accepts."""
    if not any(ch >= "\U0010ff80" for ch in text):
        return text
    return "".join(chr(0xDC00 + (ord(ch) & 0xFF)) if "\U0010ff80" <= ch <= "\U0010ffff" else ch for ch in text)


def display_path(text: str) -> str:
    """A stored path for people: bytes that are not UTF-8 shown escaped (`caf\\xe9.jpg`), never as the
    private-use characters `db_path` stores them as."""
    if not any(ch >= "\U0010ff80" for ch in text):
        return text
    return os.fsencode(fs_path(text)).decode("utf-8", "backslashreplace")


def sniff_format(head: bytes) -> str | None:
    """The image format from the first bytes of a file, or None if it is not an image we decode."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:2] == b"BM" and len(head) >= 14:
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"heif"):
            return "HEIF"
        return None  # mp4/mov and friends
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "JXL"
    return None


@dataclass(frozen=True, slots=True)
class ScannedFile:
    path: str  # absolute, as from os.fsdecode (may hold surrogates)
    size: int
    mtime_ns: int


def _glob_to_regex(pattern: str) -> str:
    """immich-style globs: `**` spans directories, `*` and `?` stay within one, `[...]` classes pass through."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                out.append("[" + pattern[i + 1 : j].replace("\\", "\\\\") + "]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@lru_cache(maxsize=64)
def compile_exclusions(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for all patterns. A pattern without `/` matches a name at any depth (like .gitignore)."""
    parts = []
    for p in patterns:
        p = p.strip()
        if not p:
            continue
        if "/" not in p:
            p = "**/" + p
        parts.append(_glob_to_regex(p))
    if not parts:
        return None
    return re.compile("(?:" + "|".join(parts) + r")/?\Z")


def is_excluded(path: str, rx: re.Pattern[str] | None, *, is_dir: bool = False) -> bool:
    if rx is None:
        return False
    if rx.match(path):
        return True
    return is_dir and rx.match(path + "/") is not None


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def scan_roots(
    roots: Iterable[str],
    exclusion_patterns: Iterable[str] = (),
    *,
    include_hidden: bool = False,
    on_error: Callable[[str, str], None] | None = None,
) -> Iterator[ScannedFile]:
    """Yield candidate photo files under `roots`, depth first, each directory's entries sorted.

    Symlinked directories are followed once: a set of (device, inode) of visited directories stops
    loops and diamond links. A link (to a file or a folder) whose target lies outside every root is not
    followed: a library never reaches files its roots do not contain. Unreadable directories are reported
    through `on_error(path, reason)`.
    """
    rx = compile_exclusions(tuple(exclusion_patterns))
    visited: set[tuple[int, int]] = set()
    stack: list[str] = [os.path.abspath(os.fsdecode(r)) for r in reversed(list(roots))]
    resolved = real_roots(stack)
    while stack:
        d = stack.pop()
        try:
            st = os.stat(d)
        except OSError as exc:
            if on_error:
                on_error(d, f"cannot read folder: {exc.strerror or exc}")
            continue
        key = (st.st_dev, st.st_ino)
        if key in visited:
            continue
        visited.add(key)
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if on_error:
                on_error(d, f"cannot read folder: {exc.strerror or exc}")
            continue
        subdirs = []
        for e in entries:
            if not include_hidden and _is_hidden(e.name):
                continue
            try:
                if e.is_symlink() and not is_inside(os.path.realpath(e.path), resolved):
                    log.info("not following %s: its target lies outside the library's folders", e.path)
                    continue
                if e.is_dir():  # follows symlinks; loops are cut by `visited`
                    if not is_excluded(e.path, rx, is_dir=True):
                        subdirs.append(e.path)
                    continue
                if not e.is_file():
                    continue
                est = e.stat()
            except OSError:
                continue  # vanished or dangling symlink
            if is_excluded(e.path, rx):
                continue
            ext = os.path.splitext(e.name)[1].lower()
            if ext in SKIP_EXTENSIONS:
                continue
            if ext not in IMAGE_EXTENSIONS and not _sniff_path(e.path):
                continue
            if e.is_symlink():  # a link to a file inside the roots: the file is indexed at its real path
                continue
            yield ScannedFile(e.path, est.st_size, est.st_mtime_ns)
        stack.extend(reversed(subdirs))


def _sniff_path(path: str) -> bool:
    """Files with an unknown extension are photos only if their first bytes say so."""
    try:
        with open(path, "rb") as f:
            return sniff_format(f.read(SNIFF_BYTES)) is not None
    except OSError:
        return False
