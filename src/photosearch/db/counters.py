"""The version counters in `system_metadata` that key the search service's caches, read in the statements that
need them (one snapshot with what they describe): `users_version` (migration 040: every change to `users`),
`search_version` (041, 042, 044-046: an embedding or a held filter column changed) and `flags_version` (043, 044:
a favourite, trash, visibility, archive or offline flag changed)."""

from __future__ import annotations

from typing import Any, Literal

Counter = Literal["users_version", "search_version", "flags_version"]


def counter_sql(key: Counter) -> str:
    """A scalar subquery reading one counter (NULL before its migration bumped it), to put in a SELECT list."""
    return f"(SELECT value FROM system_metadata WHERE key = '{key}')"  # noqa: S608 - a Counter literal


def counter_value(value: Any) -> int | None:
    """The counter as read (jsonb number or NULL) as an int, None when not set."""
    return None if value is None else int(value)
