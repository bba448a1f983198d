"""Single-photo reads with a read replica: what the primary still does per read, and the latency, in one run.

Starts an embedded primary, loads a synthetic library (`search/synthetic.py`), makes a streaming replica
(`db replica create`'s code) and reads the same random live photos with `asset_for_user` (the row behind
`GET /api/assets/{id}`, thumbnails and originals) three ways:
  primary        the read on the primary alone (no replicas configured);
  replica        `ReplicaSet.read_one`: the read on the replica, confirmed on the primary (`confirm_access`);
  confirm only   the primary's share of `replica`: `confirm_access`, one `ACCESS_SQL` lookup.
Reports ms per read (median) and shared buffers the primary touches per read (EXPLAIN ANALYZE BUFFERS).

    python benchmarks/replica_reads.py [--rows 20000] [--reads 500]

Writes benchmarks/results/replica_reads.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
RESULTS = ROOT / "benchmarks" / "results"


def _ms(fn, args: list) -> float:
    times = []
    for a in args:
        t = time.perf_counter()
        fn(a)
        times.append(1000 * (time.perf_counter() - t))
    return round(statistics.median(times), 3)


def _buffers(dsn: str, sql: str, params: list) -> float:
    """Mean shared buffers (hit + read) one statement touches on the primary."""
    import psycopg

    total = 0
    with psycopg.connect(dsn) as conn:
        for p in params:
            plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, p).fetchone()[0][0]["Plan"]
            total += plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
    return round(total / len(params), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--reads", type=int, default=500)
    args = ap.parse_args()
    import numpy as np
    import psycopg

    from photosearch.db.asset_access import asset_for_user
    from photosearch.db.migrate import migrate
    from photosearch.db.pool import ServerInfo, check_pgvector, connect_pool
    from photosearch.db.replica import create_replica, stop_replica
    from photosearch.db.replicas import ACCESS_SQL, ReplicaSet
    from photosearch.db.server import start_embedded, stop_embedded, with_dbname
    from photosearch.search.synthetic import make_library
    from tests.search.conftest import insert_library
    from tests.search.test_replica import _caught_up

    tmp = Path(tempfile.mkdtemp(prefix="psrrb-", dir="/tmp"))
    admin = start_embedded(tmp / "p")
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE replica_reads")
        dsn = with_dbname(admin, "replica_reads")
        check_pgvector(dsn)
        migrate(dsn)
        lib = make_library(args.rows, 32, seed=4, event_size=30)
        with connect_pool(ServerInfo(dsn, False, None), max_size=4) as db:
            owners = insert_library(db, lib)
        replica = create_replica(dsn, tmp / "r")
        _caught_up(dsn, replica)
        live = np.flatnonzero(~lib.deleted)
        rng = np.random.default_rng(1)
        picks = [
            (lib.ids[i], owners[lib.owner_names[lib.owner[i]]]) for i in rng.choice(live, args.reads, replace=False)
        ]
        primary = connect_pool(ServerInfo(dsn, False, None), max_size=4)
        replicas = ReplicaSet.open(primary, [replica])
        try:
            for aid, owner in picks[:50]:  # warm both servers' caches and pools
                asset_for_user(primary, aid, owner)
                replicas.read_one(lambda db, a=aid, o=owner: asset_for_user(db, a, o))
            rows = {
                "primary": _ms(lambda p: asset_for_user(primary, *p), picks),
                "replica": _ms(lambda p: replicas.read_one(lambda db: asset_for_user(db, *p)), picks),
            }
            fetched = [asset_for_user(primary, *p) for p in picks]
            rows["confirm only"] = _ms(replicas.confirm_access, fetched)  # as read_one calls it: pool checkout + lookup
            served = dict(replicas.served)
        finally:
            replicas.close()
            primary.close()
        full_sql = (
            "SELECT a.*, l.import_paths, e.* FROM assets a JOIN libraries l ON l.id = a.library_id"
            " LEFT JOIN exif e ON e.asset_id = a.id WHERE a.id = %s AND a.deleted_at IS NULL AND a.owner_id = %s"
        )
        buffers = {
            "primary": _buffers(dsn, full_sql, [list(p) for p in picks[:100]]),
            "confirm only": _buffers(dsn, ACCESS_SQL, [[p[0]] for p in picks[:100]]),
        }
    finally:
        stop_replica(tmp / "r")
        stop_embedded(tmp / "p")
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.rows} photos, {args.reads} single-photo reads (median), served: {served}")
    print(f"{'path':<14} {'ms/read':>8} {'primary buffers/read':>21}")
    print(f"{'primary':<14} {rows['primary']:>8.3f} {buffers['primary']:>21}")
    print(f"{'replica':<14} {rows['replica']:>8.3f} {buffers['confirm only']:>21}")
    print(f"{'confirm only':<14} {rows['confirm only']:>8.3f} {buffers['confirm only']:>21}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"rows": args.rows, "reads": args.reads, "ms_per_read": rows, "primary_buffers_per_read": buffers}
    (RESULTS / "replica_reads.json").write_text(json.dumps({**out, "served": served}, indent=2) + "\n")


if __name__ == "__main__":
    main()
