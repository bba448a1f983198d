"""Read replicas with a real streaming replica of an embedded server (`db replica create`'s code path):
searches are served by the replica; a photo deleted or given to another owner on the primary never comes back
from it, even while its replay is paused; with the primary gone, searches keep working on the replica and writes
get a clear read-only error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from photosearch.config import Settings
from photosearch.db.accounts import create_user
from photosearch.db.asset_access import recent_assets, update_asset_flags
from photosearch.db.embedding import create_vector_index
from photosearch.db.migrate import migrate
from photosearch.db.pool import Database, check_pgvector, connect_pool, open_database
from photosearch.db.replica import create_replica, stop_replica
from photosearch.db.replicas import ReplicaSet
from photosearch.db.server import ReadOnlyError, ServerInfo, start_embedded, stop_embedded, with_dbname
from photosearch.search.query import SearchQuery
from photosearch.search.service import SearchService
from photosearch.search.synthetic import make_library
from tests.search.conftest import insert_library

N, DIM = 600, 32


@pytest.fixture(scope="module")
def servers() -> Iterator[dict]:
    base = Path(tempfile.mkdtemp(prefix="psrep-", dir="/tmp"))  # short: the servers' sockets live in these folders
    admin = start_embedded(base / "p")
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE replicated")
        primary = with_dbname(admin, "replicated")
        check_pgvector(primary)
        migrate(primary)
        lib = make_library(N, DIM, seed=3, event_size=30)
        with connect_pool(ServerInfo(primary, False, None), max_size=2) as db:
            owners = insert_library(db, lib)
            with db.connection() as conn:
                create_vector_index(conn)
        replica = create_replica(primary, base / "r")
        yield {"base": base, "primary": primary, "replica": replica, "lib": lib, "owners": owners}
    finally:
        stop_replica(base / "r")
        stop_embedded(base / "p")
        shutil.rmtree(base, ignore_errors=True)


def _caught_up(primary: str, replica: str, timeout: float = 30) -> None:
    with psycopg.connect(primary, autocommit=True) as p:
        target = p.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + timeout
    with psycopg.connect(replica, autocommit=True) as r:
        while time.monotonic() < deadline:
            if r.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]:
                return
            time.sleep(0.1)
    raise AssertionError("the replica did not catch up")


def _owner_of(dsn: str, asset_id) -> object:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT owner_id FROM assets WHERE id = %s", (asset_id,)).fetchone()
    return row[0] if row else None


def test_replica_serves_searches_and_never_returns_what_the_primary_changed(servers, tmp_path) -> None:
    lib, owners = servers["lib"], servers["owners"]
    primary = connect_pool(ServerInfo(servers["primary"], False, None), max_size=4)
    replicas = ReplicaSet.open(primary, [servers["replica"]])
    service, on_primary = SearchService(primary, replicas=replicas), SearchService(primary)
    allen = {"id": owners["Allen"], "is_admin": False, "name": "Allen"}
    _caught_up(servers["primary"], servers["replica"])
    live = np.flatnonzero(~lib.deleted & (np.array(lib.owner_names)[lib.owner] == "Allen"))
    query = SearchQuery(vector=lib.embeddings[live[0]].tolist(), k=10)

    page = service.search(query, allen)
    assert page.plan.served_by == "replica"
    assert [h.id for h in page.items] == [h.id for h in on_primary.search(query, allen).items]
    assert len(page.items) == 10

    # The replica lags (replay paused); on the primary the best hit is deleted and the second given to Beth.
    gone, moved = page.items[0].id, page.items[1].id
    with psycopg.connect(servers["replica"], autocommit=True) as r:
        r.execute("SELECT pg_wal_replay_pause()")
    with psycopg.connect(servers["primary"], autocommit=True) as p:
        p.execute("DELETE FROM assets WHERE id = %s", (gone,))
        p.execute("UPDATE assets SET owner_id = %s WHERE id = %s", (owners["Beth"], moved))
    time.sleep(0.3)
    assert _owner_of(servers["replica"], gone) == owners["Allen"]  # the replica still has the old state
    assert _owner_of(servers["replica"], moved) == owners["Allen"]
    lagging = service.search(query, allen)
    ids = [h.id for h in lagging.items]
    assert gone not in ids and moved not in ids and len(ids) == 10
    assert lagging.plan.served_by == "primary" and lagging.plan.fallback
    timeline = replicas.read(lambda db: recent_assets(db, allen["id"], N, 0), allen["id"])
    assert gone not in {r["id"] for r in timeline} and moved not in {r["id"] for r in timeline}

    with psycopg.connect(servers["replica"], autocommit=True) as r:
        r.execute("SELECT pg_wal_replay_resume()")
    _caught_up(servers["primary"], servers["replica"])
    again = service.search(query, allen)
    assert again.plan.served_by == "replica" and [h.id for h in again.items] == ids

    # The primary goes away: searches carry on from the replica; writes say the database is read-only.
    primary_pgdata = servers["base"] / "p"
    stop_embedded(primary_pgdata)
    try:
        down = service.search(query, allen)
        assert [h.id for h in down.items] == ids and down.plan.served_by.startswith("replica (unconfirmed")
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=servers["primary"],
            database_replica_urls=[servers["replica"]],
        )
        stand_in: Database = open_database(settings)
        assert stand_in.read_only
        assert [h.id for h in SearchService(stand_in).search(query, allen).items] == ids
        with pytest.raises(ReadOnlyError, match="read-only"):
            update_asset_flags(stand_in, ids[0], allen["id"], is_favorite=True)
        with pytest.raises(ReadOnlyError, match="read-only"):
            create_user(stand_in, "zed", "zed@example.org")
        stand_in.close()
        env = {
            **os.environ,
            "PHOTOSEARCH_DATA_DIR": str(tmp_path / "data"),
            "PHOTOSEARCH_DATABASE_URL": servers["primary"],
            "PHOTOSEARCH_DATABASE_REPLICA_URLS": f'["{servers["replica"]}"]',
            "PHOTOSEARCH_CONFIG": str(tmp_path / "none.toml"),
        }
        out = subprocess.run(
            [sys.executable, "-m", "photosearch", "users", "add", "zed@example.org"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 1 and "read-only" in out.stderr and "Traceback" not in out.stderr, out.stderr
    finally:
        replicas.close()
        primary.close()
        start_embedded(primary_pgdata)  # the fixture stops it
