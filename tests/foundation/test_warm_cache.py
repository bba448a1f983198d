"""Reading the search relations into the OS page cache (`serve` does it in the background after a start)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from photosearch.db.server import warm_page_cache

RELATIONS = (
    "SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c"
    " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'i', 'm')"
)


def test_warm_page_cache_reads_every_search_relation_within_its_budget(db_dsn: str, db) -> None:  # noqa: ANN001
    with psycopg.connect(db_dsn) as conn:
        pgdata = Path(conn.execute("SHOW data_directory").fetchone()[0])
        size = int(conn.execute(RELATIONS).fetchone()[0])
    assert size > 0
    assert warm_page_cache(pgdata, db_dsn) == size  # every file of every table and index, nothing else
    assert warm_page_cache(pgdata, db_dsn, budget_bytes=12_345) == 12_345
