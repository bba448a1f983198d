"""Recall of pages 1-5 against numpy brute force, at 20,000 rows: with search lists and before them, with the
server's in-memory copy and without, for example-image, text-like (cosine ~0.3) and far (~0.18) query vectors,
unfiltered and under a ~10 % date filter, a ~10 % city filter and an owner's own scope.

Each page must meet page 1's target: mean recall ≥ 0.98 of the true ranks offset+1…offset+k, worst query
≥ 0.9, complete, and no row shown on two pages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import psycopg
import pytest
from psycopg import sql

from photosearch.db.accounts import create_user
from photosearch.db.pool import Database, connect_pool
from photosearch.db.server import ServerInfo, with_dbname
from photosearch.search import SearchQuery, SearchService
from photosearch.search.lists import train_lists
from photosearch.search.resident import ResidentCache
from photosearch.search.synthetic import CITIES, SyntheticLibrary, make_library, normalise
from tests.search.conftest import insert_library, synthetic_database
from tests.search.reference import reference_mask

ROWS, DIM, K, PAGES, QUERIES = 20_000, 512, 10, 5, 6
# noise added to a stored photo's vector: cosine ~0.8 to it (an example image), ~0.3 (CLIP text), ~0.18 (far)
CLASSES = {"image": 0.7, "text": 3.2, "far": 5.5}


@dataclass
class Library:
    lib: SyntheticLibrary
    dbs: dict[str, Database]  # "unlisted" (before lists are trained) and "lists"
    copies: dict[str, ResidentCache]
    admin: dict
    allen: dict


@pytest.fixture(scope="module")
def library(pg_admin_dsn: str) -> Iterator[Library]:
    """One 20k library, loaded once; a template copy of its database gets trained search lists."""
    lib = make_library(ROWS, DIM, seed=11)
    with synthetic_database(pg_admin_dsn, "r") as (dsn, name):
        db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=2)
        owners = insert_library(db, lib)  # HNSW index built once after the load
        admin = create_user(db, "root", "root@example.org", is_admin=True)
        db.close()
        listed = f"{name}_l"
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(listed), sql.Identifier(name)))
        try:
            dbs = {
                kind: connect_pool(
                    ServerInfo(dsn=with_dbname(pg_admin_dsn, d), embedded=False, pgdata=None), max_size=2
                )
                for kind, d in (("unlisted", name), ("lists", listed))
            }
            assert train_lists(dbs["lists"]).lists > 1
            copies = {kind: ResidentCache(d, 1 << 30) for kind, d in dbs.items()}
            for copy in copies.values():
                assert copy.load() is not None
            allen = {"id": owners["Allen"], "is_admin": False, "name": "Allen"}
            yield Library(lib, dbs, copies, admin, allen)
            for d in dbs.values():
                d.close()
        finally:
            with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(listed)))


def _queries(lib: SyntheticLibrary, noise: float) -> np.ndarray:
    rng = np.random.default_rng(int(noise * 100))
    base = lib.embeddings[rng.integers(0, len(lib), QUERIES)]
    return normalise(base + noise * normalise(rng.standard_normal(base.shape)))


def _filters(lib: SyntheticLibrary, name: str) -> tuple[dict, bool]:
    """(SearchQuery filters, whether Allen searches his own photos rather than the admin everyone's)."""
    if name == "none":
        return {"with_deleted": True}, False
    if name == "date ~10%":
        taken = sorted(lib.taken)
        return {"taken_after": taken[len(taken) // 2], "taken_before": taken[len(taken) // 2 + len(taken) // 10]}, False
    if name == "city ~10%":
        shares = np.bincount(lib.city[lib.city >= 0], minlength=len(CITIES)) / len(lib)
        return {"city": CITIES[int(np.argmin(np.abs(shares - 0.10)))][0]}, False
    return {}, True  # an owner's own scope (Allen, 98 % of the photos), as every non-admin search is


@pytest.mark.parametrize("filter_name", ["none", "date ~10%", "city ~10%", "owner"])
@pytest.mark.parametrize("query_class", list(CLASSES))
@pytest.mark.parametrize("copy", ["memory", "postgres"])
@pytest.mark.parametrize("kind", ["unlisted", "lists"])
def test_every_page_meets_the_recall_target(
    library: Library, kind: str, copy: str, query_class: str, filter_name: str
) -> None:
    lib = library.lib
    service = SearchService(library.dbs[kind], resident=library.copies[kind] if copy == "memory" else None)
    filters, own = _filters(lib, filter_name)
    user = library.allen if own else library.admin
    mask = reference_mask(lib, SearchQuery(vector=[0.0] * DIM, **filters), ["Allen"] if own else None)
    assert mask.sum() >= K * PAGES
    if filter_name != "none" and not own:
        assert 0.05 <= mask.mean() <= 0.15
    index = {uid: i for i, uid in enumerate(lib.ids)}
    recalls = np.zeros((QUERIES, PAGES))
    strategies = set()
    for qi, q in enumerate(_queries(lib, CLASSES[query_class])):
        sims = np.where(mask, lib.embeddings @ q, -np.inf)
        truth = np.argsort(-sims, kind="stable")[: K * PAGES]
        shown: list[int] = []
        for p in range(PAGES):
            page = service.search(SearchQuery(vector=q.tolist(), k=K, page=p + 1, **filters), user)
            rows = [index[h.id] for h in page.items]
            assert len(rows) == K  # complete: every page has k rows (the filters match far more)
            assert all(mask[r] for r in rows)
            recalls[qi, p] = len(set(rows) & set(truth[p * K : (p + 1) * K].tolist())) / K
            shown += rows
            strategies.add(page.plan.strategy)
        assert len(shown) == len(set(shown)), "a row was shown on two pages"
    assert recalls.mean(axis=0).min() >= 0.98, (recalls.mean(axis=0), strategies)
    assert recalls.min() >= 0.9, (recalls.min(axis=0), strategies)


def test_the_query_classes_span_the_distances(library: Library) -> None:
    """The far class is far: its best matches sit at cosine ~0.14-0.25, as a text query that fits nothing."""
    lib = library.lib
    best = {c: float(np.median((lib.embeddings @ _queries(lib, n).T).max(axis=0))) for c, n in CLASSES.items()}
    assert best["image"] > 0.6 and 0.25 < best["text"] < 0.4 and 0.14 < best["far"] < 0.25, best
