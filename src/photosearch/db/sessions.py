"""SQL for "who is calling": browser sessions (web UI login) and API-key lookups for the REST API.

Tokens are random; only their sha256 is stored. Lookups are plain SELECTs; the last-seen/last-used
timestamps are written at most once a minute, so a busy client does not cost a WAL flush per request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from uuid import UUID

from photosearch.db.accounts import hash_api_key
from photosearch.db.pool import Database

TOUCH_INTERVAL = timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(db: Database, user_id: UUID, ttl: timedelta, user_agent: str | None = None) -> tuple[str, dict]:
    """Start a session; return (cookie token, row with csrf_token). The token is never stored in clear."""
    token = secrets.token_urlsafe(32)
    with db.cursor() as cur:
        cur.execute("DELETE FROM sessions WHERE expires_at < now()")  # cheap housekeeping on each login
        cur.execute(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, user_agent, expires_at)"
            " VALUES (%s, %s, %s, %s, now() + %s) RETURNING id, user_id, csrf_token, expires_at",
            (_hash(token), user_id, secrets.token_urlsafe(32), (user_agent or "")[:300], ttl),
        )
        return token, cur.fetchone()


def session_user(db: Database, token: str) -> dict | None:
    """The user behind a live session token (with the session's csrf_token), or None."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT u.id, u.name, u.email, u.is_admin, s.id AS session_id, s.csrf_token, s.last_seen_at"
            " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = %s AND s.expires_at > now()",
            (_hash(token),),
        )
        row = cur.fetchone()
        if row is not None:
            cur.execute(
                "UPDATE sessions SET last_seen_at = now() WHERE id = %s AND last_seen_at < now() - %s",
                (row["session_id"], TOUCH_INTERVAL),
            )
    return row


def api_key_user(db: Database, secret: str) -> dict | None:
    """The user owning a live (unrevoked) API key, or None. A plain read unless `last_used_at` is more
    than a minute old: writing on every request cost ~5 ms each."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT u.id, u.name, u.email, u.is_admin, k.id AS key_id, k.last_used_at FROM api_keys k"
            " JOIN users u ON u.id = k.user_id WHERE k.key_hash = %s AND k.revoked_at IS NULL",
            (hash_api_key(secret),),
        )
        row = cur.fetchone()
        if row is not None:
            cur.execute(
                "UPDATE api_keys SET last_used_at = now() WHERE id = %s"
                " AND (last_used_at IS NULL OR last_used_at < now() - %s)",
                (row["key_id"], TOUCH_INTERVAL),
            )
    return row


def delete_session(db: Database, token: str) -> None:
    with db.cursor() as cur:
        cur.execute("DELETE FROM sessions WHERE token_hash = %s", (_hash(token),))
