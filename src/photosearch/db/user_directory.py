"""The users the search service resolves owner filters against, read whole with the counter that keys the copy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

import psycopg

from photosearch.db.counters import counter_sql, counter_value


@dataclass(frozen=True)
class UserDirectory:
    """Every user's id, e-mail and name (oldest first), as of `version` (system_metadata.users_version): the
    search service resolves owner filters from this copy instead of a round trip per search."""

    version: int | None
    users: list[tuple[UUID, str, str]]

    def resolve(self, idents: Iterable[str]) -> dict[str, UUID | None]:
        """Map each user id / e-mail / name to a user id (None when unknown); the oldest user wins a tie."""
        out: dict[str, UUID | None] = {}
        for ident in idents:
            lowered = ident.lower()
            out[ident] = next(
                (uid for uid, email, name in self.users if str(uid) == lowered or email == lowered or name == ident),
                None,
            )
        return out

    def ids(self) -> list[UUID]:
        return sorted(uid for uid, _, _ in self.users)


def user_directory(conn: psycopg.Connection) -> UserDirectory:
    """All users and the version they are at, in one statement (one snapshot)."""
    row = conn.execute(
        f"SELECT {counter_sql('users_version')},"  # noqa: S608 - constant SQL
        " coalesce(array_agg(id ORDER BY created_at, id), '{}'),"
        " coalesce(array_agg(email ORDER BY created_at, id), '{}'),"
        " coalesce(array_agg(name ORDER BY created_at, id), '{}') FROM users"
    ).fetchone()
    return UserDirectory(version=counter_value(row[0]), users=list(zip(row[1], row[2], row[3], strict=True)))
