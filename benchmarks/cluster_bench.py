"""`index --cluster` throughput: 1 worker node against 2 (1 CPU each), on the same photos, in one run.

For each layout it starts a real local Ray cluster on loopback (`ray start --head`, plus `ray start --address` for
the second node; its own temp dir and ports, stopped by killing exactly its processes), indexes the same generated
photos into a fresh database through `index_library(cluster=...)`, and measures
  - throughput: files/s between the first result and the last (actor start-up excluded), and wall time;
  - the driver's own overhead: CPU seconds of this process (scan, receiving results, writing thumbnails, the batched
    COPY) per file, and PostgreSQL's share is not in it (it runs on the same box).
Prints the 2-node ÷ 1-node throughput ratio (target ≥ 1.8× on an idle 2-core box) and the load average before and
after (the machine may be shared: a loaded box cannot show the ratio).

    python benchmarks/cluster_bench.py [--photos 240] [--size 1600x1200]

Writes benchmarks/results/cluster_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "benchmarks")]
RESULTS = ROOT / "benchmarks" / "results"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


TOKEN = secrets.token_hex(32)  # one auth token for every cluster this process joins (Ray reads it once)


def run_layout(nodes: int, photos: Path, admin_dsn: str, models_dir: Path, model_name: str, tmp: Path) -> dict:
    import psycopg

    from photosearch.config import Settings
    from photosearch.db.accounts import default_user
    from photosearch.db.libraries import create_library
    from photosearch.db.migrate import migrate
    from photosearch.db.pool import ServerInfo, check_pgvector, connect_pool
    from photosearch.db.server import with_dbname
    from photosearch.ingest import index_library
    from photosearch.ingest.cluster import disconnect
    from photosearch.models import load_clip
    from tests.ray_local import LocalRayCluster

    name = f"cluster_bench_{nodes}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    dsn = with_dbname(admin_dsn, name)
    check_pgvector(dsn)
    migrate(dsn)
    settings = Settings(data_dir=tmp / name, database_url=dsn, models_dir=models_dir, model_name=model_name)
    model = load_clip(settings)
    t_start = time.perf_counter()
    with LocalRayCluster(workers=nodes - 1, cpus_per_node=1, token=TOKEN) as cluster:
        cluster.wait_for_nodes()
        t_cluster = time.perf_counter() - t_start
        os.environ.update({k: v for k, v in cluster.env.items() if k.startswith("RAY_")})
        stamps: list[tuple[float, int]] = []
        with connect_pool(ServerInfo(dsn, False, None), max_size=2) as db:
            lib = create_library(db, default_user(db)["id"], "bench", [str(photos)])
            cpu0, t0 = _cpu(), time.perf_counter()
            summary = index_library(
                db,
                settings,
                lib,
                model=model,
                cluster=cluster.address,
                progress=lambda p: stamps.append((time.perf_counter(), p.done)) if p.phase == "index" else None,
            )
            wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
        disconnect()
    done = [(t, n) for t, n in stamps if n > 0]
    (t_first, n_first), (t_last, n_last) = done[0], done[-1]
    row = {
        "nodes": nodes,
        "files": summary.new,
        "errors": summary.errors,
        "cluster_start_s": round(t_cluster, 1),
        "run_wall_s": round(wall, 2),
        "first_result_s": round(t_first - t0, 2),
        "steady_files_per_s": round((n_last - n_first) / max(t_last - t_first, 1e-9), 2),
        "driver_cpu_ms_per_file": round(1000 * cpu / max(summary.new, 1), 2),
    }
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=240)
    ap.add_argument("--size", default="1600x1200", help="photo size WxH")
    ap.add_argument("--models-dir", type=Path, default=ROOT / "tests" / "fixtures")
    ap.add_argument("--model", default="tiny-clip")
    args = ap.parse_args()
    from ingest_bench import make_photos

    from photosearch.db.server import start_embedded, stop_embedded

    w, h = (int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="psclb-", dir="/tmp"))
    photos = tmp / "photos"
    make_photos(photos, args.photos, (w, h), seed=5)
    load_before = os.getloadavg()
    admin = start_embedded(tmp / "pg")
    try:
        rows = [run_layout(n, photos, admin, args.models_dir, args.model, tmp) for n in (1, 2)]
    finally:
        stop_embedded(tmp / "pg")
    load_after = os.getloadavg()
    ratio = rows[1]["steady_files_per_s"] / rows[0]["steady_files_per_s"]
    wall_ratio = rows[0]["run_wall_s"] / rows[1]["run_wall_s"]
    print(f"{args.photos} photos {args.size}, model {args.model}, 1 CPU per node")
    print(f"{'nodes':>5} {'files/s':>8} {'wall s':>7} {'1st result s':>12} {'driver CPU ms/file':>18} {'start s':>8}")
    for r in rows:
        print(
            f"{r['nodes']:>5} {r['steady_files_per_s']:>8.2f} {r['run_wall_s']:>7.1f} {r['first_result_s']:>12.1f}"
            f" {r['driver_cpu_ms_per_file']:>18.2f} {r['cluster_start_s']:>8.1f}"
        )
    print(f"2 nodes ÷ 1 node: {ratio:.2f}× steady throughput ({wall_ratio:.2f}× wall), target ≥ 1.8×")
    print(f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (cpus: {os.cpu_count()})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {
        "photos": args.photos,
        "size": args.size,
        "model": args.model,
        "layouts": rows,
        "ratio_steady": round(ratio, 3),
        "ratio_wall": round(wall_ratio, 3),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    (RESULTS / "cluster_bench.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
