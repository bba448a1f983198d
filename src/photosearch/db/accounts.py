"""SQL for users, API keys and libraries."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import PurePath
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


# ---- libraries ---------------------------------------------------------------------------------


def _overlap(a: str, b: str) -> bool:
    pa, pb = PurePath(a), PurePath(b)
    return pa == pb or pa.is_relative_to(pb) or pb.is_relative_to(pa)


def check_overlap(cur: psycopg.Cursor, import_paths: list[str], library_id: UUID | None = None) -> None:
    """Refuse folders that are, contain, or sit inside another library's folder (symlinks resolved): the
    same file in two libraries would be indexed twice, possibly for two owners."""
    cur.execute("LOCK TABLE libraries IN SHARE ROW EXCLUSIVE MODE")  # two creations cannot both pass
    cur.execute(
        "SELECT l.name, l.import_paths, u.email FROM libraries l JOIN users u ON u.id = l.owner_id"
        " WHERE %(lib)s::uuid IS NULL OR l.id <> %(lib)s::uuid",
        {"lib": library_id},
    )
    for other in cur.fetchall():
        for theirs in other["import_paths"]:
            for mine in import_paths:
                if _overlap(os.path.realpath(mine), os.path.realpath(theirs)) or _overlap(mine, theirs):
                    how = "is" if os.path.realpath(mine) == os.path.realpath(theirs) else "overlaps"
                    raise Conflict(
                        f"folder {mine} {how} {theirs} of library {other['name']!r} (owner {other['email']});"
                        " a folder can belong to one library only"
                    )


def create_library(
    db: Database,
    owner_id: UUID,
    name: str,
    import_paths: list[str],
    exclusion_patterns: list[str] | None = None,
) -> dict:
    """Create a library; refused when a folder overlaps another library's (`check_overlap`)."""
    with db.cursor() as cur:
        check_overlap(cur, import_paths)
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
    """Replace a library's folders; a folder inside another of the same library is dropped (the outer one
    covers it); overlapping another library's is refused."""
    kept = [p for p in import_paths if not any(q != p and PurePath(p).is_relative_to(q) for q in import_paths)]
    with db.cursor() as cur:
        check_overlap(cur, kept, library_id)
        cur.execute(
            "UPDATE libraries SET import_paths = %s, updated_at = now() WHERE id = %s RETURNING *",
            (list(dict.fromkeys(kept)), library_id),
        )
        return cur.fetchone()


def give_library(db: Database, library_id: UUID, to_user_id: UUID) -> dict:
    """Hand a library and its photos to another user. Moving assets.owner_id reaches the search tables by
    trigger (migrations 011/013) and bumps search_version (042/046), so searches see the new owner at once.
    Refused when the receiver already has a library of that name or one of the same photos (same content)."""
    with db.cursor() as cur:
        cur.execute("SELECT * FROM libraries WHERE id = %s FOR UPDATE", (library_id,))
        lib = cur.fetchone()
        if lib is None:
            raise NotFound(f"no library {library_id}")
        if lib["owner_id"] == to_user_id:
            return {**lib, "assets": 0}
        cur.execute(
            "SELECT count(*) AS n FROM assets a JOIN assets b ON b.checksum = a.checksum AND b.owner_id = %s"
            " WHERE a.library_id = %s",
            (to_user_id, library_id),
        )
        dupes = cur.fetchone()["n"]
        if dupes:
            raise Conflict(
                f"the receiver already has {dupes} of library {lib['name']!r}'s photos (same content) in"
                " another library; remove them there first"
            )
        try:
            cur.execute(
                "UPDATE libraries SET owner_id = %s, updated_at = now() WHERE id = %s RETURNING *",
                (to_user_id, library_id),
            )
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(f"the receiver already has a library named {lib['name']!r}; rename one first") from exc
        row = cur.fetchone()
        cur.execute(
            "UPDATE assets SET owner_id = %s, updated_at = now() WHERE library_id = %s", (to_user_id, library_id)
        )
        return {**row, "assets": cur.rowcount}


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
