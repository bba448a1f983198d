"""Filtered kNN benchmark: photosearch's planner vs plain pgvector, across filter selectivities.

    python benchmarks/search_bench.py                    # 100k rows (default)
    python benchmarks/search_bench.py --rows 1000000     # 1M rows (load ~3 min, HNSW build several minutes)
    python benchmarks/search_bench.py --index-type halfvec --tag _halfvec   # HNSW on embedding::halfvec(dim)

Synthetic clustered 512-d CLIP-like embeddings with realistic metadata (photosearch.search.synthetic):
owners with skewed shares (Allen 98 %), events with one date/place/camera each, favourites, trash.
For each selectivity level and method: completeness (share of queries returning min(k, matches) rows),
recall@k against exact search, p50/p95 latency, QPS (one client). Prints a table, writes JSON and a PNG
to benchmarks/results/. Runs on its own embedded PostgreSQL (default /tmp/photosearch-bench), reused
between runs with the same --rows (and --index-type: a halfvec database is named ..._halfvec, so both coexist).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import tracemalloc
from dataclasses import asdict
from pathlib import Path
from uuid import UUID

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_bench_levels import levels_for  # noqa: E402

from photosearch.config import Settings  # noqa: E402
from photosearch.db import search as sq  # noqa: E402
from photosearch.db.embedding import HNSW_EF_CONSTRUCTION, HNSW_M, INDEX_TYPES, hnsw_order  # noqa: E402
from photosearch.db.migrate import migrate  # noqa: E402
from photosearch.db.pool import Database, check_pgvector, connect_pool  # noqa: E402
from photosearch.db.search_synthetic import bulk_insert_synthetic  # noqa: E402
from photosearch.db.server import (  # noqa: E402
    ServerInfo,
    start_embedded,
    stop_embedded,
    warm_page_cache,
    with_dbname,
)
from photosearch.search import PlannerConfig, SearchQuery, SearchService  # noqa: E402
from photosearch.search.lists import train_lists  # noqa: E402
from photosearch.search.resident import ResidentCache  # noqa: E402
from photosearch.search.synthetic import make_library  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ["photosearch", "pgvector default", "pgvector iterative", "exact"]


def product_shared_buffers(rows: int, dim: int) -> str:
    """What the embedded server would pick for a library this size on this machine (rows × dim × 16 bytes: the
    vector, its half-precision copy, the HNSW graph, assets and EXIF): the database + 25 %, up to RAM / 4."""
    return Settings().embedded_tuning(rows * dim * 4 * 4)["shared_buffers"]


def resident_copy(db: Database, cache_class: type = ResidentCache) -> ResidentCache:
    """The in-memory copy of the search lists that `photosearch serve` keeps (with its default budget), loaded
    now rather than in the background. `cache_class`: another revision's ResidentCache (search_ab.py)."""
    resident = cache_class(db, Settings().search_memory_bytes())
    t = time.perf_counter()
    held = resident.load()
    if held is None:
        print(f"search lists not held in memory: {resident.skipped}", flush=True)
    else:
        print(
            f"search lists in memory: {len(held.ids)} rows, {held.nbytes / 2**20:.0f} MB,"
            f" loaded in {time.perf_counter() - t:.1f} s",
            flush=True,
        )
    return resident


def server(data_dir: Path, shared_buffers: str) -> str:
    pgdata = data_dir / "pgdata"
    admin = start_embedded(pgdata)
    with psycopg.connect(admin, autocommit=True) as conn:
        # compared in bytes: SHOW says 2GB where we asked for 2048MB, and a needless restart ends other clients' runs
        same = conn.execute(
            "SELECT pg_size_bytes(current_setting('shared_buffers')) = pg_size_bytes(%s)", (shared_buffers,)
        ).fetchone()[0]
        if not same:
            conn.execute(sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(sql.Literal(shared_buffers)))
            restart = True
        else:
            restart = False
    if restart:
        stop_embedded(pgdata)
        admin = start_embedded(pgdata)
    return admin


