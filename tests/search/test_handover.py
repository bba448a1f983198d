"""A library handed to another user (db.libraries.give_library) is searched as the new owner's at once: in
PostgreSQL right away, and in the server's in-memory copy of the search lists once it reloads (the owner change
bumps search_version through the search tables' triggers, so the stale copy is never used meanwhile)."""

from __future__ import annotations

import numpy as np

from photosearch.db.libraries import give_library
from photosearch.db.pool import connect_pool
from photosearch.db.server import ServerInfo
from photosearch.search import PlannerConfig, SearchQuery, SearchService
from photosearch.search.lists import train_lists
from photosearch.search.resident import ResidentCache
from photosearch.search.synthetic import make_library
from tests.search.conftest import insert_library, synthetic_database

NO_EXACT = PlannerConfig(exact_max_rows=0)  # 600 rows: exact would be the right plan for all of them


def _owned(db, owner_id) -> set:  # noqa: ANN001
    with db.connection() as conn:
        return {r[0] for r in conn.execute("SELECT asset_id FROM smart_search WHERE owner_id = %s", (owner_id,))}


def _version(db) -> int:  # noqa: ANN001
    with db.connection() as conn:
        return int(conn.execute("SELECT value FROM system_metadata WHERE key = 'search_version'").fetchone()[0])


def test_a_handed_over_library_is_the_new_owners_in_postgres_and_in_memory(pg_admin_dsn: str) -> None:
    with synthetic_database(pg_admin_dsn, "h") as (dsn, _):
        db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=3)
        try:
            lib = make_library(600, 32, seed=7, event_size=20)
            owners = insert_library(db, lib)
            train_lists(db, lists=4, min_rows=0)
            resident = ResidentCache(db, 1 << 30, min_interval=0.0)
            resident.load()
            service = SearchService(db, config=NO_EXACT, resident=resident)
            giver, taker = lib.owner_names[0], lib.owner_names[1]
            users = {n: {"id": owners[n], "is_admin": False, "name": n} for n in (giver, taker)}
            q = np.random.default_rng(2).standard_normal(32).astype(np.float32)
            query = SearchQuery(vector=(q / np.linalg.norm(q)).tolist(), k=1000, with_deleted=True)

            def found(name: str) -> tuple[set, str]:
                page = service.search(query, users[name])
                return {h.id for h in page.items}, page.plan.strategy

            gives, takes = _owned(db, owners[giver]), _owned(db, owners[taker])
            assert gives and takes and found(taker) == (takes, "memory")
            with db.connection() as conn:
                library_id = conn.execute("SELECT id FROM libraries WHERE owner_id = %s", (owners[giver],)).fetchone()[
                    0
                ]

            v0 = _version(db)
            moved = give_library(db, library_id, owners[taker])
            assert moved["assets"] == len(gives) and _version(db) > v0
            ids, strategy = found(taker)  # the copy is stale: PostgreSQL answers, with the new owner's photos
            assert ids == gives | takes and strategy != "memory"
            assert found(giver)[0] == set()

            resident.wait(30)
            assert resident.load() is not None
            assert found(taker) == (gives | takes, "memory")  # the reloaded copy holds the new owner
            ids, strategy = found(giver)
            assert ids == set()
        finally:
            db.close()
