"""Memory for the embedded server: shared_buffers sized to the database, and the OS page cache warmed with the
search relations (`serve` does it in the background after a start)."""

from __future__ import annotations

from pathlib import Path

import psutil
import psycopg

from photosearch.config import Settings
from photosearch.db.server import database_bytes, warm_page_cache

RELATIONS = (
    "SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c"
    " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'i', 'm')"
)
MB = 2**20


def _pgdata(dsn: str) -> Path:
    with psycopg.connect(dsn) as conn:
        return Path(conn.execute("SHOW data_directory").fetchone()[0])


def test_warm_page_cache_reads_every_search_relation_within_its_budget(db_dsn: str, db) -> None:  # noqa: ANN001
    with psycopg.connect(db_dsn) as conn:
        size = int(conn.execute(RELATIONS).fetchone()[0])
    assert size > 0
    assert warm_page_cache(_pgdata(db_dsn), db_dsn) == size  # every file of every table and index, nothing else
    assert warm_page_cache(_pgdata(db_dsn), db_dsn, budget_bytes=12_345) == 12_345


def test_database_bytes_is_what_postgres_counts(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as conn:
        expected = int(conn.execute("SELECT sum(pg_database_size(oid)) FROM pg_database").fetchone()[0])
    measured = database_bytes(_pgdata(db_dsn))
    assert abs(measured - expected) <= 0.05 * expected  # the same files; autovacuum may move a few pages meanwhile
    assert database_bytes(Path("/nonexistent/pgdata")) == 0


def test_shared_buffers_fit_the_database_up_to_a_quarter_of_ram(tmp_path: Path) -> None:
    ram_mb = psutil.virtual_memory().total // MB
    floor = min(max(ram_mb // 8, 128), 2048)
    settings = Settings(data_dir=tmp_path)

    def shared(database_bytes: int) -> int:
        return int(settings.embedded_tuning(database_bytes)["shared_buffers"].removesuffix("MB"))

    assert shared(0) == floor  # a new library: the old default
    mid = (floor + ram_mb // 4) // 2
    assert shared(mid * MB) == max(floor, min(mid * 5 // 4, ram_mb // 4))  # the database and a quarter more
    assert shared(10 * ram_mb * MB) == max(floor, ram_mb // 4)  # never more than a quarter of RAM
    pinned = Settings(data_dir=tmp_path, pg_shared_buffers="300MB")
    assert pinned.embedded_tuning(10 * ram_mb * MB)["shared_buffers"] == "300MB"
