"""Shared fixtures: one real embedded PostgreSQL per test session, a fresh database per test.

No mocks: every test that needs a database gets its own migrated database on the real server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from photosearch.config import Settings
from photosearch.db.embedded_root import discard_relocated
from photosearch.db.migrate import migrate
from photosearch.db.pool import Database, check_pgvector, connect_pool
from photosearch.db.server import ServerInfo, start_embedded, stop_embedded, with_dbname

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PHOTOS = SHARED / "testdata" / "photos"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY_MODEL = FIXTURES / "tiny-clip"
TEST_OUTPUT = Path(os.environ.get("PHOTOSEARCH_TEST_OUTPUT", ROOT / "test-output"))


@pytest.fixture(scope="session")
def photos_dir() -> Path:
    assert PHOTOS.is_dir(), f"test photos not found at {PHOTOS} (../shared must sit beside the checkout)"
    return PHOTOS


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    assert (TINY_MODEL / "config.json").exists(), "tiny CLIP fixture missing: run scripts/make_tiny_clip.py"
    return TINY_MODEL


@pytest.fixture(scope="session")
def test_output() -> Path:
    TEST_OUTPUT.mkdir(parents=True, exist_ok=True)
    return TEST_OUTPUT


@pytest.fixture(scope="session")
def servers_dir() -> Iterator[Path]:
    """Where this run's embedded servers live: a folder of its own in the system temp dir, not under pytest's
    per-user temp (`pytest-of-root`), which another pytest run resets to 0700 and so locks the `pgserver` user
    (the database's owner when tests run as root) out of every server inside it."""
    path = Path(tempfile.mkdtemp(prefix="photosearch-test-"))
    path.chmod(0o711)  # our own folder: `pgserver` may pass through to the data dirs inside, nobody may list it
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _remove_server(data_dir: Path) -> None:
    stop_embedded(data_dir / "pgdata")
    discard_relocated(data_dir / "pgdata")


@pytest.fixture(scope="session")
def pg_admin_dsn(servers_dir: Path) -> Iterator[str]:
    """A real embedded server for the whole session (admin DSN to the `postgres` database)."""
    data_dir = servers_dir / "session"
    dsn = start_embedded(data_dir / "pgdata")
    yield dsn
    _remove_server(data_dir)


@pytest.fixture
def server_data_dir(servers_dir: Path) -> Iterator[Path]:
    """A fresh data dir for a test that starts its own embedded server (via the CLI, say); the server is
    stopped and its files removed afterwards."""
    data_dir = Path(tempfile.mkdtemp(dir=servers_dir))
    yield data_dir
    _remove_server(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)


def _create_database(admin_dsn: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def _drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def empty_db_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """DSN of a brand-new, unmigrated database (dropped after the test)."""
    name = _create_database(pg_admin_dsn)
    yield with_dbname(pg_admin_dsn, name)
    _drop_database(pg_admin_dsn, name)


@pytest.fixture
def db_dsn(empty_db_dsn: str) -> str:
    """DSN of a fresh, migrated database."""
    check_pgvector(empty_db_dsn)
    migrate(empty_db_dsn)
    return empty_db_dsn


@pytest.fixture
def db(db_dsn: str) -> Iterator[Database]:
    database = connect_pool(ServerInfo(dsn=db_dsn, embedded=False, pgdata=None), max_size=4)
    yield database
    database.close()


@pytest.fixture
def settings(tmp_path: Path, db_dsn: str, tiny_model_dir: Path) -> Settings:
    """Settings pointing at this test's database, a temp data dir and the tiny test model."""
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_dsn,
        models_dir=tiny_model_dir.parent,
        model_name=tiny_model_dir.name,
        threads=2,
    )


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for running the real `photosearch` CLI in a subprocess against this test's database."""
    env = dict(os.environ)
    env.update(
        PHOTOSEARCH_DATA_DIR=str(settings.data_dir),
        PHOTOSEARCH_DATABASE_URL=settings.database_url or "",
        PHOTOSEARCH_MODELS_DIR=str(settings.model_cache_dir),
        PHOTOSEARCH_MODEL_NAME=settings.model_name,
        PHOTOSEARCH_THREADS="2",
        PHOTOSEARCH_CONFIG=str(settings.data_dir / "no-config.toml"),
    )
    return env
