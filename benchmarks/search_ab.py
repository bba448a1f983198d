"""Old code against new, one query at a time, in one process: the way to tell a 10 % change on this box.

    python benchmarks/search_ab.py HEAD~1                                  # 1M, image-like, the main levels
    python benchmarks/search_ab.py 6606b73 --query-noise 3.2 --only "none (100%)|taken ~10%"
    python benchmarks/search_ab.py HEAD~1 --rows 100000 --rounds 3

Latency here drifts by 30-70 % over an hour and ±20 % between runs (README, "Search benchmark"), so two bench
runs cannot tell a 10 % change from the weather. This tool exports `src/photosearch` at the given git revision
into a temporary package `photosearch_ref` (imports rewritten), opens the working tree's SearchService and the
reference one on the same benchmark database (built by search_bench.py), and runs each query through both,
alternating which goes first; it prints both medians, their recall against the cached exact results, and the
median of the per-query ratio new/reference. The database must already have the schema both revisions expect.

    python benchmarks/search_ab.py c193487 --same --rows 20000 --queries 10

`--same` times nothing: it requires both revisions to return the same page (hit ids and distances) and the same
plan (every field but the timings) for every filter level and every filter of tests/search/test_filters.py, under
each forced strategy and `auto`, with and without the in-memory copy, for example-image and text-like queries,
pages 1 and 2, and prints each difference; exit status 1 when there is one. A refactoring must show 0 differences.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import numpy as np
import psycopg
from psycopg.conninfo import conninfo_to_dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_bench import product_shared_buffers, resident_copy, sample_queries, server  # noqa: E402
from search_bench_levels import levels_for  # noqa: E402

from photosearch.db.pool import connect_pool  # noqa: E402
from photosearch.db.server import ServerInfo, with_dbname  # noqa: E402
from photosearch.search import SearchQuery, SearchService  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
REF = "photosearch_ref"
DEFAULT_LEVELS = "none (100%)|defaults (~99%)|taken ~10%|owner Beth (~1%)|seed: owner != Allen, k=64|taken ~0.01%"


def export_reference(rev: str, into: Path) -> None:
    """`src/photosearch` at `rev`, as the package `photosearch_ref` under `into`."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "src/photosearch"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    pkg = into / REF
    (into / "src" / "photosearch").rename(pkg)
    pattern = re.compile(r"\bphotosearch(?=[.\s\"'])")
    for path in pkg.rglob("*.py"):
        path.write_text(pattern.sub(REF, path.read_text(encoding="utf-8")), encoding="utf-8")


STRATEGIES = ("auto", "exact", "quantized", "approximate", "memory")
QUERY_KINDS = {"image-like": 0.7, "text-like": 3.2}


def outcome(service: object, query: Callable[..., object], user: dict, **fields: object) -> object:
    """What a search returned, without its timings: hit ids and distances and the plan, or the error it raised."""
    try:
        page = service.search(query(**fields), user)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - an error is an outcome both revisions must share
        return ("error", type(exc).__name__, str(exc))
    return (
        [(h.id, h.distance) for h in page.items],
        page.plan.model_dump(exclude={"timings_ms"}),
    )


def filter_levels(conn: psycopg.Connection) -> list[dict]:
    """Every filter of tests/search/test_filters.py as a level (the synthetic library there is the benchmark's)."""
    sys.path.insert(0, str(REPO))
    from tests.search.test_filters import FILTERS

    found = conn.execute(
        "SELECT l.id FROM libraries l JOIN users u ON u.id = l.owner_id WHERE u.name = 'Beth' LIMIT 1"
    ).fetchone()
    levels = []
    for name, filters in FILTERS.items():
        if name == "library":
            filters = {"library_ids": [found[0]] if found else []}
        levels.append({"label": f"filter {name}", "filters": filters})
    return levels


