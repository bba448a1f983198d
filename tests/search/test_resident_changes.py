"""The in-memory copy follows changes by applying just the changed rows (migration 056's change log), with no
second copy in memory: a photo added, re-embedded, renamed, moved to another city or deleted is searched in
memory again right after the update, and results match numpy over the library as it now is."""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from photosearch.db.pool import Database, connect_pool
from photosearch.db.server import ServerInfo
from photosearch.search import PlannerConfig, SearchQuery, SearchService
from photosearch.search.lists import train_lists
from photosearch.search.resident import SPARE_ROWS, ResidentCache
from photosearch.search.synthetic import make_library, normalise
from tests.search.conftest import insert_library, synthetic_database

DIM = 32
ADMIN = {"id": None, "is_admin": True}


@pytest.fixture
def changing_db(pg_admin_dsn: str) -> Iterator[Database]:
    """A library of its own (the test changes it): 2,000 rows, 32-d, 8 trained lists."""
    with synthetic_database(pg_admin_dsn, "c") as (dsn, _):
        db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=3)
        insert_library(db, make_library(2000, DIM, seed=9, event_size=40))
        train_lists(db, lists=8, min_rows=0)
        try:
            yield db
        finally:
            db.close()


def _library(db: Database) -> tuple[list[uuid.UUID], np.ndarray]:
    with db.connection() as conn:
        rows = conn.execute("SELECT asset_id, embedding FROM smart_search").fetchall()
    return [r[0] for r in rows], np.stack([r[1].to_numpy() for r in rows]).astype(np.float32)


def test_changes_are_applied_to_the_copy_in_place(changing_db: Database) -> None:
    db = changing_db
    cache = ResidentCache(db, 1 << 30, min_interval=3600.0)  # a whole reload would wait an hour: only update
    first = cache.load()
    assert first is not None and first.store is not None and len(first.store) >= len(first.ids) * (1 + SPARE_ROWS) - 1
    service = SearchService(db, config=PlannerConfig(exact_max_rows=0), resident=cache)
    rng = np.random.default_rng(4)
    targets = normalise(rng.standard_normal((3, DIM)))
    with db.connection() as conn:
        ids = [r[0] for r in conn.execute("SELECT asset_id FROM smart_search ORDER BY asset_id LIMIT 4").fetchall()]
        # a new photo at targets[0]; photo 0 re-embedded at targets[1]; photo 1 deleted; photo 2 renamed and moved
        new = uuid.uuid4()
        conn.execute(
            "INSERT INTO assets (id, owner_id, library_id, type, original_path, original_file_name, checksum,"
            " file_size, file_created_at, file_modified_at, local_date_time, created_at, updated_at)"
            " SELECT %s, owner_id, library_id, type, original_path || '.new', 'brand new.jpg', %s, file_size,"
            " file_created_at, file_modified_at, local_date_time, created_at, updated_at FROM assets WHERE id = %s",
            (new, new.bytes, ids[3]),
        )
        conn.execute("INSERT INTO smart_search (asset_id, embedding) VALUES (%s, %s)", (new, targets[0]))
        conn.execute("UPDATE smart_search SET embedding = %s WHERE asset_id = %s", (targets[1], ids[0]))
        conn.execute("DELETE FROM assets WHERE id = %s", (ids[1],))
        conn.execute("UPDATE assets SET original_file_name = 'renamed zebra.jpg' WHERE id = %s", (ids[2],))
        conn.execute(
            "INSERT INTO exif (asset_id, city) VALUES (%s, 'Atlantis')"
            " ON CONFLICT (asset_id) DO UPDATE SET city = EXCLUDED.city",
            (ids[2],),
        )
        conn.commit()
    stale = service.search(SearchQuery(vector=targets[0].tolist(), k=5, with_deleted=True), ADMIN)
    assert stale.plan.strategy != "memory"  # the copy is behind: PostgreSQL alone until it is updated
    cache.wait(30)  # the search asked for the update, in the background
    tracemalloc.start()
    cache.update()  # (again, in this thread, measured: nothing more to apply, or the rest)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    held = cache.current
    assert held is not None and held.store is first.store  # the same vectors array: no second copy
    assert held.dead is not None and held.dead.sum() == 3 and len(held.ids) == len(first.ids) + 3
    assert peak < 0.2 * held.nbytes

    ids_now, vectors = _library(db)
    for i, target in enumerate(targets[:2]):
        page = service.search(SearchQuery(vector=target.tolist(), k=10, with_deleted=True), ADMIN)
        assert page.plan.strategy == "memory"
        truth = [ids_now[j] for j in np.argsort(-(vectors @ target))[:10]]
        assert [h.id for h in page.items] == truth
        assert page.items[0].id == (new if i == 0 else ids[0])
    q = targets[2].tolist()
    page = service.search(SearchQuery(vector=q, k=10, with_deleted=True), ADMIN)
    assert page.plan.strategy == "memory" and ids[1] not in {h.id for h in page.items}
    renamed = service.search(SearchQuery(vector=q, k=10, file_name_contains="ZEBRA"), ADMIN)
    assert [h.id for h in renamed.items] == [ids[2]] and renamed.plan.strategy == "memory"
    moved = service.search(SearchQuery(vector=q, k=10, city="Atlantis"), ADMIN)
    assert [h.id for h in moved.items] == [ids[2]]
    added = service.search(SearchQuery(vector=q, k=10, file_name_contains="brand new"), ADMIN)
    assert [h.id for h in added.items] == [new]


def test_without_room_the_copy_is_loaded_again_without_holding_two(changing_db: Database) -> None:
    db = changing_db
    cache = ResidentCache(db, 1 << 30, min_interval=0.0)
    first = cache.load()
    assert first is not None
    with db.connection() as conn:  # every row changes: more than the room left
        conn.execute("UPDATE smart_search SET embedding = embedding + embedding")
        conn.commit()
    held = cache.update()
    assert held is not None and held.store is not first.store and held.dead is None
    assert len(held.ids) == len(first.ids)
