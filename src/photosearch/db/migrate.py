"""Versioned SQL migrations: `migrations/NNN_name.sql`, applied in order, each in its own transaction,
recorded in `schema_migrations`. An advisory lock serialises concurrent starts so nothing applies twice."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

MIGRATION_LOCK_KEY = 0x70686F746F  # "photo": any constant shared by all photosearch processes
_NAME = re.compile(r"^(\d+)_([\w-]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    out = []
    for entry in resources.files("photosearch.db").joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    out.sort(key=lambda m: m.version)
    versions = [m.version for m in out]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return out


def applied_versions(conn: psycopg.Connection) -> set[int]:
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return set()
    return {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}


def migrate(dsn: str) -> list[Migration]:
    """Apply pending migrations; return the ones this call applied (empty when up to date)."""
    applied: list[Migration] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for mig in available_migrations():
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                )
                if mig.version in applied_versions(conn):
                    continue
                conn.execute(mig.sql)  # type: ignore[arg-type] - trusted file shipped with the package
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (mig.version, mig.name))
                applied.append(mig)
    return applied


def pending(dsn: str) -> list[Migration]:
    with psycopg.connect(dsn) as conn:
        done = applied_versions(conn)
    return [m for m in available_migrations() if m.version not in done]