def load(
    admin: str, rows: int, dim: int, m: int, efc: int, fresh: bool, index_type: str, data_dir: Path
) -> tuple[str, dict]:
    name = f"bench_{rows}_{dim}_m{m}_efc{efc}" + ("" if index_type == "vector" else f"_{index_type}")
    dsn = with_dbname(admin, name)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not fresh:
            migrate(dsn)  # a database from an older photosearch gets the newer search schema
            with psycopg.connect(dsn) as c:
                info = c.execute("SELECT value FROM system_metadata WHERE key = 'bench'").fetchone()
            if info:
                print(f"reusing database {name}", flush=True)
                return dsn, info[0]
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    for stale in data_dir.glob(f"exact_{name}_*.json"):  # exact results of the database this one replaces
        stale.unlink()
    check_pgvector(dsn)
    migrate(dsn)
    t = time.perf_counter()
    lib = make_library(rows, dim)
    gen_s = time.perf_counter() - t
    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        conn.execute(
            "UPDATE system_metadata SET value = jsonb_build_object('model', 'synthetic', 'dim', %s::int,"
            " 'index_type', %s::text) WHERE key = 'embedding'",
            (dim, index_type),
        )
        conn.execute(sql.SQL("ALTER TABLE smart_search ALTER COLUMN embedding TYPE vector({})").format(dim))
        conn.execute("ALTER TABLE smart_search ALTER COLUMN embedding SET STORAGE PLAIN")
        t = time.perf_counter()
        bulk_t = time.perf_counter()
        bulk_insert_synthetic(conn, lib)
        conn.commit()
        load_s = time.perf_counter() - bulk_t
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("SET maintenance_work_mem = '4GB'")
        t = time.perf_counter()
        column = sql.SQL("embedding vector_cosine_ops")
        if index_type == "halfvec":  # the same expression index as photosearch.db.embedding builds
            column = sql.SQL("(embedding::halfvec({})) halfvec_cosine_ops").format(sql.Literal(dim))
        conn.execute(
            sql.SQL(
                "CREATE INDEX smart_search_embedding_idx ON smart_search USING hnsw ({})"
                " WITH (m = {}, ef_construction = {})"
            ).format(column, sql.Literal(m), sql.Literal(efc))
        )
        build_s = time.perf_counter() - t
        sizes = conn.execute(
            "SELECT pg_size_pretty(pg_relation_size('smart_search')),"
            " pg_size_pretty(pg_relation_size('smart_search_embedding_idx')),"
            " pg_relation_size('smart_search_embedding_idx')"
        ).fetchone()
        info = {
            "rows": rows,
            "dim": dim,
            "index_type": index_type,
            "m": m,
            "ef_construction": efc,
            "generate_s": round(gen_s, 1),
            "load_s": round(load_s, 1),
            "hnsw_build_s": round(build_s, 1),
            "table_size": sizes[0],
            "index_size": sizes[1],
            "index_bytes": sizes[2],
        }
        conn.execute("INSERT INTO system_metadata (key, value) VALUES ('bench', %s)", (json.dumps(info),))
    print(f"loaded {rows} rows: {info}", flush=True)
    return dsn, info


def sample_queries(dsn: str, n: int, seed: int = 99, noise_scale: float = 0.7, skip: int = 0) -> np.ndarray:
    """Queries near the data but not on it: stored embeddings plus a random vector of length `noise_scale`.
    0.7 puts a query at cosine ~0.8 from its source photo, like an example-image query; 3.2 at ~0.3, like a
    CLIP text query against photos (text-image similarities top out around 0.3). `skip`: start after that many
    source photos (warm-up queries that share none with the measured ones)."""
    with psycopg.connect(dsn) as conn:
        register_vector(conn)
        conn.execute("SELECT setseed(0.42)")
        rows = conn.execute(
            # ORDER BY: with synchronized scans a sample scan may start mid-table, and LIMIT alone would then
            # pick different rows (and a different query set) in every run.
            "SELECT embedding FROM smart_search TABLESAMPLE BERNOULLI (1) REPEATABLE (7) ORDER BY asset_id"
            " LIMIT %s OFFSET %s",
            (n, skip),
        ).fetchall()
    base = np.stack([r[0].to_numpy() for r in rows]).astype(np.float32)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(base.shape).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    q = base + noise_scale * noise
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def pgvector_query(
    conn: psycopg.Connection, vec: np.ndarray, where: sq.Where, k: int, settings: dict, index_type: str
) -> list:
    """What a pgvector user writes: filter + ORDER BY distance LIMIT k, with the given hnsw.* settings (and
    the index's own expression, `embedding::halfvec(dim)`, with a halfvec index)."""
    with conn.transaction():
        sq.set_local(conn, {"jit": "off", "max_parallel_workers_per_gather": 0, **settings})
        query = sql.SQL("SELECT s.asset_id FROM {} WHERE {} ORDER BY {} LIMIT %(k)s").format(
            where.from_clause, where.clause, hnsw_order(index_type, len(vec))
        )
        return [r[0] for r in conn.execute(query, {**where.params, "q": vec, "k": k})]


