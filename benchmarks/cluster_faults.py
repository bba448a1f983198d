"""`index --cluster auto` under faults, measured with the real CLI on the same generated photos, each scenario into a
fresh database of one embedded server:

  clean        the run alone (the reference wall time);
  actor lost   one embedding actor's process SIGKILLed once the first batch has committed: whether the run still
               ends normally, its wall time against clean, and that every photo is stored once;
  driver lost  the driver SIGKILLed once the first batch has committed: what was committed, how long the local Ray
               runtime it started outlives it, and the re-run (new files = photos − committed, no duplicates).

    python benchmarks/cluster_faults.py [--photos 96] [--size 1024x768] [--batch 8]

Ray's files go to a temp dir of this run (RAY_TMPDIR). Writes benchmarks/results/cluster_faults.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "benchmarks")]
RESULTS = ROOT / "benchmarks" / "results"

COUNTS = (
    "SELECT (SELECT count(*) FROM assets), (SELECT count(DISTINCT original_path) FROM assets),"
    " (SELECT count(*) FROM smart_search)"
)


def _counts(dsn: str) -> dict:
    import psycopg

    with psycopg.connect(dsn) as conn:
        assets, paths, embedded = conn.execute(COUNTS).fetchone()
    return {"assets": assets, "duplicates": assets - paths, "embedded": embedded}


def _fresh_db(admin: str, name: str) -> str:
    import psycopg

    from photosearch.db.migrate import migrate
    from photosearch.db.pool import check_pgvector
    from photosearch.db.server import with_dbname

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    dsn = with_dbname(admin, name)
    check_pgvector(dsn)
    migrate(dsn)
    return dsn


class Run:
    """One `photosearch --json index --cluster auto` with its process tree followed while it lives."""

    def __init__(self, env: dict, photos: Path) -> None:
        cmd = [sys.executable, "-m", "photosearch", "--json", "index", "--cluster", "auto", str(photos)]
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.tree: dict[int, psutil.Process] = {}

    def follow(self) -> None:
        try:
            for p in psutil.Process(self.proc.pid).children(recursive=True):
                self.tree.setdefault(p.pid, p)
        except psutil.Error:
            pass

    def wait_for_commit(self, dsn: str) -> None:
        while self.proc.poll() is None and _counts(dsn)["assets"] == 0:
            self.follow()
            time.sleep(0.05)
        self.follow()

    def finish(self) -> tuple[float, dict]:
        while self.proc.poll() is None:
            self.follow()
            time.sleep(0.1)
        out, err = self.proc.communicate()
        wall = time.perf_counter() - self.t0
        if self.proc.returncode != 0:
            raise SystemExit(f"the run failed ({self.proc.returncode}): {err[-2000:]}")
        return wall, json.loads(out)

    def alive(self) -> list[psutil.Process]:
        return [p for p in self.tree.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def clean(env: dict, photos: Path, dsn: str) -> dict:
    wall, summary = Run(env, photos).finish()
    return {"wall_s": round(wall, 1), "new": summary["new"], **_counts(dsn)}


def actor_lost(env: dict, photos: Path, dsn: str) -> dict:
    run = Run(env, photos)
    run.wait_for_commit(dsn)
    actors = [p for p in run.alive() if "MapWorker" in " ".join(_cmdline(p))]
    at_kill = _counts(dsn)["assets"]
    actors[0].kill()
    wall, summary = run.finish()
    return {"wall_s": round(wall, 1), "committed_at_kill": at_kill, "new": summary["new"], **_counts(dsn)}


def driver_lost(env: dict, photos: Path, dsn: str) -> dict:
    run = Run(env, photos)
    run.wait_for_commit(dsn)
    at_kill = _counts(dsn)["assets"]
    os.kill(run.proc.pid, signal.SIGKILL)
    run.proc.communicate()
    t_kill, runtime = time.perf_counter(), run.alive()
    while run.alive() and time.perf_counter() - t_kill < 120:
        time.sleep(0.1)
    linger = time.perf_counter() - t_kill
    after_kill = _counts(dsn)
    wall, summary = Run(env, photos).finish()
    return {
        "committed_at_kill": at_kill,
        "runtime_processes": len(runtime),
        "runtime_gone_after_s": round(linger, 1),
        "left_after_120_s": len(run.alive()),
        "rerun_wall_s": round(wall, 1),
        "rerun_new": summary["new"],
        "consistent_after_kill": after_kill["assets"] == after_kill["embedded"] and not after_kill["duplicates"],
        **_counts(dsn),
    }


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=96)
    ap.add_argument("--size", default="1024x768", help="photo size WxH")
    ap.add_argument("--batch", type=int, default=8, help="files per committed batch (PHOTOSEARCH_INGEST_BATCH_SIZE)")
    ap.add_argument("--models-dir", type=Path, default=ROOT / "tests" / "fixtures")
    ap.add_argument("--model", default="tiny-clip")
    args = ap.parse_args()
    from ingest_bench import make_photos

    from photosearch.db.server import start_embedded, stop_embedded

    w, h = (int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="psflt-", dir="/tmp"))
    make_photos(tmp / "photos", args.photos, (w, h), seed=7)
    admin = start_embedded(tmp / "pg")
    rows = {}
    try:
        for name, scenario in (("clean", clean), ("actor lost", actor_lost), ("driver lost", driver_lost)):
            dsn = _fresh_db(admin, "faults_" + name.replace(" ", "_"))
            env = {
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
                "PHOTOSEARCH_DATA_DIR": str(tmp / name.replace(" ", "_")),
                "PHOTOSEARCH_DATABASE_URL": dsn,
                "PHOTOSEARCH_MODELS_DIR": str(args.models_dir),
                "PHOTOSEARCH_MODEL_NAME": args.model,
                "PHOTOSEARCH_CONFIG": str(tmp / "none.toml"),
                "PHOTOSEARCH_INGEST_BATCH_SIZE": str(args.batch),
                "RAY_TMPDIR": str(tmp),
                "RAY_USAGE_STATS_ENABLED": "0",
            }
            rows[name] = scenario(env, tmp / "photos", dsn)
            print(name, rows[name], flush=True)
    finally:
        stop_embedded(tmp / "pg")
        shutil.rmtree(tmp, ignore_errors=True)
    c, a, d = rows["clean"], rows["actor lost"], rows["driver lost"]
    print(f"{args.photos} photos {args.size}, batches of {args.batch}, model {args.model}, --cluster auto")
    print(f"clean run: {c['wall_s']} s, {c['assets']} stored, {c['duplicates']} duplicates")
    print(
        f"actor lost after {a['committed_at_kill']} committed: run ended normally in {a['wall_s']} s"
        f" ({a['wall_s'] / c['wall_s']:.2f}× clean), {a['assets']} stored, {a['duplicates']} duplicates"
    )
    print(
        f"driver lost after {d['committed_at_kill']} committed: {d['runtime_processes']} runtime processes gone"
        f" {d['runtime_gone_after_s']} s later ({d['left_after_120_s']} left after 120 s); re-run stored"
        f" {d['rerun_new']} new (expected {args.photos - d['committed_at_kill']}) in {d['rerun_wall_s']} s;"
        f" {d['assets']} stored, {d['duplicates']} duplicates"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"photos": args.photos, "size": args.size, "batch": args.batch, "model": args.model, **rows}
    (RESULTS / "cluster_faults.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
