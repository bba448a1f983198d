"""Per-photo costs that docs/scale.md extrapolates to 10M and 100M photos, measured on a synthetic library.

Loads N photos (default 100k, ViT-B/32's 512-d, through search_bench's loader: assets, EXIF, embeddings, the
trigger-kept filter copies, HNSW m=24) into a fresh embedded server, trains the search lists, then measures:
  - bytes per photo of every table, TOAST and index (pg_relation_size), grouped by table;
  - bytes per photo of the in-memory copy `photosearch serve` holds (ResidentCache.nbytes);
  - HNSW build seconds per photo: full precision, halfvec, and binary-quantised (bit(512), hamming) indexes;
  - VACUUM after deleting 1 % of the photos (HNSW vacuum re-links every neighbour of a dead tuple).

    python benchmarks/scale_costs.py [--rows 100000]

Writes benchmarks/results/scale_costs.json; prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]
RESULTS = ROOT / "benchmarks" / "results"


def relation_bytes(conn) -> list[tuple[str, str, str, int]]:
    """(table, kind, relation, bytes) for every relation of the public schema with storage."""
    return conn.execute(
        "SELECT coalesce(t.relname, c.relname),"
        " CASE c.relkind WHEN 'i' THEN 'index' WHEN 't' THEN 'toast' ELSE 'heap' END, c.relname,"
        " pg_relation_size(c.oid)"
        " FROM pg_class c"
        " LEFT JOIN pg_index i ON i.indexrelid = c.oid"
        " LEFT JOIN pg_class tt ON tt.reltoastrelid = c.oid"
        " LEFT JOIN pg_class t ON t.oid = coalesce(i.indrelid, tt.oid)"
        " WHERE c.relkind IN ('r', 'i', 't', 'm') AND pg_relation_size(c.oid) > 0"
        " AND coalesce(t.relnamespace, c.relnamespace) = 'public'::regnamespace"
        " ORDER BY 4 DESC"
    ).fetchall()


def timed_index(conn, name: str, expr: str, rows: int) -> dict:
    t = time.perf_counter()
    conn.execute(f"CREATE INDEX {name} ON smart_search USING hnsw ({expr}) WITH (m = 24, ef_construction = 64)")
    s = time.perf_counter() - t
    size = conn.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()[0]
    conn.execute(f"DROP INDEX {name}")
    return {"build_s": round(s, 1), "build_ms_per_row": round(1000 * s / rows, 3), "bytes_per_row": round(size / rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    args = ap.parse_args()
    import psycopg
    from search_bench import load

    from photosearch.config import Settings
    from photosearch.db.pool import ServerInfo, connect_pool
    from photosearch.db.server import start_embedded, stop_embedded
    from photosearch.search.lists import train_lists
    from photosearch.search.resident import ResidentCache

    n, dim = args.rows, args.dim
    tmp = Path(tempfile.mkdtemp(prefix="psscale-", dir="/tmp"))
    admin = start_embedded(tmp / "pgdata")
    try:
        dsn, info = load(admin, n, dim, 24, 64, True, "vector", tmp)
        with connect_pool(ServerInfo(dsn, False, None), max_size=2) as db:
            t = time.perf_counter()
            trained = train_lists(db, force=True)
            lists_s = time.perf_counter() - t
            held = ResidentCache(db, Settings().search_memory_bytes()).load()
            resident = held.nbytes if held is not None else None
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            rels = relation_bytes(conn)
            conn.execute("SET maintenance_work_mem = '1GB'")
            halfvec = timed_index(conn, "scale_halfvec", f"(embedding::halfvec({dim})) halfvec_cosine_ops", n)
            binary = timed_index(conn, "scale_binary", f"(binary_quantize(embedding)::bit({dim})) bit_hamming_ops", n)
            conn.execute(
                "DELETE FROM assets WHERE id IN (SELECT id FROM assets ORDER BY random() LIMIT %s)", (n // 100,)
            )
            t = time.perf_counter()
            conn.execute("VACUUM smart_search")
            conn.execute("VACUUM search_ivf")
            vacuum_s = time.perf_counter() - t
    finally:
        stop_embedded(tmp / "pgdata")
    tables: dict[str, dict] = {}
    for table, kind, rel, size in rels:
        t = tables.setdefault(table, {"heap": 0, "toast": 0, "index": 0, "relations": {}})
        t[kind] += size
        t["relations"][rel] = round(size / n, 1)
    total = sum(size for *_, size in rels)
    out = {
        "rows": n,
        "dim": dim,
        "load": info,
        "lists": {"lists": trained.lists, "train_s": round(lists_s, 1)},
        "bytes_per_row": {
            k: {kind: round(t[kind] / n, 1) for kind in ("heap", "toast", "index")} for k, t in tables.items()
        },
        "relations_bytes_per_row": {k: t["relations"] for k, t in tables.items()},
        "total_bytes_per_row": round(total / n),
        "resident_bytes_per_row": round(resident / n) if resident else None,
        "hnsw_vector": {"build_ms_per_row": round(1000 * info["hnsw_build_s"] / n, 3)},
        "hnsw_halfvec": halfvec,
        "hnsw_binary": binary,
        "vacuum_after_1pct_delete_s": round(vacuum_s, 1),
    }
    print(f"{n} photos, {dim}-d: {out['total_bytes_per_row']} bytes per photo on disk in total")
    print(f"{'table':<24} {'heap B':>8} {'toast B':>8} {'index B':>8}")
    for k, v in sorted(out["bytes_per_row"].items(), key=lambda kv: -sum(kv[1].values())):
        print(f"{k:<24} {v['heap']:>8.0f} {v['toast']:>8.0f} {v['index']:>8.0f}")
    print(f"in-memory copy: {out['resident_bytes_per_row']} B per photo")
    print(
        f"HNSW build ms/photo: vector {out['hnsw_vector']['build_ms_per_row']},"
        f" halfvec {halfvec['build_ms_per_row']} ({halfvec['bytes_per_row']} B/photo),"
        f" binary {binary['build_ms_per_row']} ({binary['bytes_per_row']} B/photo)"
    )
    print(f"VACUUM of smart_search + search_ivf after deleting 1 %: {out['vacuum_after_1pct_delete_s']} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale_costs.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