def run_level(
    conn,
    service,
    admin_user,
    queries,
    level: dict,
    k: int,
    ef: int | None,
    index_type: str = "vector",
    methods: list[str] = METHODS,
    truth_cache: dict | None = None,
    warmup: np.ndarray | None = None,
) -> dict:
    """One filter level: every method over all queries. `truth_cache` (level label → exact ids per query)
    spares re-running exact search when "exact" is not among `methods` (at 1M it takes seconds per query).
    `warmup`: other queries each method (but exact) runs first, untimed, so no method is measured on the caches
    the previous one left (an exact scan of 1M rows evicts what the next method needs)."""
    base = SearchQuery(vector=[0.0] * queries.shape[1], k=k, **level["filters"])
    scope = service.owner_scope(conn, base, admin_user)
    where = sq.compile_filters(base, scope)
    matches = sq.count_matches(conn, where)
    conn.commit()
    need = min(k, matches)
    out: dict = {"label": level["label"], "matches": matches, "methods": {}}
    per: dict[str, dict[str, list]] = {m: {"lat": [], "ids": [], "plans": []} for m in methods}
    pg_default = {"hnsw.ef_search": ef or 40} if ef else {}
    pg_iter = {"hnsw.iterative_scan": "relaxed_order", **({"hnsw.ef_search": ef} if ef else {})}
    args = {**level["filters"], "k": k}
    # One method at a time over all queries (as a server would see them), not interleaved: an exact scan of
    # 100k rows between two photosearch queries evicts the pages the next one needs.
    for method in methods:
        warm = warmup if warmup is not None and method != "exact" else queries[:0]
        for i, q in enumerate(np.concatenate([warm, queries])):
            timed = i >= len(warm)
            t = time.perf_counter()
            if method == "photosearch":
                page = service.search(SearchQuery(vector=q.tolist(), ef_search=None, **args), admin_user)
                ids = [h.id for h in page.items]
                if timed:
                    per[method]["plans"].append(page.plan.strategy + (" (fallback)" if page.plan.fallback else ""))
            elif method == "exact":
                page = service.search(SearchQuery(vector=q.tolist(), strategy="exact", **args), admin_user)
                ids = [h.id for h in page.items]
            elif method == "pgvector default":
                ids = pgvector_query(conn, q, where, k, pg_default, index_type)
            else:
                ids = pgvector_query(conn, q, where, k, pg_iter, index_type)
            if timed:
                per[method]["lat"].append(time.perf_counter() - t)
                per[method]["ids"].append(ids)
    key = f"{level['label']}|k={k}"
    if "exact" in per:
        truth_ids = per["exact"]["ids"]
        if truth_cache is not None:
            truth_cache[key] = [[str(i) for i in ids] for ids in truth_ids]
    elif truth_cache is not None and key in truth_cache:
        truth_ids = [[UUID(i) for i in ids] for ids in truth_cache[key]]
    else:
        raise SystemExit(f"no exact results cached for {key!r}: run once with the exact method")
    truth = [set(ids) for ids in truth_ids]
    for method in methods:
        lat = np.array(per[method]["lat"]) * 1000
        ids = per[method]["ids"]
        recall = [len(set(i) & t) / max(1, len(t)) if t else 1.0 for i, t in zip(ids, truth, strict=True)]
        complete = [len(i) == need for i in ids]
        plans = per[method]["plans"]
        out["methods"][method] = {
            "completeness": float(np.mean(complete)),
            "recall": float(np.mean(recall)),
            "p50_ms": float(np.percentile(lat, 50)),
            "p95_ms": float(np.percentile(lat, 95)),
            "qps": float(1000.0 / lat.mean()),
            **({"plans": {p: plans.count(p) for p in sorted(set(plans))}} if plans else {}),
        }
    return out


