"""Guards the table of filters (search/filters.py) makes cheap: the triggers watch exactly the columns the in-memory
copy holds; the copy's filter never drops a row SQL matches, for random filters; and no change to a held column
ever lets the copy return a stale photo."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from photosearch.db import Database
from photosearch.db import search as sq
from photosearch.db.pool import connect_pool
from photosearch.db.server import ServerInfo
from photosearch.search import PlannerConfig, SearchError, SearchQuery, SearchService
from photosearch.search.filters import FILTERS, watched
from photosearch.search.lists import train_lists
from photosearch.search.resident import ResidentCache
from photosearch.search.synthetic import CAMERAS, CITIES, make_library
from tests.search.conftest import SearchFixture, insert_library, synthetic_database

ADMIN = {"id": None, "is_admin": True}


def _trigger_columns(db: Database) -> dict[tuple[str, str], set[str]]:
    """(table, counter) -> the columns each metadata_counter_bump trigger's WHEN clause compares, as PostgreSQL
    has the triggers now (pg_get_triggerdef)."""
    found: dict[tuple[str, str], set[str]] = {}
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_proc p ON p.oid = t.tgfoid WHERE p.proname = 'metadata_counter_bump' AND NOT t.tgisinternal"
        ).fetchall()
    for table, definition in rows:
        counter = re.search(r"metadata_counter_bump\('(\w+)'\)", definition).group(1)
        when = re.search(r"WHEN \((.*)\) EXECUTE", definition).group(1)
        found.setdefault((table, counter), set()).update(re.findall(r"\bold\.(\w+)", when, re.IGNORECASE))
    return found


def test_the_triggers_watch_every_column_the_copy_holds(db: Database) -> None:
    expected = watched()
    assert expected[("search_ivf", "search_version")] >= {"owner_id", "lens_model", "library_id", "latitude"}
    assert _trigger_columns(db) == expected


# -- the copy's filter is a superset of SQL's, for random filters ----------------------------------------------


@pytest.fixture(scope="module")
def sql_and_memory(pg_admin_dsn: str) -> Iterator[SearchFixture]:
    from tests.search.conftest import _library_fixture

    yield from _library_fixture(pg_admin_dsn, lists=True)


DAY = timedelta(days=1)
dates = st.datetimes(min_value=datetime(2012, 1, 1), max_value=datetime(2025, 1, 1)).map(
    lambda d: d.replace(microsecond=0)
)
zoned = st.one_of(dates, dates.map(lambda d: d.replace(tzinfo=UTC)))
# (to a micrometre: a denormal latitude such as 5e-324 makes PostgreSQL's radians() raise an underflow, a query error
# of its own, not a superset question)
latitudes, longitudes = (st.floats(-bound, bound).map(lambda x: round(x, 6)) for bound in (80, 180))
text_values = {
    "make": [c[0] for c in CAMERAS],
    "model": [c[1] for c in CAMERAS],
    "lens": [c[2] for c in CAMERAS if c[2]],
    "city": [c[0] for c in CITIES],
    "state": [c[1] for c in CITIES],
    "country": [c[2] for c in CITIES],
}
filters = st.fixed_dictionaries(
    {},
    optional={
        "owners": st.sampled_from([["Beth"], ["Allen"], ["Beth", "Chen"]]),
        "exclude_owners": st.sampled_from([["Allen"], ["Dana"]]),
        "asset_type": st.sampled_from(["IMAGE", "VIDEO"]),
        "taken_after": zoned,
        "taken_before": zoned,
        "created_after": zoned,
        "created_before": zoned,
        "is_favorite": st.booleans(),
        "is_archived": st.booleans(),
        "is_offline": st.booleans(),
        "visibility": st.sampled_from([None, ["timeline"], ["hidden"]]),
        "trashed_only": st.booleans(),
        "file_name_contains": st.sampled_from(["img_0000", "00012", ".mp4", "IMG_000123"]),
        **{name: st.sampled_from(values).map(lambda v: v.upper() if len(v) % 2 else v) for name, values in
           text_values.items()},
        "rating_min": st.integers(-1, 5),
        "rating": st.integers(-1, 5),
        "has_gps": st.booleans(),
        "bbox": st.tuples(latitudes, longitudes, latitudes, longitudes).map(
            lambda b: (min(b[0], b[2]), b[1], max(b[0], b[2]), b[3])
        ),
        "near": st.tuples(latitudes, longitudes, st.floats(0.5, 3000).map(lambda x: round(x, 6))),
    },
)  # fmt: skip


def _sql_ids(fx: SearchFixture, q: SearchQuery, scope: list[uuid.UUID] | None) -> set[bytes]:
    where = sq.compile_filters(q, scope)
    with fx.db.connection() as conn:
        rows = conn.execute(
            sql.SQL("SELECT s.asset_id FROM {} WHERE {}").format(where.from_clause, where.clause), where.params
        ).fetchall()
    return {r[0].bytes for r in rows}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=filters)
def test_the_copys_filter_keeps_every_row_sql_matches(sql_and_memory: SearchFixture, fields: dict) -> None:
    fx = sql_and_memory
    if fields.get("trashed_only"):
        fields.pop("visibility", None)
    q = SearchQuery(vector=[1.0] * 4, **fields)
    service = SearchService(fx.db, resident=fx.resident)
    with fx.db.connection() as conn:
        scope = service.owner_scope(conn, q, ADMIN)
        held = service._held(conn, q, scope, sq.begin_search(conn))
    assert held.copy is not None
    matches = _sql_ids(fx, q, scope)
    rows = np.arange(len(held.copy.ids)) if held.filter is None else held.filter.select(held.copy, None)
    kept = {bytes(x) for x in held.copy.ids[rows]}
    assert matches <= kept, f"{len(matches - kept)} rows SQL matches are not in the copy's"
    if held.only and held.filter is not None and "file_name_contains" not in fields:
        # every filter held: the copy keeps little more than SQL does (dates widened, hashes, float32 places)
        assert len(kept) <= max(2 * len(matches), len(matches) + 200)


# -- no stale photo: every held column changed, one at a time ----------------------------------------------------


@pytest.fixture
def changing(pg_admin_dsn: str) -> Iterator[Database]:
    with synthetic_database(pg_admin_dsn, "t") as (dsn, _):
        db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=3)
        insert_library(db, make_library(1500, 32, seed=11, event_size=40))
        train_lists(db, lists=8, min_rows=0)
        try:
            yield db
        finally:
            db.close()


EXIF = "INSERT INTO exif (asset_id, {col}) VALUES (%(p)s, {value}) ON CONFLICT (asset_id) DO UPDATE SET {col} = {value}"
ASSET = "UPDATE assets SET {col} = {value} WHERE id = %(p)s"
# filter -> (the change to photo p, the filters p matches after it and not before, whether p is then found)
CHANGES: dict[str, tuple[str, dict, bool]] = {
    "owner": (ASSET.format(col="owner_id", value="(SELECT id FROM users WHERE name = 'Eve')"), {"owners": ["Eve"]},
              True),
    "library": (ASSET.format(col="library_id", value="(SELECT id FROM libraries WHERE name = 'moved')"), {}, True),
    "type": (ASSET.format(col="type", value="'VIDEO'"), {"asset_type": "VIDEO"}, True),
    "taken": (ASSET.format(col="local_date_time", value="'1990-06-01'"), {"taken_before": datetime(1991, 1, 1)},
              True),
    "created": (ASSET.format(col="created_at", value="'1990-06-01'"),
                {"created_before": datetime(1991, 1, 1, tzinfo=UTC)}, True),
    "favorite": (ASSET.format(col="is_favorite", value="true"), {"is_favorite": True}, True),
    "archived": (ASSET.format(col="is_archived", value="true"), {"is_archived": True}, True),
    "offline": (ASSET.format(col="is_offline", value="true"), {"is_offline": True}, True),
    "visibility": (ASSET.format(col="visibility", value="'hidden'"), {}, False),
    "trash": (ASSET.format(col="deleted_at", value="now()"), {}, False),
    "file_name": (ASSET.format(col="original_file_name", value="'zebra crossing.jpg'"),
                  {"file_name_contains": "ZEBRA"}, True),
    "make": (EXIF.format(col="make", value="'Leica'"), {"make": "leica"}, True),
    "model": (EXIF.format(col="model", value="'M11'"), {"model": "M11"}, True),
    "lens": (EXIF.format(col="lens_model", value="'Summilux'"), {"lens": "summilux"}, True),
    "city": (EXIF.format(col="city", value="'Atlantis'"), {"city": "Atlantis"}, True),
    "state": (EXIF.format(col="state", value="'Lemuria'"), {"state": "Lemuria"}, True),
    "country": (EXIF.format(col="country", value="'Mu'"), {"country": "MU"}, True),
    "rating": (EXIF.format(col="rating", value="-1"), {"rating": -1}, True),
    "gps": (EXIF.format(col="latitude", value="NULL"), {"has_gps": False}, True),
    "bbox": (EXIF.format(col="latitude", value="-61.5") + "; " + EXIF.format(col="longitude", value="-41.5"),
             {"bbox": (-62.0, -42.0, -61.0, -41.0)}, True),
    "near": (EXIF.format(col="latitude", value="-71.5") + "; " + EXIF.format(col="longitude", value="-11.5"),
             {"near": (-71.5, -11.5, 5.0)}, True),
}  # fmt: skip


def test_every_held_filter_has_a_staleness_case() -> None:
    assert set(CHANGES) == {f.name for f in FILTERS if f.memory is not None}


def test_the_copy_never_returns_a_stale_photo(changing: Database) -> None:
    db = changing
    cache = ResidentCache(db, 1 << 30, min_interval=3600.0)
    cache.load()
    service = SearchService(db, config=PlannerConfig(exact_max_rows=0), resident=cache)
    with db.connection() as conn:
        owner = conn.execute("SELECT owner_id FROM assets LIMIT 1").fetchone()[0]
        conn.execute(
            "INSERT INTO libraries (owner_id, name, import_paths) SELECT owner_id, 'moved', import_paths"
            " FROM libraries WHERE owner_id = %s LIMIT 1",
            (owner,),
        )
        moved = conn.execute("SELECT id FROM libraries WHERE name = 'moved'").fetchone()[0]
        # a photo per case, each with GPS, a rating, not a video, not flagged, not owned by Eve, in no 'moved' library
        photos = conn.execute(
            "SELECT a.id, s.embedding FROM assets a JOIN smart_search s ON s.asset_id = a.id JOIN exif e"
            " ON e.asset_id = a.id JOIN users u ON u.id = a.owner_id WHERE a.type = 'IMAGE' AND NOT a.is_favorite"
            " AND NOT a.is_archived AND NOT a.is_offline AND a.deleted_at IS NULL AND e.latitude IS NOT NULL"
            " AND coalesce(e.rating, 0) >= 0 AND u.name <> 'Eve' AND a.owner_id = %s ORDER BY a.id LIMIT %s",
            (owner, len(CHANGES)),
        ).fetchall()
        conn.commit()
    assert len(photos) == len(CHANGES)

    def found(vector: np.ndarray, filters: dict, strategy: str) -> list[uuid.UUID] | None:
        q = SearchQuery(vector=vector.tolist(), k=3, strategy=strategy, **filters)
        try:
            return [h.id for h in service.search(q, ADMIN).items]
        except SearchError:  # memory forced while the copy is (rightly) stale
            return None

    for (name, (change, filters, present)), (photo, embedding) in zip(CHANGES.items(), photos, strict=True):
        vector = np.asarray(embedding.to_numpy(), dtype=np.float32)
        if name == "library":
            filters = {"library_ids": [moved]}
        before = found(vector, filters, "exact")
        assert (photo in before) != present, name
        with db.connection() as conn:
            for statement in change.split("; "):
                conn.execute(statement, {"p": photo})
            conn.commit()
        for strategy in ("memory", "auto"):  # before the copy catches up: PostgreSQL, or a copy not stale
            got = found(vector, filters, strategy)
            assert got is None or (photo in got) == present, (name, strategy)
        cache.wait(30)
        cache.update()
        cache.refresh_flags()
        got = found(vector, filters, "memory")
        assert got is not None and (photo in got) == present, (name, "after the update")
        assert got == found(vector, filters, "exact"), name
