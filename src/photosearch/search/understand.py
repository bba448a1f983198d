"""One search box, understood (first step: places). With `understand`, a text query that names a city, state or
country of the user's photos ("dog in Kyoto") also filters by it, as if `--city Kyoto` had been given, and the plan
says so. The CLIP text stays whole (the place's look still helps the ranking); a filter the caller set wins.
The derived filter is an ordinary filter, so the search stays complete (min(k, matches))."""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING
from uuid import UUID

from photosearch.search.query import SearchQuery

if TYPE_CHECKING:
    from photosearch.search.service import SearchPage, SearchService

PLACE_KINDS = ("city", "state", "country")
_lock = threading.Lock()
_cache: dict[tuple, dict[str, list[str]]] = {}


def _places(service: SearchService, scope: list[UUID] | None) -> dict[str, list[str]]:
    """Distinct place names of the photos in scope, longest first; cached until an embedding or a place changes
    (search_version)."""
    from photosearch.db import search as sq
    from photosearch.search.service import _autocommit

    with service.db.connection() as conn, _autocommit(conn):
        version = sq.begin_search(conn).search_version
        key = (version, tuple(sorted(scope)) if scope is not None else None)
        with _lock:
            if key in _cache:
                return _cache[key]
        rows = conn.execute(
            "SELECT DISTINCT city, state, country FROM search_ivf"
            " WHERE (%(o)s::uuid[] IS NULL OR owner_id = ANY(%(o)s::uuid[]))",
            {"o": scope},
        ).fetchall()
    names = {
        kind: sorted({r[i] for r in rows if r[i]}, key=lambda n: (-len(n), n)) for i, kind in enumerate(PLACE_KINDS)
    }
    with _lock:
        if len(_cache) > 64:
            _cache.clear()
        _cache[key] = names
    return names


def derive_places(text: str, names: dict[str, list[str]]) -> dict[str, str]:
    """Place filters the text names: whole words, any case; the longest name of each kind wins."""
    folded = text.casefold()
    found: dict[str, str] = {}
    for kind in PLACE_KINDS:
        for name in names.get(kind, []):
            if re.search(r"(?<!\w)" + re.escape(name.casefold()) + r"(?!\w)", folded):
                found[kind] = name
                break
    return found


def understood_search(service: SearchService, query: SearchQuery, user: dict) -> SearchPage:
    from photosearch.search.service import _autocommit

    assert query.text is not None
    with service.db.connection() as conn, _autocommit(conn):
        scope = service.owner_scope(conn, query, user)
    derived = {k: v for k, v in derive_places(query.text, _places(service, scope)).items() if getattr(query, k) is None}
    page = service.search(query.model_copy(update={**derived, "understand": False}), user)
    if derived:
        said = ", ".join(f'"{v}" as the {k}' for k, v in derived.items())
        page.plan.reason = f"understood {said} (filter); " + page.plan.reason
    return page