QUERY_CLASSES = {"image": 0.7, "text": 3.2, "far": 5.5}  # noise: cosine ~0.8 to the source photo, ~0.3, ~0.18
PAGE_LEVELS = ("none (100%)", "taken ~10%", "owner != Allen (~2%)")  # and the ~10 % place or camera level


def library_vectors(dsn: str, dim: int) -> tuple[dict[UUID, int], np.ndarray]:
    """Every embedding (row i) and its asset id's row: numpy's brute force ranks these."""
    from photosearch.db.search_lists import stream_embeddings

    ids: list[bytes] = []
    chunks = []
    with psycopg.connect(dsn) as conn:
        for chunk_ids, vecs in stream_embeddings(conn, dim):
            ids += chunk_ids
            chunks.append(vecs)
    return {UUID(bytes=b): i for i, b in enumerate(ids)}, np.concatenate(chunks)


def run_pages(
    conn, service, admin_user, dsn: str, vectors, level: dict, k: int, pages: int, queries: dict[str, np.ndarray]
) -> list[dict]:
    """Pages 1..`pages` of each query class under one filter level: recall of each page against numpy brute
    force over the rows the filter matches (ranks offset+1…offset+k), rows shown twice, latency per page."""
    index, emb = vectors
    base = SearchQuery(vector=[0.0] * emb.shape[1], k=k, **level["filters"])
    where = sq.compile_filters(base, service.owner_scope(conn, base, admin_user))
    rows = conn.execute(
        sql.SQL("SELECT s.asset_id FROM {} WHERE {}").format(where.from_clause, where.clause), where.params
    ).fetchall()
    conn.commit()
    matching = np.array(sorted(index[r[0]] for r in rows), dtype=np.int64)
    out = []
    for name, qs in queries.items():
        recall = np.zeros((len(qs), pages))
        lat = np.zeros((len(qs), pages))
        repeats, plans, best = 0, {}, []
        for qi, q in enumerate(qs):
            sims = emb[matching] @ q
            truth = matching[np.argsort(-sims, kind="stable")[: k * pages]]
            best.append(float((emb @ q).max()))
            shown: list[int] = []
            for p in range(pages):
                t = time.perf_counter()
                page = service.search(SearchQuery(vector=q.tolist(), k=k, page=p + 1, **level["filters"]), admin_user)
                lat[qi, p] = (time.perf_counter() - t) * 1000
                got = [index[h.id] for h in page.items]
                want = truth[p * k : (p + 1) * k].tolist()
                recall[qi, p] = len(set(got) & set(want)) / max(1, len(want))
                shown += got
                plan = page.plan.strategy + (" (widened)" if page.plan.fallback else "")
                plans[plan] = plans.get(plan, 0) + 1
            repeats += len(shown) - len(set(shown))
        out.append(
            {
                "label": level["label"],
                "class": name,
                "matches": len(matching),
                "best_cosine": round(float(np.median(best)), 3),
                "pages": [
                    {
                        "page": p + 1,
                        "recall": float(recall[:, p].mean()),
                        "worst": float(recall[:, p].min()),
                        "p50_ms": float(np.percentile(lat[:, p], 50)),
                        "p95_ms": float(np.percentile(lat[:, p], 95)),
                    }
                    for p in range(pages)
                ],
                "repeats": repeats,
                "plans": plans,
            }
        )
        print_pages(out[-1])
    return out


