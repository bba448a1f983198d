"""SQL for users, API keys and libraries."""

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
            "SELECT u.id, u.name, u.email, u.is_admin, u.created_at,"
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
    """The first admin, created on first use so a single-person install needs no account set-up."""
    with db.cursor() as cur:
        cur.execute("SELECT id, name, email, is_admin FROM users WHERE is_admin ORDER BY created_at LIMIT 1")
        row = cur.fetchone()
    if row:
        return row
    try:
        return create_user(db, "admin", "admin@localhost", is_admin=True)
    except Conflict:
        return get_user(db, "admin@localhost")


def set_password_hash(db: Database, user_id: UUID, password_hash: str) -> None:
    with db.cursor() as cur:
        cur.execute("UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s", (password_hash, user_id))


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


# ---- libraries ---------------------------------------------------------------------------------


def create_library(
    db: Database,
    owner_id: UUID,
    name: str,
    import_paths: list[str],
    exclusion_patterns: list[str] | None = None,
) -> dict:
    with db.cursor() as cur:
        try:
            cur.execute(
                "INSERT INTO libraries (owner_id, name, import_paths, exclusion_patterns)"
                " VALUES (%s, %s, %s, %s) RETURNING *",
                (owner_id, name, import_paths, exclusion_patterns or []),
            )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(f"a library named {name!r} already exists") from exc
        return cur.fetchone()


def update_library_paths(db: Database, library_id: UUID, import_paths: list[str]) -> dict:
    with db.cursor() as cur:
        cur.execute(
            "UPDATE libraries SET import_paths = %s, updated_at = now() WHERE id = %s RETURNING *",
            (import_paths, library_id),
        )
        return cur.fetchone()


def list_libraries(db: Database, owner_id: UUID | None = None) -> list[dict]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT l.*, u.email AS owner_email,"
            " (SELECT count(*) FROM assets a WHERE a.library_id = l.id AND a.deleted_at IS NULL) AS assets"
            " FROM libraries l JOIN users u ON u.id = l.owner_id"
            " WHERE %(owner)s::uuid IS NULL OR l.owner_id = %(owner)s::uuid ORDER BY l.created_at",
            {"owner": owner_id},
        )
        return cur.fetchall()


def get_library(db: Database, ident: str | UUID, owner_id: UUID | None = None) -> dict:
    """By id or name; scoped to an owner when given."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT * FROM libraries WHERE (id::text = %(i)s OR name = %(i)s)"
            " AND (%(owner)s::uuid IS NULL OR owner_id = %(owner)s::uuid) ORDER BY created_at LIMIT 1",
            {"i": str(ident), "owner": owner_id},
        )
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no library {ident!r}")
    return row


def delete_library(db: Database, library_id: UUID) -> int:
    """Delete a library and (by cascade) its assets; returns how many assets went with it."""
    with db.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM assets WHERE library_id = %s", (library_id,))
        n = cur.fetchone()["n"]
        cur.execute("DELETE FROM libraries WHERE id = %s", (library_id,))
        return n


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
