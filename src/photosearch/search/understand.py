"""Reading a text query for the names of the user's own photos: places and cameras become filters ("dog in Kyoto"
= --city Kyoto; "sunset iPhone 13" = --model "iPhone 13"), folder names become text to look for. The names come
from the photos in scope (db/lexical.py: facets), cached until an embedding or a place changes (search_version).
The CLIP text stays whole (the place's look still helps the ranking); a filter the caller set wins. A derived
filter is an ordinary filter, so the search stays complete (min(k, matches))."""

from __future__ import annotations

import re
import threading
from uuid import UUID

import psycopg

from photosearch.db import lexical
from photosearch.db import search as sq

PLACE_KINDS = ("city", "state", "country")
CAMERA_KINDS = ("model", "make")
# A camera maker's name is also a word ("apple tree"): alone it filters only next to words like these.
_MAKE_CONTEXT = (
    r"(?:(?:shot|taken)\s+(?:on|with)|on|with|by|from)\s+(?:an?\s+|my\s+)?{m}"
    r"|{m}\s+(?:cameras?|phones?|photos?|pictures?|shots?)"
)
_lock = threading.Lock()
_cache: dict[tuple, dict[str, list[str]]] = {}


def names_in_scope(conn: psycopg.Connection, scope: list[UUID] | None) -> dict[str, list[str]]:
    """Distinct place, camera and folder names of the photos in scope, longest first."""
    version = sq.begin_search(conn).search_version
    key = (conn.info.dsn, version, tuple(sorted(scope)) if scope is not None else None)  # one entry per database
    with _lock:
        if key in _cache:
            return _cache[key]
    found = lexical.facets(conn, scope)
    names = {kind: sorted(values, key=lambda n: (-len(n), n)) for kind, values in found.items()}
    with _lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = names
    return names


def _named(name: str, folded: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(name.casefold()) + r"(?!\w)", folded) is not None


def derive_places(text: str, names: dict[str, list[str]]) -> dict[str, str]:
    """Place filters the text names: whole words, any case; the longest name of each kind wins."""
    folded = text.casefold()
    found: dict[str, str] = {}
    for kind in PLACE_KINDS:
        for name in names.get(kind, []):
            if _named(name, folded):
                found[kind] = name
                break
    return found


def derive_camera(text: str, names: dict[str, list[str]]) -> dict[str, str]:
    """Camera filters the text names: a model anywhere ("iPhone 13", "X-T4"); a maker ("Canon", or the first word
    of "NIKON CORPORATION") when the text is only that, or it comes with "shot on", "camera", "photos"..."""
    folded = text.casefold().strip()
    for model in names.get("model", []):
        if _named(model, folded):
            return {"model": model}
    for make in names.get("make", []):
        for said in dict.fromkeys((make, make.split()[0] if len(make.split()[0]) >= 4 else make)):
            m = re.escape(said.casefold())
            if folded == said.casefold() or re.search(_MAKE_CONTEXT.format(m=m), folded):
                return {"make": make}
    return {}


def folder_named(word: str, names: dict[str, list[str]]) -> str | None:
    """The folder of the user's photos this word names (any case), if any."""
    folded = word.casefold()
    return next((f for f in names.get("folder", []) if f.casefold() == folded), None)