def print_pages(res: dict) -> None:
    for p in res["pages"]:
        print(
            f"| {res['label']} | {res['class']} ({res['best_cosine']:.2f}) | {p['page']} | {p['recall']:.3f} |"
            f" {p['worst']:.2f} | {p['p50_ms']:.1f} | {p['p95_ms']:.1f} | {res['repeats']} | {res['plans']} |",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--m", type=int, default=HNSW_M)
    ap.add_argument("--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/photosearch-bench"))
    ap.add_argument(
        "--shared-buffers", default=None, help="default: what photosearch picks for a library this size on this machine"
    )
    ap.add_argument("--fresh", action="store_true", help="reload even if a database for --rows exists")
    ap.add_argument("--only", default=None, help="level labels to run, separated by |")
    ap.add_argument("--load-only", action="store_true", help="generate, load and index, then stop")
    ap.add_argument("--tag", default="", help="suffix for the result files")
    ap.add_argument("--results-dir", type=Path, default=RESULTS, help="where the JSON and the plot go")
    ap.add_argument("--retrain", action="store_true", help="train the search lists again")
    ap.add_argument(
        "--planner", action="append", default=[], help="PlannerConfig override, e.g. quantized_pool_min=500"
    )
    ap.add_argument("--index-type", choices=INDEX_TYPES, default="vector", help="HNSW over vector or halfvec")
    ap.add_argument(
        "--cold", action="store_true", help="skip reading the database's files into the OS cache before measuring"
    )
    ap.add_argument(
        "--no-resident",
        dest="resident",
        action="store_false",
        help="search in PostgreSQL only, without the server's in-memory copy of the search lists",
    )
    ap.add_argument("--warmup", type=int, default=20, help="untimed queries per method and level (0: none)")
    ap.add_argument(
        "--query-noise", type=float, default=0.7, help="0.7: example-image-like queries; 3.2: text-like (far)"
    )
    ap.add_argument(
        "--methods",
        default="|".join(METHODS),
        help="methods to run, separated by | (without exact, recall uses the exact results of an earlier run)",
    )
    ap.add_argument(
        "--reload",
        action="store_true",
        help="instead of the methods table: the in-memory copy's peak memory while reloaded, and the time from a"
        " change to searches in memory again",
    )
    ap.add_argument(
        "--pages",
        type=int,
        default=0,
        help="instead of the methods table: pages 1..N of image-, text-like and far queries against numpy",
    )
    args = ap.parse_args()
    methods = [m for m in METHODS if m in args.methods.split("|")]

    # The database takes ~4 bytes per float of its embeddings (1M x 512: 7.5 GiB with the HNSW index, the IVF copy,
    # assets and EXIF); the embedded server sizes shared_buffers to it, up to a quarter of RAM.
    sb = args.shared_buffers or product_shared_buffers(args.rows, args.dim)
    admin = server(args.data_dir, sb)
    dsn, info = load(
        admin, args.rows, args.dim, args.m, args.ef_construction, args.fresh, args.index_type, args.data_dir
    )
    index_type = info.get("index_type", "vector")
    if args.load_only:
        return
    db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=2)
    trained = train_lists(db, force=args.retrain)
    print(f"search lists: {trained}", flush=True)
    if not args.cold:
        # The same steady state in every run (a server that has been up a while), not whatever an earlier run left
        # in the OS cache: here a page read from disk costs ~0.3 ms (1M rows, seed level p50 18 → 13 ms).
        t = time.perf_counter()
        read = warm_page_cache(args.data_dir / "pgdata", dsn)
        print(f"read {read / 2**30:.1f} GiB of the database into the OS cache in {time.perf_counter() - t:.0f} s")
    info["search_lists"] = {"lists": trained.lists, "train_s": round(trained.seconds, 1), "skipped": trained.skipped}
    config = PlannerConfig(**{k: type(getattr(PlannerConfig, k))(v) for k, v in (o.split("=") for o in args.planner)})
    resident = resident_copy(db) if args.resident else None
    if resident is not None and resident.current is not None:
        info["resident"] = {"rows": len(resident.current.ids), "mb": round(resident.current.nbytes / 2**20)}
    service = SearchService(db, config=config, resident=resident)
    admin_user = {"id": None, "is_admin": True}
    queries = sample_queries(dsn, args.queries, noise_scale=args.query_noise)
    warmup = None
    if args.warmup:
        warmup = sample_queries(dsn, args.warmup, seed=7, noise_scale=args.query_noise, skip=args.queries)
    # Exact results per level for this database and query set, kept beside the database for later runs.
    noise_tag = "" if args.query_noise == 0.7 else f"_noise{args.query_noise:g}"
    truth_path = args.data_dir / f"exact_{conninfo_to_dict(dsn)['dbname']}_{args.queries}q{noise_tag}.json"
    truth_cache = json.loads(truth_path.read_text()) if truth_path.exists() else {}
    results = {
        "info": info,
        "shared_buffers": sb,
        "k": args.k,
        "query_noise": args.query_noise,
        "warmup": args.warmup,
        "os_cache_warmed": not args.cold,
        "planner": asdict(config),
        "levels": [],
    }
    with psycopg.connect(dsn, prepare_threshold=None) as conn:
        register_vector(conn)
        levels = levels_for(conn, args.rows)
        if args.only:
            wanted = set(args.only.split("|"))
            levels = [lv for lv in levels if lv["label"] in wanted]
        if args.reload:
            results["reload"] = reload_numbers(db, service, admin_user, info["dim"])
            db.close()
            args.results_dir.mkdir(parents=True, exist_ok=True)
            path = args.results_dir / f"search_{args.rows}_reload{args.tag}.json"
            path.write_text(json.dumps(results, indent=2, default=str))
            print(f"wrote {path}")
            return
        if args.pages:
            results["pages"] = pages_table(conn, service, admin_user, dsn, info, levels, args)
            db.close()
            args.results_dir.mkdir(parents=True, exist_ok=True)
            path = args.results_dir / f"search_{args.rows}_pages{args.tag}.json"
            path.write_text(json.dumps(results, indent=2, default=str))
            print(f"wrote {path}")
            return
        # warm-up: bring the HNSW graph, search_ivf and the rows the queries touch into shared buffers
        for q in queries:
            for strategy in ("approximate", "quantized"):
                service.search(SearchQuery(vector=q.tolist(), k=args.k, strategy=strategy), admin_user)
        # One method over every level, then the next (exact first: the others' recall needs its results), so a
        # method is measured on the caches it leaves itself, as a server running it would be: pgvector's iterative
        # scans read ~100k HNSW tuples a query at 1M and evicted the pages photosearch's next level needed
        # (1M, method by method within each level: owner != Allen 8.7 → 17.0 ms, seed 12.4 → 25.6 ms).
        merged: dict[str, dict] = {}
        for method in sorted(methods, key=lambda m: m != "exact"):
            print(f"\n== {method}", flush=True)
            for level in levels:
                k = level.get("k", args.k)
                res = run_level(
                    conn,
                    service,
                    admin_user,
                    queries,
                    level,
                    k,
                    level.get("ef"),
                    index_type,
                    [method],
                    truth_cache,
                    warmup,
                )
                res["k"] = k
                print_level(res)
                merged.setdefault(level["label"], {**res, "methods": {}})["methods"].update(res["methods"])
        results["levels"] = [
            {**merged[lv["label"]], "methods": {m: merged[lv["label"]]["methods"][m] for m in methods}} for lv in levels
        ]
    db.close()
    truth_path.write_text(json.dumps(truth_cache))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = args.results_dir / f"search_{args.rows}{args.tag}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    plot(results, stem.with_suffix(".png"))
    print_markdown(results)
    print(f"wrote {stem}.json and {stem}.png")


