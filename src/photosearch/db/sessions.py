"""SQL for browser sessions (web UI login). Tokens are random; only their sha256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from uuid import UUID

from photosearch.db.pool import Database


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
            "UPDATE sessions s SET last_seen_at = now() FROM users u"
            " WHERE s.token_hash = %s AND s.expires_at > now() AND u.id = s.user_id"
            " RETURNING u.id, u.name, u.email, u.is_admin, s.id AS session_id, s.csrf_token",
            (_hash(token),),
        )
        return cur.fetchone()


def delete_session(db: Database, token: str) -> None:
    with db.cursor() as cur:
        cur.execute("DELETE FROM sessions WHERE token_hash = %s", (_hash(token),))


def delete_user_sessions(db: Database, user_id: UUID) -> int:
    """End every session of a user (e.g. after a password change)."""
    with db.cursor() as cur:
        cur.execute("DELETE FROM sessions WHERE user_id = %s", (user_id,))
        return cur.rowcount
