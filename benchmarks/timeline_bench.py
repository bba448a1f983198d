"""The web timeline on a large library: what the photos page costs at first paint and at a scrubber jump.

A synthetic library (photosearch.search.synthetic, default 100k photos over 11 years; its main owner holds
98 %) is loaded into a throw-away embedded PostgreSQL; the real app runs under uvicorn on loopback and is
called over HTTP as the browser calls it:

- page: GET / (HTML with the month buckets embedded, so the grid needs no second request for them)
- first paint: GET /api/assets?size=N — the one API request the grid makes
- buckets: GET /api/timeline/buckets (the same buckets as an API, for other clients)
- scrubber jump: GET /api/assets?before=<end of a random month>&size=N — one request per jump
- next page deep in the library: GET /api/assets?cursor=... (keyset) vs ?page=... (OFFSET) at the same depth

Prints p50/p95 per call with the rows each returned, writes benchmarks/results/timeline_bench.json and .png.

    python benchmarks/timeline_bench.py                  # 100k photos, 60 per page, 30 calls each
    python benchmarks/timeline_bench.py --rows 20000 --size 200
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
from pgvector.psycopg import register_vector

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from api.live import run_uvicorn  # noqa: E402

from photosearch.api.app import create_app  # noqa: E402
from photosearch.api.auth import SESSION_COOKIE, SESSION_TTL  # noqa: E402
from photosearch.config import Settings  # noqa: E402
from photosearch.db.accounts import create_api_key  # noqa: E402
from photosearch.db.migrate import migrate  # noqa: E402
from photosearch.db.pool import check_pgvector, connect_pool  # noqa: E402
from photosearch.db.search_synthetic import bulk_insert_synthetic  # noqa: E402
from photosearch.db.server import ServerInfo, start_embedded, stop_embedded  # noqa: E402
from photosearch.db.sessions import create_session  # noqa: E402
from photosearch.search.synthetic import make_library  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
TINY_MODEL = ROOT / "tests" / "fixtures" / "tiny-clip"


def timed(client: httpx.Client, url: str, **kw) -> tuple[float, httpx.Response]:
    t = time.perf_counter()
    r = client.get(url, **kw)
    ms = (time.perf_counter() - t) * 1000
    r.raise_for_status()
    return ms, r


def month_end(month: str) -> str:
    y, m = map(int, month.split("-"))
    return f"{y + m // 12:04d}-{m % 12 + 1:02d}-01T00:00:00Z"


def stats(name: str, samples: list[float], rows: list[int], requests: int = 1) -> dict:
    q = statistics.quantiles(samples, n=20) if len(samples) > 1 else samples * 19
    return {
        "call": name,
        "requests": requests,
        "rows_max": max(rows),
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(q[18], 2),
        "n": len(samples),
    }


def run(args: argparse.Namespace, tmp: Path) -> dict:
    dsn = start_embedded(tmp / "pgdata")
    try:
        check_pgvector(dsn)
        migrate(dsn)
        t = time.perf_counter()
        lib = make_library(args.rows, 512, seed=args.seed)
        with psycopg.connect(dsn) as conn:
            register_vector(conn)
            owners = bulk_insert_synthetic(conn, lib)
            conn.commit()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE assets")
        print(f"loaded {args.rows} photos in {time.perf_counter() - t:.0f} s", flush=True)
        db = connect_pool(ServerInfo(dsn=dsn, embedded=False, pgdata=None), max_size=4)
        settings = Settings(
            data_dir=tmp / "data", database_url=dsn, models_dir=TINY_MODEL.parent, model_name=TINY_MODEL.name
        )
        settings.ensure_dirs()
        owner = owners[lib.owner_names[0]]
        _, key = create_api_key(db, owner, "bench")
        token, _ = create_session(db, owner, SESSION_TTL)
        with psycopg.connect(dsn) as conn:
            on_timeline = conn.execute(
                "SELECT count(*) FROM assets WHERE owner_id = %s AND deleted_at IS NULL AND NOT is_archived"
                " AND visibility = 'timeline'",
                (owner,),
            ).fetchone()[0]
        app = create_app(settings, db=db)
        rng = random.Random(args.seed)
        out: list[dict] = []
        with run_uvicorn(app) as url, httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=60) as c:
            page = httpx.Client(base_url=url, cookies={SESSION_COOKIE: token}, timeout=60)
            for _ in range(3):  # warm the caches the way a running server is
                timed(c, f"/api/assets?size={args.size}")
                timed(page, "/")
            samples = [timed(page, "/") for _ in range(args.calls)]
            out.append(stats("page GET /", [s for s, _ in samples], [0]))
            samples = [timed(c, f"/api/assets?size={args.size}") for _ in range(args.calls)]
            out.append(
                stats(
                    "first paint GET /api/assets", [s for s, _ in samples], [len(r.json()["items"]) for _, r in samples]
                )
            )
            samples = [timed(c, "/api/timeline/buckets") for _ in range(args.calls)]
            buckets = samples[0][1].json()["buckets"]
            out.append(stats("GET /api/timeline/buckets", [s for s, _ in samples], [len(buckets)]))
            jumps = []
            for _ in range(args.calls):
                b = rng.choice(buckets)
                ms, r = timed(c, "/api/assets", params={"before": month_end(b["month"]), "size": args.size})
                items = r.json()["items"]
                assert items and items[0]["local_date_time"][:7] == b["month"], (b, items[:1])
                jumps.append((ms, r))
            out.append(
                stats(
                    "scrubber jump GET /api/assets?before=",
                    [s for s, _ in jumps],
                    [len(r.json()["items"]) for _, r in jumps],
                )
            )
            deep_page = max(1, int(on_timeline * 0.9) // args.size)
            cursor = None
            ms, r = timed(c, "/api/assets", params={"page": deep_page, "size": args.size})
            last = r.json()["items"][-1]
            cursor = f"{last['local_date_time']}|{last['id']}"
            keyset = [timed(c, "/api/assets", params={"cursor": cursor, "size": args.size}) for _ in range(args.calls)]
            out.append(
                stats(
                    "next page at 90 % depth (cursor)",
                    [s for s, _ in keyset],
                    [len(r.json()["items"]) for _, r in keyset],
                )
            )
            offset = [
                timed(c, "/api/assets", params={"page": deep_page + 1, "size": args.size}) for _ in range(args.calls)
            ]
            out.append(
                stats(
                    "next page at 90 % depth (OFFSET)",
                    [s for s, _ in offset],
                    [len(r.json()["items"]) for _, r in offset],
                )
            )
            assert [i["id"] for i in keyset[0][1].json()["items"]] == [i["id"] for i in offset[0][1].json()["items"]]
            page.close()
        db.close()
        return {
            "rows": args.rows,
            "owner_photos_on_timeline": on_timeline,
            "months": len(buckets),
            "page_size": args.size,
            "calls": out,
        }
    finally:
        stop_embedded(tmp / "pgdata")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calls = result["calls"]
    fig, ax = plt.subplots(figsize=(9, 4))
    names = [c["call"] for c in calls]
    ax.barh(names, [c["p95_ms"] for c in calls], color="#8ab4f8", label="p95")
    ax.barh(names, [c["p50_ms"] for c in calls], color="#1a56c4", label="p50")
    ax.set_xlabel("ms (loopback HTTP, one request)")
    ax.set_title(f"Timeline API, {result['owner_photos_on_timeline']} photos on one timeline")
    ax.invert_yaxis()
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=60, help="photos per page (the web app asks for 60; max 200)")
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="timeline-bench-") as d:
        result = run(args, Path(d))
    print(
        f"\n{result['owner_photos_on_timeline']} photos on the timeline, {result['months']} months, "
        f"{args.size} per page"
    )
    print(f"{'call':42} {'requests':>8} {'rows':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for c in result["calls"]:
        print(f"{c['call']:42} {c['requests']:>8} {c['rows_max']:>6} {c['p50_ms']:>8} {c['p95_ms']:>8}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "timeline_bench.json").write_text(json.dumps(result, indent=2))
    plot(result, RESULTS / "timeline_bench.png")
    print(f"\nwrote {RESULTS / 'timeline_bench.json'} and .png")


if __name__ == "__main__":
    main()