def reload_numbers(db: Database, service: SearchService, admin_user: dict, dim: int, changed: int = 100) -> dict:
    """What keeping the in-memory copy current costs: the memory a whole load takes at its peak (tracemalloc, which
    sees numpy's arrays, plus the old copy while the cache still holds it) against the copy's size, and after
    `changed` photos change (their dates, one statement),
    the time until a search runs in memory again and the memory the update took beyond the copy."""
    cache = service.resident
    if cache is None or cache.current is None:
        return {}
    size = cache.current.nbytes
    old, peak_seen, done = cache.current, [0], threading.Event()

    def sample() -> None:  # what the load allocates, plus the old copy while the cache still holds it
        while not done.is_set():
            held = size if cache.current is old else 0
            peak_seen[0] = max(peak_seen[0], tracemalloc.get_traced_memory()[0] + held)
            time.sleep(0.005)

    tracemalloc.start()
    sampler = threading.Thread(target=sample)
    sampler.start()
    t = time.perf_counter()
    cache.load()
    load_s = time.perf_counter() - t
    done.set()
    sampler.join()
    load_peak = max(peak_seen[0], tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
    old = None  # the old copy can go now
    q = np.random.default_rng(5).standard_normal(dim).astype(np.float32).tolist()
    out = {"copy_mb": round(size / 2**20, 1), "load_s": round(load_s, 2), "load_peak_ratio": round(load_peak / size, 3)}
    for step, sign in (("changed", "+"), ("changed back", "-")):
        with db.connection() as conn:
            conn.execute(
                f"UPDATE assets SET local_date_time = local_date_time {sign} interval '1 second'"  # noqa: S608
                " WHERE id IN (SELECT asset_id FROM smart_search ORDER BY asset_id LIMIT %s)",
                (changed,),
            )
            conn.commit()
        tracemalloc.start()
        t = time.perf_counter()
        searches = 0
        while time.perf_counter() - t < 600:
            searches += 1
            if service.search(SearchQuery(vector=q, k=10), admin_user).plan.strategy == "memory":
                break
            time.sleep(0.02)
        back_s = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out[step] = {"to_memory_s": round(back_s, 2), "searches": searches, "peak_ratio": round(peak / size, 3)}
        print(
            f"{changed} photos {step}: searches in memory again after {back_s:.2f} s ({searches} searches),"
            f" peak {peak / 2**20:.0f} MB beyond the {size / 2**20:.0f} MB copy ({peak / size:.1%})",
            flush=True,
        )
    print(f"a whole load: {load_s:.1f} s, peak {load_peak / 2**20:.0f} MB ({load_peak / size:.2f}× the copy)")
    return out


def pages_table(conn, service, admin_user, dsn: str, info: dict, levels: list[dict], args) -> list[dict]:
    """The pages table: each query class under no filter, ~10 % dates, a ~10 % place or camera and an owner
    filter, pages 1..args.pages, recall against numpy."""
    vectors = library_vectors(dsn, info["dim"])
    chosen = [lv for i, lv in enumerate(levels) if lv["label"] in PAGE_LEVELS or i == 3]
    queries = {name: sample_queries(dsn, args.queries, noise_scale=noise) for name, noise in QUERY_CLASSES.items()}
    warm = sample_queries(dsn, args.warmup or 1, seed=7, skip=args.queries)
    for q in warm:  # bring what the searches read into the caches, untimed
        service.search(SearchQuery(vector=q.tolist(), k=args.k), admin_user)
    print("\n| filter | class (best cosine) | page | recall | worst | p50 ms | p95 ms | repeats | plans |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    out = []
    for level in chosen:
        out += run_pages(conn, service, admin_user, dsn, vectors, level, args.k, args.pages, queries)
    return out


def print_level(res: dict) -> None:
    print(f"\n{res['label']}: {res['matches']} matches, k={res['k']}", flush=True)
    for method, r in res["methods"].items():
        plans = f"  {r['plans']}" if "plans" in r else ""
        print(
            f"  {method:20s} complete {r['completeness']:6.1%}  recall {r['recall']:.3f}"
            f"  p50 {r['p50_ms']:7.2f} ms  p95 {r['p95_ms']:7.2f} ms  {r['qps']:6.1f} qps{plans}",
            flush=True,
        )


def print_markdown(results: dict) -> None:
    info = results["info"]
    print(
        f"\n{info['rows']:,} rows × {info['dim']}-d, HNSW ({info.get('index_type', 'vector')}) m={info['m']}"
        f" ef_construction={info['ef_construction']}: index {info['index_size']}, built in {info['hnsw_build_s']} s"
    )
    print("\n| filter | matches | method | complete | recall@k | p50 ms | p95 ms | QPS |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for lv in results["levels"]:
        for method, r in lv["methods"].items():
            print(
                f"| {lv['label']} | {lv['matches']:,} | {method} | {r['completeness']:.0%} | {r['recall']:.3f}"
                f" | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['qps']:.0f} |"
            )


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [lv for lv in results["levels"] if lv["k"] == results["k"]]
    x = np.arange(len(levels))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    for method in METHODS:
        if not all(method in lv["methods"] for lv in levels):
            continue
        ax1.plot(x, [lv["methods"][method]["p50_ms"] for lv in levels], marker="o", label=method)
        ax2.plot(x, [lv["methods"][method]["recall"] for lv in levels], marker="o", label=method)
    for ax in (ax1, ax2):
        ax.set_xticks(x, [lv["label"] for lv in levels], rotation=30, ha="right", fontsize=8)
        ax.grid(alpha=0.3)
    ax1.set_yscale("log")
    ax1.set_ylabel("p50 latency (ms, log)")
    ax2.set_ylabel(f"recall@{results['k']} vs exact")
    ax2.set_ylim(0, 1.02)
    ax1.legend(fontsize=8)
    info = results["info"]
    fig.suptitle(
        f"Filtered kNN, {info['rows']:,} × {info['dim']}-d (HNSW {info.get('index_type', 'vector')},"
        f" m={info['m']}, efc={info['ef_construction']}, index {info['index_size']})"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
