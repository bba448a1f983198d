"""The text-in-photos filter (`ocr_text`) on every search path: the in-memory copy does not hold it, so a search
with it is checked by PostgreSQL wherever it is ranked, and stays complete — min(k, matches) rows, the same as a
numpy brute force over the rows whose text matches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from photosearch.db.accounts import create_user
from photosearch.db.pool import connect_pool
from photosearch.db.server import ServerInfo
from photosearch.search import PlannerConfig, SearchQuery, SearchService
from photosearch.search.lists import train_lists
from photosearch.search.resident import ResidentCache
from photosearch.search.synthetic import make_library
from tests.search.conftest import brute_force, insert_library, synthetic_database
from tests.search.reference import reference_mask

WORDS = ["harbour", "ramen", "exit", "東京駅", "sale"]


@pytest.fixture(scope="module")
def texts(pg_admin_dsn: str) -> Iterator[tuple]:
    """1,200 rows, a third of them with a sign: one or two words of WORDS (CJK included)."""
    with synthetic_database(pg_admin_dsn, "t") as (dsn, _):
        db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=3)
        lib = make_library(1200, 32, seed=11, event_size=30)
        insert_library(db, lib)
        train_lists(db, lists=8, min_rows=0)
        rng = np.random.default_rng(3)
        signs: dict[int, str] = {}
        for i in np.nonzero(rng.random(len(lib)) < 0.33)[0]:
            signs[int(i)] = " ".join(rng.choice(WORDS, size=rng.integers(1, 3), replace=False)) + " OPEN"
        with db.connection() as conn:
            conn.cursor().executemany(
                "INSERT INTO asset_text (asset_id, checksum, text) VALUES (%s, '\\x00', %s)",
                [(lib.ids[i], text) for i, text in signs.items()],
            )
        resident = ResidentCache(db, 1 << 30)
        resident.load()
        admin = create_user(db, "root", "root@example.org", is_admin=True)
        try:
            yield db, lib, signs, resident, admin
        finally:
            db.close()


def _shows(signs: dict[int, str], n: int, needle: str) -> np.ndarray:
    """Reference: every word of the needle in the sign, or the needle as a substring (case-folded)."""
    m = np.zeros(n, dtype=bool)
    for i, text in signs.items():
        t = text.casefold()
        m[i] = needle.casefold() in t or all(w in t.split() for w in needle.casefold().split())
    return m


@pytest.mark.parametrize("strategy", ["auto", "exact", "quantized", "approximate", "memory"])
@pytest.mark.parametrize("needle", ["harbour", "RAMEN exit", "東京", "no such sign"])
def test_text_filter_is_complete_on_every_path(texts: tuple, strategy: str, needle: str) -> None:
    db, lib, signs, resident, admin = texts
    service = SearchService(db, config=PlannerConfig(exact_max_rows=0), resident=resident)
    for i in (5, 500, 1000):
        q = lib.embeddings[i]
        for extra in ({}, {"city": "Kyoto"}, {"is_favorite": False}):
            query = SearchQuery(vector=q.tolist(), k=20, ocr_text=needle, strategy=strategy, **extra)
            page = service.search(query, admin)
            mask = reference_mask(lib, query) & _shows(signs, len(lib), needle)
            want = brute_force(lib, mask, q, 20)
            got = [h.id for h in page.items]
            assert len(got) == min(20, int(mask.sum())), (strategy, needle, extra, page.plan)
            assert set(got) <= {lib.ids[j] for j in np.nonzero(mask)[0]}
            assert len(set(got) & set(want)) >= 0.9 * len(want)
            if strategy == "memory":
                assert page.plan.strategy != "memory" or "ocr" not in str(page.plan.reason)


def test_text_alone_ranks_by_the_text(texts: tuple) -> None:
    db, lib, signs, _, admin = texts
    query = SearchQuery(ocr_text="harbour", k=1000)
    page = SearchService(db).search(query, admin)
    mask = reference_mask(lib, query) & _shows(signs, len(lib), "harbour")
    assert {h.id for h in page.items} == {lib.ids[j] for j in np.nonzero(mask)[0]}
    assert page.plan.strategy == "text"
    assert [h.score for h in page.items] == sorted((h.score for h in page.items), reverse=True)
