"""Bounded load test of the REST API: N concurrent clients for T seconds, first on an idle server, then
while a library scan runs in the same server. Loopback only; stops by itself.

Each client loops over a mix of real requests (text search with random filters, "more like this",
asset details, thumbnails). Prints requests/s, p50/p95/p99 latency and errors per phase (target: 0 errors),
writes benchmarks/results/load_bench.json and .png.

    python benchmarks/load_bench.py                       # tiny test model, 8 clients, 10 s per phase
    python benchmarks/load_bench.py --clients 16 --seconds 30 \\
        --models-dir /work/bench-models --model ViT-B-32__random   # full-size model (see ingest_bench.py)

The server is the real `photosearch serve` in a subprocess, on a throw-away embedded PostgreSQL in a temp
data dir; the clients run here with asyncio + httpx, so they do not share the server's GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PHOTOS = ROOT.parent / "shared" / "testdata" / "photos"
QUERIES = ["a bird", "red flowers", "rocks", "a forest", "mountains in winter", "text on paper", "a cactus", "desert"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_photos(src: Path, dst: Path, n: int, seed: int) -> None:
    """n distinct JPEGs (different checksums and embeddings) derived from the test photos."""
    rng = random.Random(seed)
    sources = sorted(p for p in src.rglob("*.jp*g") if p.stat().st_size > 20_000)
    dst.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        with Image.open(sources[i % len(sources)]) as im:
            im = im.convert("RGB")
            im.thumbnail((1600, 1600))
            im = ImageEnhance.Brightness(im).enhance(0.7 + 0.6 * rng.random())
            if rng.random() < 0.5:
                im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            im.save(dst / f"img_{i:05d}.jpg", "JPEG", quality=85)


def setup(data_dir: Path, env: dict[str, str], photos: int, scan_photos: int) -> dict:
    """Users, key, an indexed library to search, and a second one for the scan (done in-process)."""
    from photosearch.config import Settings
    from photosearch.db import open_database
    from photosearch.db.accounts import create_api_key, create_user
    from photosearch.db.assets import list_assets
    from photosearch.db.libraries import create_library
    from photosearch.ingest import index_library

    settings = Settings(
        data_dir=data_dir, models_dir=Path(env["PHOTOSEARCH_MODELS_DIR"]), model_name=env["PHOTOSEARCH_MODEL_NAME"]
    )
    settings.ensure_dirs()
    db = open_database(settings)
    try:
        user = create_user(db, "bench", "bench@example.org")
        _, key = create_api_key(db, user["id"], "load-bench")
        searched = data_dir / "photos-searched"
        scanned = data_dir / "photos-scanned"
        make_photos(PHOTOS, searched, photos, seed=1)
        make_photos(PHOTOS, scanned, scan_photos, seed=2)
        lib = create_library(db, user["id"], "searched", [str(searched)])
        t = time.perf_counter()
        index_library(db, settings, lib)
        index_s = time.perf_counter() - t
        scan_lib = create_library(db, user["id"], "scanned", [str(scanned)])
        assets = [str(a["id"]) for a in list_assets(db, lib["id"])]
    finally:
        db.close()
    return {"key": key, "assets": assets, "scan_library": str(scan_lib["id"]), "initial_index_s": index_s}


async def client_loop(
    c: httpx.AsyncClient, assets: list[str], stop_at: float, rng: random.Random, out: list, errors: list
) -> None:
    while time.perf_counter() < stop_at:
        roll = rng.random()
        if roll < 0.55:
            body: dict = {"query": rng.choice(QUERIES), "size": 48}
            if rng.random() < 0.4:
                body["taken_after"] = f"{rng.randint(1990, 2024)}-01-01T00:00:00"
            if rng.random() < 0.2:
                body["rating_min"] = 1
            kind, req = "search", c.post("/api/search/smart", json=body)
        elif roll < 0.70:
            kind, req = "similar", c.get(f"/api/assets/{rng.choice(assets)}/similar", params={"size": 24})
        elif roll < 0.80:
            kind, req = "asset", c.get(f"/api/assets/{rng.choice(assets)}")
        else:
            kind, req = "thumbnail", c.get(f"/api/assets/{rng.choice(assets)}/thumbnail")
        t = time.perf_counter()
        try:
            r = await req
            ok = r.status_code < 400
            if not ok:
                errors.append(f"{kind} {r.status_code} {r.text[:200]}")
        except httpx.HTTPError as exc:
            ok = False
            errors.append(f"{kind} {type(exc).__name__}: {exc}")
        out.append((kind, (time.perf_counter() - t) * 1000, ok))


async def phase(url: str, key: str, assets: list[str], clients: int, seconds: float, seed: int) -> dict:
    samples: list = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": key}, timeout=60, limits=limits) as c:
        t0 = time.perf_counter()
        stop_at = t0 + seconds
        await asyncio.gather(
            *(client_loop(c, assets, stop_at, random.Random(seed + i), samples, errors) for i in range(clients))
        )
        elapsed = time.perf_counter() - t0
    return summarize(samples, errors, elapsed)


def summarize(samples: list, errors: list[str], elapsed: float) -> dict:
    lat = np.array([s[1] for s in samples]) if samples else np.array([0.0])
    by_kind = {}
    for kind in sorted({s[0] for s in samples}):
        k = np.array([s[1] for s in samples if s[0] == kind])
        by_kind[kind] = {"n": int(k.size), "p50_ms": float(np.percentile(k, 50)), "p95_ms": float(np.percentile(k, 95))}
    return {
        "requests": len(samples),
        "seconds": elapsed,
        "rps": len(samples) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
        "p99_ms": float(np.percentile(lat, 99)),
        "errors": len(errors),
        "error_samples": errors[:10],
        "by_kind": by_kind,
        "latencies_ms": [round(float(x), 2) for x in lat],
    }


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become healthy")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name in ("idle", "during_scan"):
        lat = np.sort(result[name]["latencies_ms"])
        ax.plot(lat, np.linspace(0, 1, lat.size), label=f"{name} ({result[name]['rps']:.0f} req/s)")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log)")
    ax.set_ylabel("share of requests")
    ax.set_title(f"photosearch API, {result['config']['clients']} clients, {result['config']['model']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0, help="per phase")
    ap.add_argument("--photos", type=int, default=200, help="photos in the searched library")
    ap.add_argument("--scan-photos", type=int, default=400, help="photos in the library scanned under load")
    ap.add_argument("--models-dir", type=Path, default=ROOT / "tests" / "fixtures")
    ap.add_argument("--model", default="tiny-clip")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="photosearch-load-"))
    data_dir = tmp / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOTOSEARCH_")}
    env.update(
        PHOTOSEARCH_DATA_DIR=str(data_dir),
        PHOTOSEARCH_CONFIG=str(tmp / "none.toml"),
        PHOTOSEARCH_MODELS_DIR=str(args.models_dir.resolve()),
        PHOTOSEARCH_MODEL_NAME=args.model,
    )
    os.environ.update({k: v for k, v in env.items() if k.startswith("PHOTOSEARCH_")})
    proc = None
    try:
        print(f"setting up: {args.photos} photos to search, {args.scan_photos} to scan under load ({args.model}) …")
        info = setup(data_dir, env, args.photos, args.scan_photos)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "photosearch", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_healthy(url, proc)
        httpx.post(f"{url}/api/search/smart", json={"query": "warm up"}, headers={"x-api-key": info["key"]}, timeout=60)

        print(f"phase 1: {args.clients} clients for {args.seconds:.0f} s, idle server")
        idle = asyncio.run(phase(url, info["key"], info["assets"], args.clients, args.seconds, seed=10))

        hdr = {"x-api-key": info["key"]}
        job = httpx.post(f"{url}/api/libraries/{info['scan_library']}/scan", headers=hdr, timeout=30).json()
        print(f"phase 2: {args.clients} clients for {args.seconds:.0f} s while scanning {args.scan_photos} photos")
        scan_started = time.perf_counter()
        during = asyncio.run(phase(url, info["key"], info["assets"], args.clients, args.seconds, seed=20))
        state = httpx.get(f"{url}/api/jobs/{job['id']}", headers=hdr, timeout=30).json()
        scan_running_at_end = state["status"] in ("queued", "running")
        while state["status"] in ("queued", "running"):
            time.sleep(0.5)
            state = httpx.get(f"{url}/api/jobs/{job['id']}", headers=hdr, timeout=30).json()
        scan_s = time.perf_counter() - scan_started
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        subprocess.run([sys.executable, "-m", "photosearch", "db", "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)

    result = {
        "config": {**{k: str(v) for k, v in vars(args).items()}, "cpus": os.cpu_count()},
        "idle": idle,
        "during_scan": during,
        "scan": {
            "status": state["status"],
            "seconds": scan_s,
            "still_running_when_phase_ended": scan_running_at_end,
            "summary": state.get("summary"),
        },
    }
    print()
    print(f"{'phase':<13}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name in ("idle", "during_scan"):
        r = result[name]
        print(
            f"{name:<13}{r['requests']:>9}{r['rps']:>9.1f}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}"
            f"{r['p99_ms']:>9.1f}{r['errors']:>8}"
        )
    print(
        f"\nscan: {state['status']} in {scan_s:.1f} s "
        f"({'covered the whole phase' if scan_running_at_end else 'finished before the phase ended'}); "
        f"p50 during scan / idle = {during['p50_ms'] / idle['p50_ms']:.2f}×, "
        f"req/s during scan / idle = {during['rps'] / idle['rps']:.2f}×"
    )
    for name in ("idle", "during_scan"):
        for e in result[name]["error_samples"]:
            print(f"  error ({name}): {e}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load_bench.json").write_text(json.dumps(result, indent=1))
    plot(result, RESULTS / "load_bench.png")
    print(f"wrote {RESULTS / 'load_bench.json'} and load_bench.png")
    if idle["errors"] or during["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
