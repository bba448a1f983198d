"""One synthetic library per test module (read-only tests share it): 4,000 clustered 256-d embeddings with
owners, dates, cameras, places and flags, inserted through `photosearch.db.search_synthetic.bulk_insert_synthetic`."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import psycopg
import pytest
from psycopg import sql

from photosearch.db.accounts import create_user
from photosearch.db.embedding import create_vector_index, drop_vector_index, ensure_embedding_model
from photosearch.db.migrate import migrate
from photosearch.db.pool import Database, check_pgvector, connect_pool
from photosearch.db.search_synthetic import bulk_insert_synthetic
from photosearch.db.server import ServerInfo, with_dbname
from photosearch.search.lists import train_lists
from photosearch.search.resident import ResidentCache
from photosearch.search.synthetic import SyntheticLibrary, make_library

N_ROWS = 4000
DIM = 256

# File names with characters that break naive SQL or LIKE handling; given to the first rows of the library.
TRICKY_NAMES = ["it's 100%_done.jpg", "semi;colon -- DROP TABLE assets;.jpg", "C:\\photos\\back.jpg", "Ōsaka 雪.jpg"]


@dataclass
class SearchFixture:
    db: Database
    lib: SyntheticLibrary
    owners: dict[str, uuid.UUID]  # synthetic owner name -> user id
    admin: dict
    resident: ResidentCache | None = None  # the library's vectors in memory, loaded (as `photosearch serve` keeps them)

    def user(self, name: str) -> dict:
        return {"id": self.owners[name], "is_admin": False, "name": name}


@pytest.fixture(scope="module", params=["plain", "lists"])
def search_fixture(pg_admin_dsn: str, request: pytest.FixtureRequest) -> Iterator[SearchFixture]:
    """The library twice: without search lists (small libraries), and with 63 trained lists (large ones)."""
    yield from _library_fixture(pg_admin_dsn, lists=request.param == "lists")


@pytest.fixture(scope="module")
def lists_fixture(pg_admin_dsn: str) -> Iterator[SearchFixture]:
    """The library with trained search lists only."""
    yield from _library_fixture(pg_admin_dsn, lists=True)


def _library_fixture(pg_admin_dsn: str, *, lists: bool) -> Iterator[SearchFixture]:
    with synthetic_database(pg_admin_dsn, "s") as (dsn, _):
        db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=4)
        lib = make_library(N_ROWS, DIM, seed=7, event_size=40)
        lib.file_names[: len(TRICKY_NAMES)] = TRICKY_NAMES
        owners = insert_library(db, lib)
        with db.connection() as conn:
            create_vector_index(conn)
        if lists:
            train_lists(db, min_rows=0)
        admin = create_user(db, "root", "root@example.org", is_admin=True)
        resident = ResidentCache(db, 1 << 30)
        resident.load()
        try:
            yield SearchFixture(db=db, lib=lib, owners=owners, admin=admin, resident=resident)
        finally:
            db.close()


@contextmanager
def synthetic_database(pg_admin_dsn: str, prefix: str) -> Iterator[tuple[str, str]]:
    """A fresh, migrated database for a module's shared library: (dsn, name), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        dsn = with_dbname(pg_admin_dsn, name)
        check_pgvector(dsn)
        migrate(dsn)
        yield dsn, name
    finally:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def insert_library(db: Database, lib: SyntheticLibrary) -> dict[str, uuid.UUID]:
    """Make the database ready for `lib`'s dimension and COPY it in; returns {owner name: user id}.

    The HNSW index is dropped for the load and built once afterwards, as a bulk ingest does: grown row by row it
    took 40 of a 20k-row fixture's 100 s."""
    ensure_embedding_model(db, "synthetic", lib.embeddings.shape[1])
    with db.connection() as conn:
        drop_vector_index(conn)
        owners = bulk_insert_synthetic(conn, lib)
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")  # the graph fits in memory: a faster build
        create_vector_index(conn)
        conn.commit()
    return owners


def run_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    """The real `photosearch` CLI in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "photosearch", *args], env=env, capture_output=True, text=True, timeout=120
    )


def cli_json(env: dict, *args: str) -> dict:
    """`photosearch --json ARGS`, which must succeed; its parsed output."""
    proc = run_cli(env, "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def brute_force(lib: SyntheticLibrary, mask: np.ndarray, q: np.ndarray, k: int, exclude: int | None = None) -> list:
    """Reference top-k ids by cosine distance among rows where mask is True."""
    idx = np.nonzero(mask)[0]
    if exclude is not None:
        idx = idx[idx != exclude]
    d = 1.0 - lib.embeddings[idx] @ (q / np.linalg.norm(q))
    order = np.argsort(d, kind="stable")[:k]
    return [lib.ids[i] for i in idx[order]]
