""" "Relevant only" on the synthetic library, where each event's photos are the true relevant set of a query built
from the event (its photos' mean direction, plus noise for a loosely worded query): precision and recall over 120
queries, completeness across pages, and both date orders."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from photosearch.db.accounts import create_user
from photosearch.db.pool import connect_pool
from photosearch.db.server import ServerInfo
from photosearch.search import SearchQuery, SearchService
from photosearch.search.relevance import cutoff
from photosearch.search.synthetic import make_library, normalise
from tests.search.conftest import insert_library, synthetic_database
from tests.search.reference import reference_mask


@pytest.fixture(scope="module")
def events(pg_admin_dsn: str) -> Iterator[tuple]:
    with synthetic_database(pg_admin_dsn, "rel") as (dsn, _):
        db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=3)
        lib = make_library(8000, 64, seed=3, event_size=60)
        insert_library(db, lib)
        admin = create_user(db, "root", "root@example.org", is_admin=True)
        try:
            yield db, lib, admin
        finally:
            db.close()


def test_cutoff_at_the_largest_drop_above_the_background() -> None:
    ranked = np.array([0.95, 0.89, 0.88, 0.87, 0.6, 0.59, 0.3])
    background = np.random.default_rng(0).normal(0.3, 0.05, 500)
    cut, floor = cutoff(ranked, background)
    assert 0.6 < cut < 0.87 and floor == pytest.approx(background.mean() + 3 * background.std())
    assert cutoff(np.array([0.5]), background)[0] == 0.5


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_relevant_only_finds_the_event(events: tuple, noise: float) -> None:
    db, lib, admin = events
    service = SearchService(db)
    event_of = lib.extra["event_of"]
    rng = np.random.default_rng(5)
    precision, recall = [], []
    for e in rng.choice(np.unique(event_of), 120, replace=False):
        members = event_of == e
        q = normalise(lib.embeddings[members].mean(0) + noise * normalise(rng.standard_normal(64)))
        query = SearchQuery(vector=q.tolist(), k=1000, relevant_only=True)
        truth = members & reference_mask(lib, query)
        got = {h.id for h in service.search(query, admin).items}
        want = {lib.ids[i] for i in np.nonzero(truth)[0]}
        precision.append(len(got & want) / max(len(got), 1))
        recall.append(len(got & want) / max(len(want), 1))
    p, r = float(np.mean(precision)), float(np.mean(recall))
    assert p >= 0.9 and r >= 0.9, (p, r)


def test_relevant_pages_are_complete_in_both_date_orders(events: tuple) -> None:
    db, lib, admin = events
    service = SearchService(db)
    event_of = lib.extra["event_of"]
    q = normalise(lib.embeddings[event_of == event_of[0]].mean(0))
    everything = service.search(SearchQuery(vector=q.tolist(), k=1000, relevant_only=True), admin)
    assert "relevant only" in everything.plan.reason
    relevant = {h.id for h in everything.items}
    assert 10 < len(relevant) < 200
    for order, newest_first in (("date", True), ("date_asc", False)):
        seen, page = [], 1
        while page is not None:
            res = service.search(SearchQuery(vector=q.tolist(), k=7, page=page, relevant_only=True, order=order), admin)
            seen += res.items
            page = res.next_page
        assert {h.id for h in seen} == relevant and len(seen) == len(relevant)
        dates = [h.local_date_time for h in seen]
        assert dates == sorted(dates, reverse=newest_first)
