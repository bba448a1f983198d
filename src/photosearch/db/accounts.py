"""SQL for users, API keys and the installation's facts (libraries: db/libraries.py)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from photosearch.db.pool import Database


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


class SignUpClosed(PermissionError):
    """First-run sign-up is only open while no account has a password."""


# Indexing before any account exists gives the photos to this password-less placeholder; the first real
# account (CLI `users add` or the web's first-run sign-up) becomes admin, adopts all it owns, and replaces it.
PLACEHOLDER_EMAIL = "admin@localhost"


# ---- users -------------------------------------------------------------------------------------


def create_user(
    db: Database, name: str, email: str, *, is_admin: bool = False, password_hash: str | None = None
) -> dict:
    with db.cursor() as cur:
        try:
            cur.execute(
                "INSERT INTO users (name, email, is_admin, password_hash) VALUES (%s, %s, %s, %s)"
                " RETURNING id, name, email, is_admin, created_at",
                (name, email.strip().lower(), is_admin, password_hash),
            )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(f"a user with email {email!r} already exists") from exc
        return cur.fetchone()


def list_users(db: Database) -> list[dict]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT u.id, u.name, u.email, u.is_admin, u.password_hash IS NOT NULL AS can_log_in, u.created_at,"
            " (SELECT count(*) FROM assets a WHERE a.owner_id = u.id AND a.deleted_at IS NULL) AS assets"
            " FROM users u ORDER BY u.created_at"
        )
        return cur.fetchall()


def get_user(db: Database, ident: str | UUID) -> dict:
    """Find a user by id, email or name."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT id, name, email, is_admin, password_hash, created_at FROM users"
            " WHERE id::text = %s OR email = lower(%s) OR name = %s ORDER BY created_at LIMIT 1",
            (str(ident), str(ident), str(ident)),
        )
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no user {ident!r}")
    return row


def default_user(db: Database) -> dict:
    """The first admin. With no user yet, a password-less placeholder (`admin@localhost`) is created so
    indexing needs no account set-up; the first real account adopts what it owns (`create_account`)."""
    with db.cursor() as cur:
        cur.execute("SELECT id, name, email, is_admin FROM users WHERE is_admin ORDER BY created_at LIMIT 1")
        row = cur.fetchone()
    if row:
        return row
    try:
        return create_user(db, "admin", PLACEHOLDER_EMAIL, is_admin=True)
    except Conflict:
        return get_user(db, PLACEHOLDER_EMAIL)


def set_password_hash(db: Database, user_id: UUID, password_hash: str) -> None:
    """Set a password and end the user's sessions (a changed password logs everyone out)."""
    with db.cursor() as cur:
        cur.execute("UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s", (password_hash, user_id))
        cur.execute("DELETE FROM sessions WHERE user_id = %s", (user_id,))


# ---- the ownership story: first account, placeholder, admins --------------------------------------


def needs_sign_up(db: Database) -> bool:
    """True while no account has a password: nobody can log in yet, so the web offers first-run sign-up."""
    with db.cursor() as cur:
        cur.execute("SELECT NOT EXISTS (SELECT 1 FROM users WHERE password_hash IS NOT NULL) AS open")
        return cur.fetchone()["open"]


def _adopt(cur: psycopg.Cursor, from_id: UUID, to_id: UUID) -> dict:
    """Move everything `from_id` owns to `to_id`, then delete `from_id`. Changing assets.owner_id reaches
    smart_search and search_ivf through migration 011/013's triggers, which bump search_version (042/046),
    so the server's in-memory copy of the search lists reloads."""
    try:
        cur.execute("UPDATE libraries SET owner_id = %s, updated_at = now() WHERE owner_id = %s", (to_id, from_id))
        libraries = cur.rowcount
        cur.execute("UPDATE assets SET owner_id = %s, updated_at = now() WHERE owner_id = %s", (to_id, from_id))
        assets = cur.rowcount
    except psycopg.errors.UniqueViolation as exc:  # only an account that already owns photos can collide
        raise Conflict(
            f"the account already has a library named like one of {PLACEHOLDER_EMAIL}'s, or the same photos;"
            " hand them over one library at a time with `libraries give`"
        ) from exc
    cur.execute("UPDATE api_keys SET user_id = %s WHERE user_id = %s", (to_id, from_id))
    cur.execute("DELETE FROM users WHERE id = %s", (from_id,))
    return {"libraries": libraries, "assets": assets}


