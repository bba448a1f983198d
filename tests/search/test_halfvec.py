"""The optional halfvec HNSW index (issue 6): an expression index on `embedding::halfvec(dim)`, recorded per
installation, served by the same ORDER BY expression, switchable with `photosearch db vector-index`, kept
across a model switch, and accurate (recall@10 >= 0.98 against numpy) with the full-precision re-sort."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from psycopg import sql

from photosearch.config import Settings
from photosearch.db import Database, knn, open_database
from photosearch.db import duplicates as dd
from photosearch.db import search as sq
from photosearch.db.accounts import create_user
from photosearch.db.embedding import (
    VECTOR_INDEX,
    built_index_type,
    change_vector_index_type,
    ensure_embedding_model,
    get_embedding_model,
    get_vector_index_type,
    hnsw_order,
)
from photosearch.db.pool import connect_pool
from photosearch.db.server import DatabaseError, ServerInfo
from photosearch.search import SearchQuery, SearchService
from photosearch.search.planner import PlannerConfig, choose
from photosearch.search.service import BASE_SETTINGS
from photosearch.search.synthetic import make_library
from tests.search.conftest import SearchFixture, brute_force, cli_json, insert_library, synthetic_database
from tests.search.reference import reference_mask

N_ROWS = 3000
DIM = 128


@pytest.fixture(scope="module")
def halfvec_fixture(pg_admin_dsn: str) -> Iterator[SearchFixture]:
    """A clustered synthetic library whose index was built as vector, then switched to halfvec."""
    with synthetic_database(pg_admin_dsn, "h") as (dsn, name):
        build = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=1)
        lib = make_library(N_ROWS, DIM, seed=5, event_size=40)
        owners = insert_library(build, lib)
        result = change_vector_index_type(build, "halfvec")
        assert result["rebuilt"] and result["previous"] == "vector"
        # At 3,000 rows sorting the table costs less than an HNSW walk with ef_search 400, so the planner would
        # answer exactly; without seq scans it must take the index, provided the ORDER BY matches its expression.
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} SET enable_seqscan = off").format(sql.Identifier(name)))
        # Statistics now, as a settled installation has them: left to autovacuum, the planner's index choice for
        # a filtered query would depend on whether its analyze had run yet (a busy machine's timing).
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ANALYZE")
        build.close()
        db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=4)
        admin = create_user(db, "root", "root@example.org", is_admin=True)
        try:
            yield SearchFixture(db=db, lib=lib, owners=owners, admin=admin)
        finally:
            db.close()


def _queries(lib, n: int, seed: int = 13) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(lib), n)
    noisy = lib.embeddings[picks] + 0.3 * rng.standard_normal((n, lib.embeddings.shape[1])).astype(np.float32)
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def _index_def(conn: psycopg.Connection) -> str:
    return conn.execute("SELECT pg_get_indexdef(to_regclass(%s))", (VECTOR_INDEX,)).fetchone()[0]


def _plan(conn: psycopg.Connection, order: sql.Composable, q: np.ndarray) -> str:
    query = sql.SQL("EXPLAIN SELECT s.asset_id FROM smart_search s ORDER BY {} LIMIT 10").format(order)
    return "\n".join(r[0] for r in conn.execute(query, {"q": q}))


def test_index_is_the_halfvec_expression_and_the_search_query_uses_it(halfvec_fixture: SearchFixture) -> None:
    fx = halfvec_fixture
    q = _queries(fx.lib, 1)[0]
    with fx.db.connection() as conn, conn.transaction():
        assert get_vector_index_type(conn) == ("halfvec", DIM)
        assert built_index_type(conn) == "halfvec"
        definition = _index_def(conn)
        assert f"((embedding)::halfvec({DIM})) halfvec_cosine_ops" in definition, definition
        assert "m='24'" in definition.replace(" ", "")
        # The shared ORDER BY expression matches the index; the plain vector one no longer does.
        assert f"Index Scan using {VECTOR_INDEX}" in _plan(conn, hnsw_order("halfvec", DIM), q)
        assert VECTOR_INDEX not in _plan(conn, hnsw_order("vector", DIM), q)
        ctx = sq.begin_search(conn)
        assert (ctx.dim, ctx.index_type) == (DIM, "halfvec")


def _approximate_scans_index(fx: SearchFixture, query: SearchQuery, scope: list | None) -> None:
    """The service's approximate query (same settings, same SQL) walks the HNSW index, and returns the page
    sorted by the full-precision distance."""
    q = np.asarray(query.vector, dtype=np.float32)
    with fx.db.connection() as conn, conn.transaction():
        ctx = sq.begin_search(conn)
        d = choose(PlannerConfig(), estimated=ctx.total, total=ctx.total, depth=query.depth, forced="approximate")
        where = sq.compile_filters(query, scope)
        ranked, found, _ = knn.approximate_search(
            conn,
            q,
            where,
            metric="cosine",
            pool=d.pool or 10,
            limit=query.k,
            index_type=ctx.index_type,
            settings={**BASE_SETTINGS, **d.hnsw_settings},
        )
        scans = conn.execute("SELECT pg_stat_get_xact_numscans(to_regclass(%s))", (VECTOR_INDEX,)).fetchone()[0]
    assert scans >= 1, "the approximate query did not use the halfvec index"
    assert found >= query.k and len(ranked.ids) == query.k
    pos = {i: n for n, i in enumerate(fx.lib.ids)}
    full = [1.0 - float(fx.lib.embeddings[pos[i]] @ q) for i in ranked.ids]
    assert np.allclose(ranked.distances, full, atol=1e-5)
    assert ranked.distances == sorted(ranked.distances)


@pytest.mark.parametrize("label", ["none", "defaults", "owner Allen, taken 20%"])
def test_approximate_search_on_halfvec_is_complete_with_recall(halfvec_fixture: SearchFixture, label: str) -> None:
    fx = halfvec_fixture
    live = sorted(t for t, d in zip(fx.lib.taken, fx.lib.deleted, strict=True) if not d)
    filters = {
        "none": {"with_deleted": True},
        "defaults": {},
        "owner Allen, taken 20%": {
            "owners": ["Allen"],  # searched as Allen himself (not a SearchQuery field)
            "taken_after": live[len(live) // 5],
            "taken_before": live[2 * len(live) // 5],
        },
    }[label]
    owners = filters.pop("owners", None)
    user = fx.user("Allen") if owners else fx.admin
    service = SearchService(fx.db)
    recalls = []
    for n, q in enumerate(_queries(fx.lib, 20)):
        query = SearchQuery(vector=q.tolist(), k=10, strategy="approximate", **filters)
        if n == 0:
            _approximate_scans_index(fx, query, [fx.owners["Allen"]] if owners else None)
        page = service.search(query, user)
        assert page.plan.strategy == "approximate" and not page.plan.fallback, page.plan
        mask = reference_mask(fx.lib, query, owners)
        expected = brute_force(fx.lib, mask, q, 10)
        assert len(page.items) == 10
        recalls.append(len({h.id for h in page.items} & set(expected)) / 10)
    assert float(np.mean(recalls)) >= 0.98, recalls


def test_near_duplicates_walk_the_halfvec_index(halfvec_fixture: SearchFixture) -> None:
    fx = halfvec_fixture
    allen = fx.owners["Allen"]
    with fx.db.connection() as conn, conn.transaction():
        sq.set_local(conn, {"hnsw.ef_search": 64, "hnsw.iterative_scan": "relaxed_order"})
        pairs = dd.near_duplicate_pairs(conn, allen, 0.2, 4)
        scans = conn.execute("SELECT pg_stat_get_xact_numscans(to_regclass(%s))", (VECTOR_INDEX,)).fetchone()[0]
    assert scans >= 1 and pairs
    pos = {i: n for n, i in enumerate(fx.lib.ids)}
    for a, b, dist in pairs[:200]:
        exact = 1.0 - float(fx.lib.embeddings[pos[a]] @ fx.lib.embeddings[pos[b]])
        assert dist == pytest.approx(exact, abs=1e-5) and dist <= 0.2


def _cli(env: dict, *args: str) -> dict:
    return cli_json(env, "db", "vector-index", *args)


def test_cli_switches_vector_halfvec_vector_and_keeps_results(db: Database, cli_env: dict) -> None:
    lib = make_library(800, 64, seed=9, event_size=40)
    insert_library(db, lib)
    admin = create_user(db, "root", "root@example.org", is_admin=True)
    service = SearchService(db)
    queries = _queries(lib, 8)

    def top10() -> list[list]:
        return [
            [h.id for h in service.search(SearchQuery(vector=q.tolist(), k=10, strategy="approximate"), admin).items]
            for q in queries
        ]

    mask = ~lib.deleted
    exact = [brute_force(lib, mask, q, 10) for q in queries]
    before = top10()
    assert _cli(cli_env)["index_type"] == "vector"
    for kind in ("halfvec", "vector"):
        result = _cli(cli_env, kind)
        assert result["rebuilt"] and result["index_type"] == kind and result["embeddings"] == 800
        status = _cli(cli_env)
        assert status["index_type"] == status["built_as"] == kind
        with db.connection() as conn:
            assert built_index_type(conn) == kind
        after = top10()
        recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(after, exact, strict=True)])
        assert recall >= 0.98 and all(len(a) == 10 for a in after)
    assert after == before  # back on the vector index: the same pages as before the round trip
    assert _cli(cli_env, "vector")["rebuilt"] is False  # already vector: nothing to do
    bad = subprocess.run(
        [sys.executable, "-m", "photosearch", "db", "vector-index", "float8"], env=cli_env, capture_output=True
    )
    assert bad.returncode == 1 and b"choose one of vector, halfvec" in bad.stderr


def test_model_switch_keeps_the_index_type(db: Database) -> None:
    ensure_embedding_model(db, "model-a", 64)
    assert change_vector_index_type(db, "halfvec")["rebuilt"]
    ensure_embedding_model(db, "model-b", 32, reembed=True)
    with db.connection() as conn:
        assert get_embedding_model(conn) == ("model-b", 32)
        assert get_vector_index_type(conn) == ("halfvec", 32)
        assert "((embedding)::halfvec(32)) halfvec_cosine_ops" in _index_def(conn)
        with pytest.raises(DatabaseError, match="unknown vector index type"):
            hnsw_order("float8", 32)


def test_new_database_takes_the_configured_type_and_an_existing_one_keeps_its_own(
    empty_db_dsn: str, tmp_path: Path
) -> None:
    def settings(kind: str) -> Settings:
        return Settings(data_dir=tmp_path / "data", database_url=empty_db_dsn, vector_index_type=kind)

    with open_database(settings("halfvec")) as db:
        ensure_embedding_model(db, "tiny", 16)
        with db.connection() as conn:
            assert get_vector_index_type(conn) == ("halfvec", 16)
            assert built_index_type(conn) == "halfvec"
    with open_database(settings("vector")) as db, db.connection() as conn:
        assert get_vector_index_type(conn) == ("halfvec", 16)  # changing it is the explicit CLI rebuild


def test_searches_keep_working_while_the_index_is_rebuilt(db: Database) -> None:
    """The new index is built beside the old one: a search while it is built (before the swap) is not blocked
    and uses the old, committed type; after the commit the new type is in force."""
    lib = make_library(400, 32, seed=4, event_size=20)
    insert_library(db, lib)
    admin = create_user(db, "root", "root@example.org", is_admin=True)
    service = SearchService(db)
    q = _queries(lib, 1)[0]
    results: list = []

    def search() -> None:
        page = service.search(SearchQuery(vector=q.tolist(), k=5, strategy="approximate"), admin)
        results.append([h.id for h in page.items])

    def during_build() -> None:
        worker = threading.Thread(target=search)
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive(), "a search waited for the index build"
        with db.connection() as other:
            assert get_vector_index_type(other) == ("vector", 32)

    assert change_vector_index_type(db, "halfvec", on_built=during_build)["rebuilt"]
    with db.connection() as conn:
        assert get_vector_index_type(conn) == ("halfvec", 32) and built_index_type(conn) == "halfvec"
    search()
    assert len(results) == 2
    assert results[0] == results[1] == brute_force(lib, ~lib.deleted, q, 5)