def same(args: argparse.Namespace, dsn: str, sides: dict[str, tuple[object, object, tuple[Callable, Callable]]]) -> int:
    """Run every combination through both revisions; print each difference and return how many there were.
    `sides`: "with copy" / "without copy" -> (the reference service, the new one, SearchQuery of each)."""
    user = {"id": None, "is_admin": True}
    with psycopg.connect(dsn) as conn:
        levels = levels_for(conn, args.rows) + filter_levels(conn)
    differences = compared = 0
    seen: Counter[str] = Counter()  # what the new side did: each strategy and error, to show the check ran them
    for kind, noise in QUERY_KINDS.items():
        queries = sample_queries(dsn, args.queries, noise_scale=noise)
        for copy, (ref, new, (ref_query, new_query)) in sides.items():
            for level in levels:
                before = differences
                for strategy in STRATEGIES:
                    for i, q in enumerate(queries):
                        for page in (1, 2):
                            fields = {
                                "vector": q.tolist(),
                                "k": level.get("k", 10),
                                "page": page,
                                "strategy": strategy,
                                **level["filters"],
                            }
                            a = outcome(ref, ref_query, user, **fields)
                            b = outcome(new, new_query, user, **fields)
                            compared += 1
                            seen[b[1] if b[0] == "error" else b[1]["strategy"]] += 1
                            if a != b:
                                differences += 1
                                where = f"{kind}, {copy}, {level['label']}, {strategy}, query {i}, page {page}"
                                print(f"DIFFERENT ({where}):\n  {args.rev}: {a}\n  new: {b}", flush=True)
                print(f"{kind}, {copy}, {level['label']}: {differences - before} differences", flush=True)
    print(f"{compared} searches compared, {differences} differences; plans: {dict(seen)}", flush=True)
    return differences


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rev", help="the git revision to compare the working tree against")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/photosearch-bench"))
    ap.add_argument("--query-noise", type=float, default=0.7, help="3.2 for text-like queries")
    ap.add_argument("--only", default=DEFAULT_LEVELS, help="level labels, separated by |")
    ap.add_argument("--queries", type=int, default=40, help="as given to search_bench.py (its exact results)")
    ap.add_argument(
        "--resident", action="store_true", help="keep the lists in memory (both sides, if the revision can)"
    )
    ap.add_argument("--rounds", type=int, default=2, help="passes over the queries (recall from the first)")
    ap.add_argument(
        "--same", action="store_true", help="instead of timing: require identical pages and plans (exit 1 if not)"
    )
    args = ap.parse_args()

    dbname = f"bench_{args.rows}_512_m24_efc64"
    dsn = with_dbname(server(args.data_dir, product_shared_buffers(args.rows, 512)), dbname)
    noise_tag = "" if args.query_noise == 0.7 else f"_noise{args.query_noise:g}"
    truth_path = args.data_dir / f"exact_{conninfo_to_dict(dsn)['dbname']}_{args.queries}q{noise_tag}.json"
    if not args.same and not truth_path.exists():
        raise SystemExit(f"no exact results at {truth_path}: run search_bench.py with the exact method first")
    with tempfile.TemporaryDirectory() as tmp:
        export_reference(args.rev, Path(tmp))
        sys.path.insert(0, tmp)
        ref_pool = importlib.import_module(f"{REF}.db.pool")
        ref_server = importlib.import_module(f"{REF}.db.server")
        ref_search = importlib.import_module(f"{REF}.search")
        ref_db = ref_pool.connect_pool(ref_server.ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=2)
        new_db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=2)
        if args.same:
            ref_resident = importlib.import_module(f"{REF}.search.resident")
            queries = (ref_search.SearchQuery, SearchQuery)
            sides = {
                "with copy": (
                    ref_search.SearchService(ref_db, resident=resident_copy(ref_db, ref_resident.ResidentCache)),
                    SearchService(new_db, resident=resident_copy(new_db)),
                    queries,
                ),
                "without copy": (ref_search.SearchService(ref_db), SearchService(new_db), queries),
            }
            differences = same(args, dsn, sides)
            ref_db.close()
            new_db.close()
            raise SystemExit(1 if differences else 0)
        truth = json.loads(truth_path.read_text())
        ref_kwargs = {}
        if args.resident:
            try:  # a revision that has the in-memory copy gets one too
                ref_resident = importlib.import_module(f"{REF}.search.resident")
            except ImportError:
                print(f"{args.rev} has no in-memory copy of the lists: it searches in PostgreSQL only")
            else:
                ref_kwargs["resident"] = resident_copy(ref_db, ref_resident.ResidentCache)
        sides = [
            (args.rev, ref_search.SearchService(ref_db, **ref_kwargs), ref_search.SearchQuery),
            (
                "working tree",
                SearchService(new_db, resident=resident_copy(new_db) if args.resident else None),
                SearchQuery,
            ),
        ]
        user = {"id": None, "is_admin": True}
        queries = sample_queries(dsn, args.queries, noise_scale=args.query_noise)
        warmup = sample_queries(dsn, 20, seed=7, noise_scale=args.query_noise, skip=args.queries)
        with psycopg.connect(dsn) as conn:
            levels = {lv["label"]: lv for lv in levels_for(conn, args.rows)}
        print(f"{'level':30s} {args.rev[:12]:>12s}  {'new':>8s}  new/ref  recall ref / new")
        for label in args.only.split("|"):
            level = levels[label]
            k = level.get("k", 10)
            expected = [{UUID(i) for i in ids} for ids in truth[f"{label}|k={k}"]]
            for _, service, query in sides:
                for q in warmup:
                    service.search(query(vector=q.tolist(), k=k, **level["filters"]), user)
            lat: list[list[float]] = [[], []]
            recall: list[list[float]] = [[], []]
            for r in range(args.rounds):
                for i, q in enumerate(queries):
                    for j in (0, 1) if (i + r) % 2 == 0 else (1, 0):
                        _, service, query = sides[j]
                        t = time.perf_counter()
                        page = service.search(query(vector=q.tolist(), k=k, **level["filters"]), user)
                        lat[j].append((time.perf_counter() - t) * 1000)
                        if r == 0:
                            found = {h.id for h in page.items}
                            recall[j].append(len(found & expected[i]) / len(expected[i]) if expected[i] else 1.0)
            ratio = statistics.median(b / a for a, b in zip(lat[0], lat[1], strict=True))
            print(
                f"{label:30s} {statistics.median(lat[0]):9.2f} ms {statistics.median(lat[1]):6.2f} ms"
                f"  {ratio:6.2f}   {np.mean(recall[0]):.3f} / {np.mean(recall[1]):.3f}",
                flush=True,
            )
        ref_db.close()
        new_db.close()


if __name__ == "__main__":
    main()