def create_account(
    db: Database,
    email: str,
    *,
    name: str | None = None,
    is_admin: bool = False,
    password_hash: str | None = None,
    sign_up: bool = False,
) -> dict:
    """Create a user by the ownership rules (immich's): the first real account is an admin and adopts what
    the placeholder `admin@localhost` owned (libraries, photos, keys); the placeholder goes away.

    `sign_up` is the web's first-run sign-up: refused once any account has a password; it makes an admin,
    and claims a password-less account of the same email instead of failing. The returned row carries
    `adopted` ({libraries, assets} taken over, or None) and `first` (whether it was the first account)."""
    email = email.strip().lower()
    with db.cursor() as cur:
        cur.execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")  # two first accounts cannot race
        cur.execute("SELECT id, email, password_hash FROM users")
        users = cur.fetchall()
        if sign_up and any(u["password_hash"] for u in users):
            raise SignUpClosed("sign-up is closed: an account with a password exists; log in instead")
        holder = next((u for u in users if u["email"] == PLACEHOLDER_EMAIL and not u["password_hash"]), None)
        first = all(u is holder for u in users)
        same = next((u for u in users if u["email"] == email), None)
        if same is not None and (sign_up or same is holder) and not same["password_hash"]:
            cur.execute(
                "UPDATE users SET name = coalesce(%s, name), is_admin = is_admin OR %s,"
                " password_hash = coalesce(%s, password_hash), updated_at = now() WHERE id = %s"
                " RETURNING id, name, email, is_admin, created_at",
                (name, is_admin or first or sign_up, password_hash, same["id"]),
            )
            row = cur.fetchone()
            adopted = _adopt(cur, holder["id"], row["id"]) if holder and holder is not same else None
            return {**row, "adopted": adopted, "first": first}
        if same is not None:
            raise Conflict(f"a user with email {email!r} already exists")
        cur.execute(
            "INSERT INTO users (name, email, is_admin, password_hash) VALUES (%s, %s, %s, %s)"
            " RETURNING id, name, email, is_admin, created_at",
            (name or email.split("@")[0], email, is_admin or first or sign_up, password_hash),
        )
        row = cur.fetchone()
        adopted = _adopt(cur, holder["id"], row["id"]) if holder else None
        return {**row, "adopted": adopted, "first": first}


def _other_admins(cur: psycopg.Cursor, user_id: UUID) -> int:
    cur.execute("SELECT count(*) AS n FROM users WHERE is_admin AND id <> %s", (user_id,))
    return cur.fetchone()["n"]


def set_admin(db: Database, ident: str | UUID, is_admin: bool) -> dict:
    """Grant or revoke admin; the last admin cannot be demoted (nobody could manage the server)."""
    user = get_user(db, ident)
    with db.cursor() as cur:
        cur.execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        if not is_admin and user["is_admin"] and _other_admins(cur, user["id"]) == 0:
            raise Conflict(f"{user['email']} is the last admin; make another user admin first")
        cur.execute(
            "UPDATE users SET is_admin = %s, updated_at = now() WHERE id = %s"
            " RETURNING id, name, email, is_admin, created_at",
            (is_admin, user["id"]),
        )
        return cur.fetchone()


def owned_counts(db: Database, user_id: UUID) -> dict:
    """What removing a user would take with it."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT (SELECT count(*) FROM libraries WHERE owner_id = %(u)s) AS libraries,"
            " (SELECT count(*) FROM assets WHERE owner_id = %(u)s) AS assets",
            {"u": user_id},
        )
        return cur.fetchone()


def delete_user(db: Database, ident: str | UUID) -> dict:
    """Delete a user with their sessions, keys, libraries and index entries (files on disk stay).
    Refused for the last admin. Returns the user row with the counts removed."""
    user = get_user(db, ident)
    with db.cursor() as cur:
        cur.execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
        if user["is_admin"] and _other_admins(cur, user["id"]) == 0:
            raise Conflict(f"{user['email']} is the last admin and cannot be removed; make another user admin first")
        cur.execute(
            "SELECT (SELECT count(*) FROM libraries WHERE owner_id = %(u)s) AS libraries,"
            " (SELECT count(*) FROM assets WHERE owner_id = %(u)s) AS assets",
            {"u": user["id"]},
        )
        counts = cur.fetchone()
        cur.execute("DELETE FROM users WHERE id = %s", (user["id"],))
    return {"id": user["id"], "email": user["email"], **counts}


# ---- API keys ----------------------------------------------------------------------------------

KEY_PREFIX = "psk_"


def hash_api_key(secret: str) -> str:
    """Keys are 256-bit random, so a fast hash is safe (no dictionary to attack); sha256 keeps lookups cheap."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(db: Database, user_id: UUID, name: str) -> tuple[dict, str]:
    """Create a key; return (row, secret). The secret is shown once and never stored."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO api_keys (user_id, name, prefix, key_hash) VALUES (%s, %s, %s, %s)"
            " RETURNING id, user_id, name, prefix, created_at",
            (user_id, name, secret[:10], hash_api_key(secret)),
        )
        return cur.fetchone(), secret


def list_api_keys(db: Database, user_id: UUID) -> list[dict]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys"
            " WHERE user_id = %s ORDER BY created_at",
            (user_id,),
        )
        return cur.fetchall()


def revoke_api_key(db: Database, user_id: UUID, key_id: str) -> None:
    with db.cursor() as cur:
        cur.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE user_id = %s AND (id::text = %s OR prefix = %s)"
            " AND revoked_at IS NULL",
            (user_id, key_id, key_id),
        )
        if cur.rowcount == 0:
            raise NotFound(f"no active API key {key_id!r}")


# ---- installation facts ------------------------------------------------------------------------


def embedding_info(db: Database) -> dict[str, Any]:
    with db.cursor() as cur:
        cur.execute("SELECT value FROM system_metadata WHERE key = 'embedding'")
        row = cur.fetchone()
    return row["value"] if row else {}


def status(db: Database) -> dict[str, Any]:
    with db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT current_setting('server_version') AS postgres,"
            " (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector,"
            " (SELECT count(*) FROM assets WHERE deleted_at IS NULL) AS assets,"
            " (SELECT count(*) FROM smart_search) AS embeddings,"
            " (SELECT count(*) FROM users) AS users,"
            " (SELECT count(*) FROM libraries) AS libraries,"
            " (SELECT count(*) FROM ingest_errors) AS ingest_errors,"
            " (SELECT max(version) FROM schema_migrations) AS schema_version,"
            " pg_database_size(current_database()) AS database_bytes"
        )
        return cur.fetchone()
