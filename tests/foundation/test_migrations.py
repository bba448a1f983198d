"""Migrations on the real embedded server: apply once, no-op after, safe under concurrent starts."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
from psycopg import sql

from photosearch.db.migrate import applied_versions, available_migrations, migrate, pending
from photosearch.db.pool import check_pgvector
from photosearch.db.server import DatabaseError, with_dbname


def test_migrations_apply_on_empty_db_then_are_noops(empty_db_dsn: str) -> None:
    check_pgvector(empty_db_dsn)
    first = migrate(empty_db_dsn)
    assert [m.version for m in first] == [m.version for m in available_migrations()]
    assert pending(empty_db_dsn) == []
    assert migrate(empty_db_dsn) == []
    with psycopg.connect(empty_db_dsn) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"users", "api_keys", "libraries", "assets", "exif", "smart_search", "ingest_errors"} <= tables
        assert applied_versions(conn) == {m.version for m in available_migrations()}


def test_two_processes_migrating_at_once_apply_once(empty_db_dsn: str) -> None:
    check_pgvector(empty_db_dsn)
    code = "import sys; from photosearch.db.migrate import migrate; print(len(migrate(sys.argv[1])))"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, empty_db_dsn], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    counts = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        counts.append(int(out.strip()))
    n = len(available_migrations())
    assert sum(counts) == n, f"migrations applied {counts} times across processes, expected {n} in total"
    with psycopg.connect(empty_db_dsn) as conn:
        rows = conn.execute("SELECT version, count(*) FROM schema_migrations GROUP BY version").fetchall()
    assert all(c == 1 for _, c in rows) and len(rows) == n


def test_pgvector_check_refuses_instance_without_vector(pg_admin_dsn: str) -> None:
    """A database that cannot see the extension (PG18's extension_control_path) is refused clearly."""
    name = "t_novector"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET extension_control_path = '/nonexistent'").format(sql.Identifier(name))
        )
    try:
        with pytest.raises(DatabaseError, match=r"no pgvector extension.*Install pgvector >= 0\.8"):
            check_pgvector(with_dbname(pg_admin_dsn, name))
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(DatabaseError, match="cannot connect to PostgreSQL"):
        check_pgvector("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_check_reports_installed_version(db_dsn: str) -> None:
    version = check_pgvector(db_dsn)
    assert tuple(int(x) for x in version.split(".")[:2]) >= (0, 8)
