"""The search lists held in memory (search/resident.py): what the loader reads, when the copy counts as current
(migrations 041 and 042: search_version), the filters it checks itself, the budget, the background load, and the
fallbacks of the memory path."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from photosearch.api.context import AppContext
from photosearch.config import Settings
from photosearch.db.pool import Database, connect_pool
from photosearch.db.resident import AssetColumns, ResidentRows
from photosearch.db.server import ServerInfo
from photosearch.search import PlannerConfig, SearchQuery, SearchService
from photosearch.search.lists import train_lists
from photosearch.search.resident import (
    NAIVE_WIDEN,
    NONE_TAKEN,
    PG_EPOCH,
    HeldFilter,
    ResidentCache,
    ResidentLists,
    owner_prefix,
)
from photosearch.search.synthetic import make_library
from tests.search.conftest import SearchFixture, brute_force, insert_library, synthetic_database
from tests.search.reference import reference_mask

NO_EXACT = PlannerConfig(exact_max_rows=0)  # 600 rows: exact would be the right plan for all of them


@pytest.fixture
def small_db(pg_admin_dsn: str) -> Iterator[Database]:
    """A library of its own (these tests change it): 600 rows, 32-d, 4 trained lists."""
    with synthetic_database(pg_admin_dsn, "r") as (dsn, _):
        db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=3)
        insert_library(db, make_library(600, 32, seed=5, event_size=20))
        train_lists(db, lists=4, min_rows=0)
        try:
            yield db
        finally:
            db.close()


def _version(db: Database, key: str = "search_version") -> int:
    with db.connection() as conn:
        return int(conn.execute("SELECT value FROM system_metadata WHERE key = %s", (key,)).fetchone()[0])


def test_the_copy_holds_search_ivf_grouped_by_list(lists_fixture: SearchFixture) -> None:
    fx = lists_fixture
    held = fx.resident.current
    assert held is not None
    with fx.db.connection() as conn:
        rows = conn.execute("SELECT asset_id, list_id FROM search_ivf").fetchall()
    assert len(held.ids) == len(rows) == len(fx.lib)
    list_of = dict(rows)
    ids = [uuid.UUID(bytes=b) for b in held.ids.tolist()]
    for i in range(len(held.offsets) - 1):
        for asset in ids[held.offsets[i] : held.offsets[i + 1]]:
            assert list_of[asset] == i
    row_of = {asset: j for j, asset in enumerate(fx.lib.ids)}
    expected = fx.lib.embeddings[[row_of[a] for a in ids]]
    assert np.abs(held.vectors - expected).max() < 2e-3  # half precision, as search_ivf stores them
    assert held.offsets[2] == sum(1 for list_id in list_of.values() if list_id in (0, 1))  # lists 0 and 1 first
    # ... with each row's owner, date taken, city, camera, and the byte-wide attributes, as HeldFilter checks them
    with fx.db.connection() as conn:
        cols = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT s.asset_id, s.owner_id, s.local_date_time, hashtextextended(lower(s.city), 0),"
                " hashtextextended(lower(s.model), 0), coalesce(s.rating, -2), s.type = 'VIDEO',"
                " s.latitude IS NOT NULL AND s.longitude IS NOT NULL, s.is_archived, s.is_offline,"
                " s.library_id, s.latitude, s.longitude, a.created_at, lower(a.original_file_name)"
                " FROM search_ivf s JOIN assets a ON a.id = s.asset_id"
            ).fetchall()
        }
    for j, asset in enumerate(ids):
        owner, taken, city, model = cols[asset][:4]
        assert held.owners[j] == (0 if owner is None else owner_prefix(owner))
        assert held.taken[j] == (NONE_TAKEN if taken is None else (taken - PG_EPOCH) // timedelta(microseconds=1))
        assert held.texts["city"][j] == (city or 0) and held.texts["model"][j] == (model or 0)
    assert (held.texts["city"] != 0).any() and (held.texts["model"] != 0).any()
    assert len(set(held.owners.tolist())) == len(fx.lib.owner_names)
    attrs = {asset: row[4:9] for asset, row in cols.items()}
    names = ("rating", "video", "gps", "archived", "offline")
    got = zip(*(held.attributes[name].tolist() for name in names), strict=True)
    assert [attrs[a] for a in ids] == [tuple(x) for x in got]
    for name in names:
        assert len(set(held.attributes[name].tolist())) > 1, name
    # ... its library, coordinates (float32), when it was added, and its file name, lower-cased
    name_of = {int(r): i for i, r in enumerate(held.name_rows.tolist())}
    starts = np.concatenate([[0], held.name_ends[:-1] + 1])
    for j, asset in enumerate(ids):
        library, lat, lon, created, name = cols[asset][9:]
        assert held.columns["library"][j] == owner_prefix(library)
        for got, want in ((held.columns["latitude"][j], lat), (held.columns["longitude"][j], lon)):
            assert (np.isnan(got) and want is None) or abs(got - want) < 1e-4
        assert held.created[j] == (created - PG_EPOCH) // timedelta(microseconds=1)
        k = name_of[j]
        assert held.names[starts[k] : held.name_ends[k]].decode() == name


def test_a_copy_is_used_only_while_current(small_db: Database) -> None:
    db = small_db
    resident = ResidentCache(db, 1 << 30, min_interval=0.0)
    resident.load()
    service = SearchService(db, config=NO_EXACT, resident=resident)
    admin = {"id": None, "is_admin": True}
    with db.connection() as conn:
        target, vec = conn.execute("SELECT asset_id, embedding FROM smart_search ORDER BY asset_id LIMIT 1").fetchone()
    q = np.random.default_rng(1).standard_normal(32).astype(np.float32)
    q /= np.linalg.norm(q)
    query = SearchQuery(vector=q.tolist(), k=5, with_deleted=True)
    before = service.search(query, admin)
    assert before.plan.strategy == "memory"
    assert target not in {h.id for h in before.items}

    # Re-embed one photo as exactly the query: one statement, one bump; the copy is stale from then on.
    v0 = _version(db)
    with db.connection() as conn:
        conn.execute("UPDATE smart_search SET embedding = %s WHERE asset_id = %s", (q, target))
    assert _version(db) == v0 + 1
    stale = service.search(query, admin)
    assert stale.plan.strategy != "memory"  # PostgreSQL alone, until a new copy is loaded
    assert stale.items[0].id == target
    resident.wait(30)
    resident.load()
    fresh = service.search(query, admin)
    assert fresh.plan.strategy == "memory"
    assert fresh.items[0].id == target and fresh.items[0].distance == pytest.approx(0.0, abs=1e-5)

    # Changing a filter column (a favourite) does not make the copy stale: PostgreSQL applies the filters.
    with db.connection() as conn:
        conn.execute("UPDATE assets SET is_favorite = NOT is_favorite WHERE id = %s", (target,))
    assert _version(db) == v0 + 1
    assert service.search(query, admin).plan.strategy == "memory"

    # Removing the photo bumps the counter too; a stale copy's candidate would only drop out, but is not used.
    with db.connection() as conn:
        conn.execute("DELETE FROM assets WHERE id = %s", (target,))
    assert _version(db) > v0 + 1
    gone = service.search(query, admin)
    assert gone.plan.strategy != "memory" and target not in {h.id for h in gone.items}
    assert len(gone.items) == 5
    resident.wait(30)
    assert resident.load() is not None and len(resident.current.ids) == 599
    v1 = _version(db)
    with db.connection() as conn:
        conn.execute("UPDATE smart_search SET embedding = embedding + embedding")  # every row: one statement
    assert _version(db) == v1 + 1


def test_retraining_the_lists_makes_the_copy_stale(small_db: Database) -> None:
    resident = ResidentCache(small_db, 1 << 30, min_interval=3600.0)
    held = resident.load()
    service = SearchService(small_db, config=NO_EXACT, resident=resident)
    query = SearchQuery(vector=held.vectors[3].tolist(), k=5)
    assert service.search(query, {"id": None, "is_admin": True}).plan.strategy == "memory"
    train_lists(small_db, lists=6, min_rows=0, force=True)
    page = service.search(query, {"id": None, "is_admin": True})
    assert page.plan.strategy != "memory" and len(page.items) == 5
    assert resident.load() is not None and len(resident.current.offsets) == 7


def test_a_library_over_the_budget_is_not_held(small_db: Database) -> None:
    resident = ResidentCache(small_db, 1000)
    assert resident.load() is None
    assert resident.skipped and "MB allowed" in resident.skipped
    assert resident.status()["state"] == "over budget" and "MB allowed" in resident.status()["note"]
    page = SearchService(small_db, config=NO_EXACT, resident=resident).search(
        SearchQuery(vector=[1.0] + [0.0] * 31, k=7), {"id": None, "is_admin": True}
    )
    assert page.plan.strategy != "memory" and len(page.items) == 7


def test_too_few_candidates_passing_the_filter_plan_again_in_postgres(search_fixture: SearchFixture) -> None:
    """Hand over a single candidate: fewer pass the filter than the page needs, the retry is capped, so the
    search is planned again in PostgreSQL, and stays complete and exact."""
    fx = search_fixture
    cfg = PlannerConfig(
        memory_margin=0.001, memory_held_margin=0.001, memory_slack=0, memory_max_candidates=0, exact_max_rows=0
    )
    service = SearchService(fx.db, config=cfg, resident=fx.resident)
    q = fx.lib.embeddings[11]
    query = SearchQuery(vector=q.tolist(), k=10, city="Kyoto", strategy="memory")
    page = service.search(query, fx.admin)
    assert "in memory match the filters" in (page.plan.fallback or "")
    assert page.plan.strategy != "memory"
    mask = reference_mask(fx.lib, query)
    expected = brute_force(fx.lib, mask, q, 10)
    assert len(page.items) == min(10, int(mask.sum()))
    assert len({h.id for h in page.items} & set(expected)) >= 9


def test_a_second_batch_sized_by_the_filters_share_completes_the_page(search_fixture: SearchFixture) -> None:
    fx = search_fixture
    cfg = PlannerConfig(memory_margin=0.2, memory_slack=0, memory_max_candidates=4000, exact_max_rows=0)
    service = SearchService(fx.db, config=cfg, resident=fx.resident)
    q = fx.lib.embeddings[11]
    added = sorted(t + timedelta(days=i % 30) for i, t in enumerate(fx.lib.taken))  # as the fixture has them
    query = SearchQuery(vector=q.tolist(), k=20, updated_before=added[160], strategy="memory")  # ~4 %, not held
    page = service.search(query, fx.admin)
    assert page.plan.strategy == "memory" and page.plan.fallback is None
    first = int(np.ceil(0.2 * 20 / (page.plan.estimated_matches / page.plan.total_embeddings)))
    assert page.plan.pool > first  # the first batch fell short; the second, sized by what passed, did not
    assert page.plan.timings_ms["memory"] > 0
    expected = brute_force(fx.lib, reference_mask(fx.lib, query), q, 20)
    assert len(page.items) == 20
    assert len({h.id for h in page.items} & set(expected)) >= 19


def test_forcing_memory_without_a_copy_is_a_clear_error(search_fixture: SearchFixture) -> None:
    from photosearch.search import SearchError

    with pytest.raises(SearchError, match="not in memory"):
        SearchService(search_fixture.db).search(
            SearchQuery(vector=[0.1] * 256, strategy="memory"), search_fixture.admin
        )


def test_a_background_request_loads_once_and_is_throttled(small_db: Database) -> None:
    resident = ResidentCache(small_db, 1 << 30, min_interval=3600.0)
    assert resident.get(("nothing", -1)) is None  # not current: starts a load in the background
    resident.wait(30)
    assert resident.current is not None and resident.last_error is None
    first = resident.current
    resident.request()  # within min_interval: no new load
    resident.wait(30)
    assert resident.current is first
    status = resident.status()
    assert status["state"] == "loaded" and status["rows"] == 600 and status["loaded_at"] and status["mb"] > 0


def test_the_server_holds_the_lists_unless_told_not_to(small_db: Database, tmp_path) -> None:
    on = AppContext(Settings(data_dir=tmp_path, search_memory_mb=64), small_db, owns_db=False)
    assert on.search_service().resident is not None
    assert on.search_service().resident.budget_bytes == 64 * 2**20
    off = AppContext(Settings(data_dir=tmp_path, search_memory_mb=0), small_db, owns_db=False)
    assert off.search_service().resident is None
    assert Settings(data_dir=tmp_path).search_memory_bytes() > 0


def test_searches_stay_complete_while_the_copy_is_replaced(small_db: Database) -> None:
    """Two threads search while the main thread changes embeddings and swaps in new copies: every page is full
    and each search uses one copy throughout (the swap is a single assignment)."""
    import threading

    resident = ResidentCache(small_db, 1 << 30, min_interval=3600.0)
    resident.load()
    service = SearchService(small_db, config=NO_EXACT, resident=resident)
    admin = {"id": None, "is_admin": True}
    rng = np.random.default_rng(3)
    queries = rng.standard_normal((40, 32)).astype(np.float32)
    errors: list[BaseException] = []
    strategies: set[str] = set()
    stop = threading.Event()

    def search_loop() -> None:
        i = 0
        while not stop.is_set():
            try:
                page = service.search(SearchQuery(vector=queries[i % 40].tolist(), k=10), admin)
                assert len(page.items) == 10 and len({h.id for h in page.items}) == 10
                strategies.add(page.plan.strategy)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
                return
            i += 1

    threads = [threading.Thread(target=search_loop) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for round_ in range(4):
            with small_db.connection() as conn:
                conn.execute(
                    "UPDATE smart_search SET embedding = %s WHERE asset_id = (SELECT asset_id FROM smart_search"
                    " ORDER BY asset_id OFFSET %s LIMIT 1)",
                    (queries[round_], round_),
                )
            resident.load()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    assert "memory" in strategies  # the copy was current for some of the searches


def test_changing_a_held_column_makes_the_copy_stale(small_db: Database) -> None:
    """Owner, date taken, place and camera are held in memory (migration 042): changing one bumps search_version,
    from the asset or its EXIF row; a favourite or trashing (they bump flags_version, 043) or a re-training does not."""
    db = small_db
    with db.connection() as conn:
        target = conn.execute("SELECT asset_id FROM search_ivf ORDER BY asset_id LIMIT 1").fetchone()[0]
        other = conn.execute("SELECT id FROM users WHERE id <> (SELECT owner_id FROM assets WHERE id = %s) LIMIT 1",
                             (target,)).fetchone()[0]  # fmt: skip
    v0, f0 = _version(db), _version(db, "flags_version")
    with db.connection() as conn:
        conn.execute("UPDATE assets SET is_favorite = NOT is_favorite WHERE id = %s", (target,))
        conn.execute("UPDATE assets SET deleted_at = now() WHERE id = %s", (target,))
        conn.execute(
            "UPDATE assets SET deleted_at = deleted_at + interval '1 s' WHERE id = %s", (target,)
        )  # still trashed
        conn.execute("UPDATE assets SET deleted_at = NULL, visibility = 'hidden' WHERE id = %s", (target,))
        conn.execute("UPDATE assets SET visibility = 'timeline' WHERE id = %s", (target,))
        conn.execute("UPDATE assets SET is_archived = NOT is_archived WHERE id = %s", (target,))
        conn.execute("UPDATE assets SET is_offline = NOT is_offline WHERE id = %s", (target,))
    assert _version(db) == v0 and _version(db, "flags_version") == f0 + 6
    train_lists(db, lists=5, min_rows=0, force=True)  # every row's list changes
    assert _version(db) == v0
    with db.connection() as conn:
        conn.execute("UPDATE assets SET local_date_time = local_date_time + interval '1 day' WHERE id = %s", (target,))
    assert _version(db) == v0 + 1
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO exif (asset_id, city) VALUES (%s, 'Elsewhere')"
            " ON CONFLICT (asset_id) DO UPDATE SET city = EXCLUDED.city",
            (target,),
        )
    assert _version(db) == v0 + 2
    with db.connection() as conn:
        conn.execute("UPDATE assets SET owner_id = %s WHERE id = %s", (other, target))
    assert _version(db) == v0 + 3
    with db.connection() as conn:  # the camera, from EXIF
        conn.execute("UPDATE exif SET model = 'Another camera' WHERE asset_id = %s", (target,))
        conn.execute("UPDATE exif SET description = 'not held' WHERE asset_id = %s", (target,))
    assert _version(db) == v0 + 4

    def bumps(statement: str) -> int:
        before = _version(db)
        with db.connection() as conn:
            conn.execute(statement, (target,))
        return _version(db) - before

    # the rating, the GPS coordinates, the type (migrations 044, 046), the file name (045), when it was added (046)
    assert bumps("UPDATE assets SET original_file_name = 'renamed ' || original_file_name WHERE id = %s") == 1
    assert bumps("UPDATE exif SET rating = coalesce(rating, 0) + 1 WHERE asset_id = %s") == 1
    bumps("UPDATE exif SET latitude = 10, longitude = 20 WHERE asset_id = %s")
    assert bumps("UPDATE exif SET latitude = NULL WHERE asset_id = %s") == 1
    assert bumps("UPDATE exif SET longitude = 21 WHERE asset_id = %s") == 1  # the coordinates themselves (046)
    assert bumps("UPDATE assets SET created_at = created_at - interval '1 day' WHERE id = %s") == 1
    assert bumps("UPDATE assets SET updated_at = now() WHERE id = %s") == 0  # not held
    assert bumps("UPDATE assets SET type = CASE type WHEN 'IMAGE' THEN 'VIDEO' ELSE 'IMAGE' END WHERE id = %s") == 1
    resident = ResidentCache(db, 1 << 30, min_interval=0.0)
    held = resident.load()
    row = [uuid.UUID(bytes=b) for b in held.ids.tolist()].index(target)
    assert held.owners[row] == owner_prefix(other)
    with db.connection() as conn:
        assert held.texts["city"][row] == conn.execute("SELECT hashtextextended(lower('Elsewhere'), 0)").fetchone()[0]


NAMES = ["img_0001 copy.jpg", "ōsaka 雪.jpg", "img_0001.jpg", "img_0001.jpg", "it's 100%_done.jpg", "img_0002.jpg", ""]


def test_held_filters_let_a_superset_of_the_matches_through() -> None:
    """HeldFilter never drops a row SQL would match: a date without a time zone is read in the session's zone and
    widened by a few hours (by a day when the zone is not known), a photo without a date passes a `before` bound
    (SQL then drops it), and the owner and city compare by prefix and hash."""
    day = 86_400_000_000
    base = datetime(2020, 6, 1, tzinfo=UTC)
    at = int((base - PG_EPOCH) // timedelta(microseconds=1))
    owners = [uuid.uuid4() for _ in range(3)]
    ids = [uuid.uuid4() for _ in range(5)]
    held = ResidentLists.build(
        ResidentRows(
            key=("t", 1),
            ids=np.frombuffer(b"".join(i.bytes for i in ids), dtype="V16").copy(),
            vectors=np.eye(5, 4, dtype=np.float32),
            offsets=np.array([0, 5]),
            owners=np.array([owner_prefix(o) for o in owners] + [0, owner_prefix(owners[0])], dtype=np.int64),
            taken=np.array([at, at + day // 2, at + 3 * day, NONE_TAKEN, at - day // 2], dtype=np.int64),
            texts={"city": np.array([7, 7, 8, 0, 7], dtype=np.int64), "model": np.zeros(5, dtype=np.int64)},
            favorites=np.zeros(5, dtype=bool),
            live=np.array([True, True, True, True, False]),
            timeline=np.array([True, False, True, True, True]),
            flags_version=0,
            attributes={
                "rating": np.array([5, -2, -1, 3, 4], dtype=np.int8),
                **{name: np.array([True, False, False, True, False]) for name in ("video", "gps")},
                **{name: np.zeros(5, dtype=bool) for name in ("archived", "offline")},
            },
            columns={
                "library": np.array([owner_prefix(o) for o in owners] + [0, owner_prefix(owners[0])], dtype=np.int64),
                "latitude": np.array([47.37, 35.01, np.nan, -33.9, 47.5], dtype=np.float32),
                "longitude": np.array([8.54, 135.77, np.nan, 179.9, 8.54], dtype=np.float32),
            },
            assets=AssetColumns(  # in another order than the rows, as PostgreSQL sends them; one photo not held
                np.frombuffer(b"".join(i.bytes for i in (ids[4], ids[2], uuid.uuid4(), ids[0], ids[3], ids[1])), "V16"),
                "\0".join(NAMES).encode(),
                np.array([5, 3, 9, 1, 4, 2], dtype=np.int64) * day + at,
            ),
        )
    )
    # a changed favourite finds its row by id; an id the copy does not hold is left out
    wanted = np.frombuffer(b"".join(i.bytes for i in (ids[3], uuid.uuid4(), ids[0])), dtype="V16")
    rows, which = held.locate(wanted)
    assert rows.tolist() == [3, 0] and which.tolist() == [0, 2]

    def picked(f: HeldFilter | None, spans: tuple[np.ndarray, np.ndarray] | None = None) -> list[int]:
        assert f is not None
        return sorted(f.select(held, spans).tolist())

    assert picked(HeldFilter.of(None, None, None, None, live=True, timeline=True)) == [0, 2, 3]
    held = replace(held, favorites=np.array([True, False, True, False, True]))
    every = (np.array([0]), np.array([5]))
    assert picked(HeldFilter.of(None, None, None, None, True), every) == [0, 2, 4]
    assert picked(HeldFilter.of(None, None, None, None, False)) == [1, 3]
    aware = HeldFilter.of(None, base, base + timedelta(days=1), None)
    assert picked(aware, every) == picked(aware) == [0, 1]
    naive = HeldFilter.of(None, base.replace(tzinfo=None), None, None)  # no zone known: widened, a day earlier
    assert picked(naive, every) == picked(naive) == [0, 1, 2, 4]
    west = HeldFilter.of(None, base.replace(tzinfo=None), None, None, zone=ZoneInfo("Etc/GMT+12"))  # 12:00 UTC, -3 h
    assert picked(west) == [1, 2]
    before = HeldFilter.of(None, None, base, None)
    assert picked(before, every) == picked(before) == [3, 4]  # no date: SQL decides
    city = HeldFilter.of(owners[:1], None, None, {"city": 7})
    assert picked(city, every) == picked(city) == [0, 4]
    assert picked(city, (np.array([1, 3]), np.array([2, 5]))) == [4]  # rows 1, 3 and 4 probed
    assert picked(HeldFilter.of(None, None, None, None, rating_min=-1)) == [0, 2, 3, 4]  # -2: no rating, fails
    assert picked(HeldFilter.of(None, None, None, None, rating=-1), every) == [2]  # -1: rejected
    assert picked(HeldFilter.of(None, None, None, None, rating_min=4, marks={"video": True})) == [0]
    assert picked(HeldFilter.of(None, None, None, None, marks={"gps": False, "archived": None})) == [1, 2, 4]
    assert HeldFilter.of(None, None, None, None, marks={"archived": None}) is None
    # file names: each match found once, mapped to its row; wildcards are literal; no match spans two names
    assert held.name_matches(b"img_0001", 10).tolist() == [0, 4]
    assert held.name_matches("雪".encode(), 10).tolist() == [2]
    assert held.name_matches(b"100%_", 10).tolist() == [3]
    assert held.name_matches(b"jpgimg", 10).tolist() == []
    assert held.name_matches(b"img", 3) is None  # more than the limit: left to PostgreSQL
    assert held.name_matches(b"", 10) is None and held.name_matches(b"a\0b", 10) is None
    named = HeldFilter.of(None, None, None, None, names=held.name_matches(b"img_000", 10), rows=5, rating_min=4)
    assert picked(named) == picked(named, every) == [0, 4] and held.held_rows(named) == 3
    # library, added, bounding box (across the antimeridian too) and radius; no GPS (NaN) never matches
    assert picked(HeldFilter.of(None, None, None, None, libraries=owners[:1])) == [0, 4]
    added = HeldFilter.of(None, None, None, None, created=(base + timedelta(days=2), base + timedelta(days=4)))
    assert picked(added) == picked(added, every) == [1, 2] and held.held_rows(added) == 2  # added days 2 and 3
    zurich = HeldFilter.of(None, None, None, None, bbox=(47.3, 8.4, 47.45, 8.6))
    assert picked(zurich) == [0] and picked(HeldFilter.of(None, None, None, None, bbox=(-40, 170, 0, -170))) == [3]
    assert picked(HeldFilter.of(None, None, None, None, near=(47.37, 8.54, 15.0)), every) == [0, 4]  # 14.5 km
    assert picked(HeldFilter.of(None, None, None, None, near=(47.37, 8.54, 14.0))) == [0]
    assert 0 < held.estimate(zurich) <= 5
    assert HeldFilter.of(None, None, None, None) is None
    rows_in, sims = held.scores(np.ones(4, dtype=np.float32), [0], HeldFilter.of(owners[1:], None, None, None))
    assert rows_in.tolist() == [1, 2] and sims.tolist() == [1.0, 1.0]


def test_the_copys_owner_and_date_indexes_select_what_a_full_check_does() -> None:
    """Owner rows cut to the probed spans, and a date range's rows over every row, then the other conditions: the
    same rows as testing every condition on every probed row, for random filters and probes; and held_rows counts
    the smaller index's rows."""
    rng = np.random.default_rng(5)
    n, lists = 5_000, 40
    owner_ids = [uuid.uuid4() for _ in range(6)]
    prefixes = np.array([owner_prefix(o) for o in owner_ids], dtype=np.int64)
    taken = rng.integers(0, 10**9, n, dtype=np.int64)
    taken[rng.random(n) < 0.05] = NONE_TAKEN
    held = ResidentLists.build(
        ResidentRows(
            key=("t", 1),
            ids=np.frombuffer(rng.bytes(16 * n), dtype="V16").copy(),
            vectors=rng.standard_normal((n, 4)).astype(np.float32),
            offsets=np.linspace(0, n, lists + 1).astype(np.int64),
            owners=prefixes[rng.choice(6, n, p=[0.5, 0.3, 0.1, 0.06, 0.03, 0.01])],
            taken=taken,
            texts={"city": rng.integers(1, 4, n).astype(np.int64)},
            favorites=rng.random(n) < 0.2,
            live=rng.random(n) < 0.9,
            timeline=np.ones(n, dtype=bool),
            flags_version=0,
            attributes={
                "rating": rng.integers(-2, 6, n).astype(np.int8),
                **{name: rng.random(n) < 0.1 for name in ("video", "gps", "archived", "offline")},
            },
            columns={
                "library": prefixes[rng.integers(0, 3, n)],
                "latitude": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(-60, 60, n)).astype(np.float32),
                "longitude": rng.uniform(-180, 180, n).astype(np.float32),
            },
        )
    )
    at = [None, *(PG_EPOCH + timedelta(microseconds=int(x)) for x in (0, 10**6, 3 * 10**8, 9 * 10**8))]
    for trial in range(300):
        owners = None if trial % 3 == 0 else list(rng.choice(owner_ids, int(rng.integers(1, 4)), replace=False))
        lo, hi = at[trial % 5], at[(trial // 5) % 5]
        f = HeldFilter.of(
            owners,
            lo,
            hi,
            {"city": int(rng.integers(1, 4))} if trial % 4 == 0 else None,
            favorite=True if trial % 7 == 0 else None,
            live=True if trial % 2 else None,
            rating_min=3 if trial % 5 == 1 else None,
            marks={"video": False, "archived": False} if trial % 6 == 2 else None,
            libraries=owner_ids[:2] if trial % 8 == 3 else None,
            bbox=(-20.0, 100.0, 30.0, -100.0) if trial % 9 == 4 else None,
            near=(10.0, 20.0, 2000.0) if trial % 10 == 5 else None,
        )
        if f is None:
            continue
        probed = np.sort(rng.choice(lists, int(rng.integers(1, lists)), replace=False))
        for spans in (None, (held.offsets[probed], held.offsets[probed + 1])):
            rows = (
                np.arange(n)
                if spans is None
                else np.concatenate([np.arange(a, b) for a, b in zip(*spans, strict=True)])
            )
            for column, test in f._checks(held):
                rows = rows[test(column[rows])]
            got = f.select(held, spans)
            assert len(got) == len(set(got.tolist())) and sorted(got.tolist()) == rows.tolist(), (trial, spans)
        counts = [n]
        if owners is not None:
            counts.append(int(np.isin(held.owners, [owner_prefix(o) for o in owners]).sum()))
        if lo is not None or hi is not None:
            low = NONE_TAKEN if f.taken_min is None else f.taken_min
            high = 2**62 if f.taken_max is None else f.taken_max
            counts.append(int(((held.taken >= low) & (held.taken < high)).sum()))
        assert held.held_rows(f) == min(counts)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"])
def test_a_date_without_a_zone_is_read_as_postgresql_reads_it(small_db: Database, zone: str) -> None:
    """The held date bounds of a naive date, read in the session's zone as psycopg reports it, are within
    NAIVE_WIDEN of the instant PostgreSQL compares with, DST changes (repeated and skipped local times) included."""
    local = [datetime(2021, 3, 14, 2, 30), datetime(2021, 11, 7, 1, 30), datetime(2021, 3, 28, 2, 30)]
    local += [datetime(2021, 10, 31, 2, 30), datetime(2021, 4, 4, 1, 45), datetime(2020, 6, 1), datetime(1999, 12, 31)]
    with small_db.connection() as conn:
        conn.execute("SELECT set_config('TimeZone', %s, false)", [zone])
        assert str(conn.info.timezone) == zone
        for value in local:
            seen = conn.execute("SELECT %s::timestamp::timestamptz", [value]).fetchone()[0]
            micros = int((seen - PG_EPOCH) // timedelta(microseconds=1))
            held = HeldFilter.of(None, value, value, None, zone=conn.info.timezone)
            assert held.taken_min <= micros < held.taken_max, (zone, value, seen)
            assert held.taken_max - held.taken_min == 2 * NAIVE_WIDEN // timedelta(microseconds=1)
        conn.execute("RESET TimeZone")


def test_owner_date_and_city_filters_rank_only_their_rows_in_memory(lists_fixture: SearchFixture) -> None:
    """A narrow filter the copy holds runs in memory: numpy ranks only the probed rows it matches, and hands
    PostgreSQL twice the page (+ slack), which all but the default filters pass. Complete, and as accurate as
    PostgreSQL's own probe."""
    fx = lists_fixture
    cfg = PlannerConfig(exact_max_rows=0, exact_max_rows_joined=0)
    service = SearchService(fx.db, config=cfg, resident=fx.resident)
    taken = sorted(fx.lib.taken)
    window = {"taken_after": taken[1000], "taken_before": taken[1200]}  # ~5 %
    cases = [
        ({"owners": ["Beth"]}, fx.admin, ["Beth"]),
        ({}, fx.user("Beth"), ["Beth"]),  # a user's own photos: the owner scope every non-admin search has
        (window, fx.admin, None),
        ({"city": "Kyoto"}, fx.admin, None),
        ({"exclude_owners": ["Allen"], **window}, fx.admin, [n for n in fx.lib.owner_names if n != "Allen"]),
        ({"city": "Kyoto", "taken_after": taken[500], "like_asset_id": fx.lib.ids[11]}, fx.admin, None),
        ({"is_favorite": True, **window}, fx.admin, None),
        ({"is_favorite": True}, fx.user("Beth"), ["Beth"]),
        ({"model": "Pixel 7", "country": "Japan"}, fx.admin, None),
        ({"rating_min": 4}, fx.admin, None),
        ({"rating": 5, "owners": ["Beth"]}, fx.admin, ["Beth"]),
        ({"asset_type": "VIDEO"}, fx.admin, None),
        ({"is_archived": True, "has_gps": True}, fx.admin, None),
        ({"is_offline": False, "has_gps": False, "asset_type": "IMAGE", **window}, fx.admin, None),
        ({"file_name_contains": "img_00001"}, fx.admin, None),  # IMG_0000100 to IMG_0000199, any case
        ({"file_name_contains": "ŌSAKA", "taken_after": taken[0]}, fx.admin, None),
        ({"file_name_contains": "_0003"}, fx.user("Beth"), ["Beth"]),
        ({"created_after": taken[300], "created_before": taken[500]}, fx.admin, None),
        ({"bbox": (34.9, 135.6, 35.1, 135.9)}, fx.admin, None),  # Kyoto
        ({"near": (35.01, 135.77, 10.0), "owners": ["Beth", "Chen"]}, fx.admin, ["Beth", "Chen"]),
    ]
    rng = np.random.default_rng(4)
    for filters, user, names in cases:
        recalls = []
        for i in rng.integers(0, len(fx.lib), 4):
            q = fx.lib.embeddings[i]
            query = SearchQuery(vector=None if "like_asset_id" in filters else q.tolist(), k=10, **filters)
            if "like_asset_id" in filters:
                q = fx.lib.embeddings[11]
            page = service.search(query, user)
            mask = reference_mask(fx.lib, query, names)
            exclude = 11 if "like_asset_id" in filters else None
            expected = brute_force(fx.lib, mask, q, 10, exclude=exclude)
            assert page.plan.strategy == "memory" and page.plan.fallback is None, (filters, page.plan)
            assert "that match in memory" in page.plan.reason
            assert page.plan.estimate_method == "the in-memory copy's counts"  # no EXPLAIN
            if set(filters) in ({"owners"}, set(), {"taken_after", "taken_before"}, {"city"}):  # one condition:
                # its count, without the defaults (deleted, hidden: a few %), dates widened by a day
                assert int(mask.sum()) <= page.plan.estimated_matches <= 1.2 * int(mask.sum()) + 10
            assert page.plan.pool <= 2 * 10 + cfg.memory_slack  # candidates handed over (fewer if fewer match)
            assert len(page.items) == min(10, int(mask.sum())), filters
            recalls.append(len({h.id for h in page.items} & set(expected)) / max(len(expected), 1))
        assert np.mean(recalls) >= 0.95, (filters, recalls)
    # A narrow filter the copy does not hold stays in PostgreSQL.
    query = SearchQuery(vector=fx.lib.embeddings[3].tolist(), k=10, updated_before=taken[200])
    assert service.search(query, fx.admin).plan.strategy != "memory"
    # A file name's rows are found once per copy: the next page of the same search reuses them.
    query = SearchQuery(vector=fx.lib.embeddings[3].tolist(), k=10, file_name_contains="IMG_0001")
    first = service.search(query, fx.admin)
    names = service._held_lookup._names
    entries, cached = len(names), list(names.values())[-1]
    second = service.search(query.model_copy(update={"page": 2}), fx.admin)
    assert len(names) == entries and list(names.values())[-1] is cached is not None
    assert first.plan.strategy == second.plan.strategy == "memory"
    assert not {h.id for h in first.items} & {h.id for h in second.items}
    # ... as does a file name too many photos have (each match is a Python step)
    query = SearchQuery(vector=fx.lib.embeddings[3].tolist(), k=10, file_name_contains="IMG")
    few = SearchService(fx.db, config=replace(cfg, memory_name_max_matches=100), resident=fx.resident)
    assert few.search(query, fx.admin).plan.estimate_method == "planner statistics (EXPLAIN)"


def test_a_favourite_refreshes_the_copys_favourites_not_its_vectors(small_db: Database) -> None:
    """Favouriting bumps flags_version (migration 043): until the copy's flags are re-read (in the background,
    the vectors stay), favourites searches leave that filter to PostgreSQL and stay complete; then they run in
    memory again, with the new favourite. Trashing a photo likewise drops it from the copy's default filter."""
    db = small_db
    resident = ResidentCache(db, 1 << 30, min_interval=3600.0)
    first = resident.load()
    service = SearchService(db, config=NO_EXACT, resident=resident)
    admin = {"id": None, "is_admin": True}
    with db.connection() as conn:
        target, vec = conn.execute(
            "SELECT asset_id, embedding FROM smart_search WHERE NOT is_favorite AND deleted_at IS NULL"
            " ORDER BY asset_id LIMIT 1"
        ).fetchone()
        favorites = conn.execute("SELECT count(*) FROM search_ivf WHERE is_favorite").fetchone()[0]
    assert int(first.favorites.sum()) == favorites > 0
    query = SearchQuery(vector=vec.to_list(), k=5, is_favorite=True)
    before = service.search(query, admin)
    assert before.plan.strategy == "memory" and target not in {h.id for h in before.items}

    with db.connection() as conn:
        conn.execute("UPDATE assets SET is_favorite = true WHERE id = %s", (target,))
    stale = service.search(query, admin)  # starts the re-read in the background
    assert stale.plan.strategy != "memory" and stale.items[0].id == target and len(stale.items) == 5
    resident.wait(30)
    fresh = resident.current
    assert fresh is not first and fresh.vectors is first.vectors  # the same vectors, new favourites
    assert int(fresh.favorites.sum()) == favorites + 1
    after = service.search(query, admin)
    assert after.plan.strategy == "memory" and after.items[0].id == target and len(after.items) == 5

    # Trashing it: until the flags are re-read, "not in the trash" is left to PostgreSQL; then the copy has it too,
    # and a plain search is estimated from the copy's counts, without asking PostgreSQL.
    plain = SearchQuery(vector=vec.to_list(), k=5)
    with db.connection() as conn:
        conn.execute("UPDATE assets SET deleted_at = now() WHERE id = %s", (target,))
    page = service.search(plain, admin)
    assert target not in {h.id for h in page.items} and len(page.items) == 5
    deadline = time.monotonic() + 30  # re-reads are throttled to one per 10x the last one's duration
    while resident.current.flags_version != _version(db, "flags_version") and time.monotonic() < deadline:
        time.sleep(0.05)
        page = service.search(plain, admin)
        assert target not in {h.id for h in page.items} and len(page.items) == 5
        resident.wait(30)
    row = [uuid.UUID(bytes=b) for b in resident.current.ids.tolist()].index(target)
    assert not resident.current.live[row] and resident.current.favorites[row]
    page = service.search(plain, admin)
    assert page.plan.strategy == "memory" and page.plan.estimate_method == "the in-memory copy's counts"
    assert target not in {h.id for h in page.items} and len(page.items) == 5

    # Archiving another photo: re-read with the flags (044), after which an archived search runs in memory again.
    with db.connection() as conn:
        other, near = conn.execute(
            "SELECT asset_id, embedding FROM smart_search WHERE NOT is_archived AND deleted_at IS NULL"
            " AND visibility = 'timeline' ORDER BY asset_id DESC LIMIT 1"
        ).fetchone()
        conn.execute("UPDATE assets SET is_archived = true WHERE id = %s", (other,))
    archived = SearchQuery(vector=near.to_list(), k=3, is_archived=True)
    deadline = time.monotonic() + 30
    while resident.current.flags_version != _version(db, "flags_version") and time.monotonic() < deadline:
        assert service.search(archived, admin).items[0].id == other  # PostgreSQL's meanwhile
        resident.wait(30)
        time.sleep(0.05)
    row = [uuid.UUID(bytes=b) for b in resident.current.ids.tolist()].index(other)
    assert resident.current.attributes["archived"][row] and not resident.current.live[target_row(resident, target)]
    page = service.search(archived, admin)
    assert page.plan.strategy == "memory" and page.items[0].id == other


def target_row(resident: ResidentCache, asset: uuid.UUID) -> int:
    return [uuid.UUID(bytes=b) for b in resident.current.ids.tolist()].index(asset)
