"""Ingest throughput: is the pipeline as fast as its two CPU-bound stages allow?

In one run, on generated photo sets (small ≤ 1 MP, and 12 MP camera JPEGs with EXIF), measures
  (a) model only: `encode_pixels` on preprocessed batches, images/s
  (b) decode + preprocess + thumbnails only (the worker stage, same worker count), images/s
  (c) end to end: `index_library` into a fresh database, images/s
and prints c ÷ ideal with ideal = 1 / (1/a + 1/b): the two stages back to back on these cores
(target ≥ 0.90). Also peak RSS, and bulk-load rows/s of embeddings into PostgreSQL (target ≥ 35k/s).
With `photosearch[ocr]` installed, (d) the text pass (`index --ocr`) on each set after (c): images/s and its
share of ingest time d ÷ (c + d); the set `text` is the shared test photos with real signs and notes
(the generated photos have no text: detection runs, recognition has little to do).

Needs a full-size model. ViT-B/32 shapes with random weights (speed does not depend on the weights):

    /work/venv-torch/bin/python -c "import sys; sys.path[:0]=['src','scripts']; import _torch_shim; \\
      from pathlib import Path; from photosearch.models.export import export_model; \\
      export_model('ViT-B-32', Path('/work/bench-models/ViT-B-32__random'))"
    python benchmarks/ingest_bench.py --models-dir /work/bench-models --model ViT-B-32__random

Writes benchmarks/results/ingest_bench.json and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def make_photos(root: Path, n: int, size: tuple[int, int], seed: int) -> list[Path]:
    """Photo-like JPEGs (smooth colour fields with noise: realistic entropy) with camera EXIF, mtimes in the past."""
    root.mkdir(parents=True, exist_ok=True)
    existing = sorted(root.glob("*.jpg"))
    if len(existing) == n:
        return existing
    for p in existing:  # another size asked for: the set is exactly the n photos made here
        p.unlink()
    rng = np.random.default_rng(seed)
    w, h = size
    old = time.time_ns() - 30 * 86_400 * 10**9
    out = []
    for i in range(n):
        base = Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
        noise = rng.normal(0, 12, (h // 4, w // 4, 3))
        arr = np.asarray(base, dtype=np.float32) + np.kron(noise, np.ones((4, 4, 1)))[:h, :w]
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        exif = Image.Exif()
        exif[0x010F], exif[0x0110], exif[0x0112] = "BenchCam", "Model 12", 1
        sub = exif.get_ifd(0x8769)
        sub[0x9003] = f"2021:06:{1 + i % 28:02d} 12:00:00"
        sub[0x829A], sub[0x829D], sub[0x8827] = (1, 250), (28, 10), 200
        p = root / f"photo_{i:05d}.jpg"
        img.save(p, quality=90, exif=exif)
        os.utime(p, ns=(old, old))
        out.append(p)
    return out


class CpuMeter:
    """CPU seconds of this process and all its descendants (workers of a forkserver pool included),
    sampled in the background so processes that exit before the end are still counted."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()

    def _sample(self) -> None:
        me = self._psutil.Process()
        for p in [me, *me.children(recursive=True)]:
            try:
                t = p.cpu_times()
            except self._psutil.Error:
                continue
            total = t.user + t.system
            self._first.setdefault(p.pid, total)
            self._last[p.pid] = total

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def __enter__(self) -> CpuMeter:
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(self._last[p] - self._first[p] for p in self._last)


def timed(fn, *args):
    """(result, wall seconds, cpu seconds) of fn(*args)."""
    with CpuMeter() as cpu:
        t = time.perf_counter()
        out = fn(*args)
        wall = time.perf_counter() - t
    return out, wall, cpu.seconds


def bench_model(model, n: int, batch: int) -> int:
    x = np.random.default_rng(0).standard_normal((batch, 3, model.preprocessor.size, model.preprocessor.size))
    x = x.astype(np.float32)
    done = 0
    while done < n:
        model.encode_pixels(x)
        done += batch
    return done


def bench_decode(files: list[Path], pre, workers: int, thumbs: Path) -> tuple[float, float]:
    """(wall, cpu) seconds for the worker stage alone over `files`, on the pipeline's own worker pool."""
    from photosearch.ingest.decode import FileResult, FileTask
    from photosearch.ingest.workers import WorkerPool

    pool = WorkerPool(workers, pre, thumbs)
    try:
        warm = files[: workers * 2]  # start the workers before timing (a set may hold fewer files)
        for f in warm:
            pool.submit(FileTask(str(f), 0, 0))
        for _ in warm:
            pool.get()
        shutil.rmtree(thumbs, ignore_errors=True)

        def run() -> list:
            for f in files:
                pool.submit(FileTask(str(f), 0, 0))
            return [pool.get() for _ in files]

        results, wall, cpu = timed(run)
    finally:
        pool.close()
    assert all(isinstance(r, FileResult) for r in results), results[:3]
    return wall, cpu


def bench_end_to_end(db, settings, files_dir: Path, model, name: str) -> tuple[float, float, dict]:
    from photosearch.db.accounts import default_user
    from photosearch.db.libraries import create_library
    from photosearch.ingest import index_library

    shutil.rmtree(settings.thumbs_dir, ignore_errors=True)
    user = default_user(db)
    lib = create_library(db, user["id"], name, [str(files_dir)])
    s, wall, cpu = timed(lambda: index_library(db, settings, lib, model=model))
    assert s.errors == 0 and s.new == s.seen, s
    return wall, cpu, s.to_dict()


def bench_ocr(db, settings, name: str) -> tuple[float, dict]:
    """(wall seconds, summary) of the text pass over the library bench_end_to_end indexed."""
    from photosearch.db.libraries import get_library
    from photosearch.ingest.ocr import read_library_text

    lib = get_library(db, name)
    t = time.perf_counter()
    summary = read_library_text(db, settings, lib)
    return time.perf_counter() - t, summary.to_dict()


def bench_copy(db, n: int, dim: int) -> dict[str, float]:
    """Binary COPY of embeddings (the bulk-load path) and of full staged rows through the ingest writer."""
    from photosearch.db.accounts import default_user
    from photosearch.db.assets import STAGE_COLUMNS, IngestConnection
    from photosearch.db.libraries import create_library

    vecs = np.random.default_rng(1).standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = [uuid.uuid4() for _ in range(n)]
    out = {}
    with IngestConnection(db) as ic:
        c = ic.conn
        c.execute(f"CREATE TEMP TABLE emb (asset_id uuid, embedding vector({dim}))")
        t = time.perf_counter()
        with c.transaction(), c.cursor() as cur, cur.copy("COPY emb FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["uuid", "vector"])
            for i in range(n):
                cp.write_row((ids[i], vecs[i]))
        out["embedding_copy_rows_per_s"] = n / (time.perf_counter() - t)
        # the real writer: assets + exif + embeddings, batches of 256 in transactions
        user = default_user(db)
        lib = create_library(db, user["id"], "copybench", ["/nonexistent"])
        from datetime import UTC, datetime

        from photosearch.db.embedding import drop_vector_index

        drop_vector_index(c)  # the bulk-load path: the index is built after the load
        now = datetime.now(UTC)
        m = min(n, 20_000)
        t = time.perf_counter()
        for start in range(0, m, 256):
            rows = []
            for i in range(start, min(m, start + 256)):
                row = [None] * len(STAGE_COLUMNS)
                row[0:8] = [ids[i], f"/x/{i}.jpg", f"{i}.jpg", i.to_bytes(20, "big"), 1000, now, now, now]
                row[-1] = vecs[i]
                rows.append(row)
            ic.write_batch(user["id"], lib["id"], rows)
        out["writer_rows_per_s"] = m / (time.perf_counter() - t)
    return out


def load() -> str:
    return "load avg " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def peak_rss_mb() -> dict[str, float]:
    return {
        "main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "largest_child_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", type=Path, default=Path("/work/bench-models"))
    ap.add_argument("--model", default="ViT-B-32__random")
    ap.add_argument("--small", type=int, default=200, help="number of small (0.48 MP) photos")
    ap.add_argument("--large", type=int, default=96, help="number of 12 MP photos")
    ap.add_argument("--copy-rows", type=int, default=100_000)
    ap.add_argument("--no-ocr", action="store_true", help="skip the text pass (d)")
    ap.add_argument("--out", type=Path, default=RESULTS / "ingest_bench.json", help="JSON results (and .png beside)")
    ap.add_argument("--workers", type=int, default=None, help="decode processes (default: all cores)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "photosearch-ingest-bench")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: stop the embedded server

    sys.path.insert(0, str(ROOT / "src"))
    from photosearch.config import Settings, physical_cores
    from photosearch.db.migrate import migrate
    from photosearch.db.pool import check_pgvector, connect_pool
    from photosearch.db.server import ServerInfo, start_embedded, stop_embedded
    from photosearch.models import load_clip

    if not (args.models_dir / args.model / "visual" / "model.onnx").exists():
        sys.exit(f"no model at {args.models_dir / args.model}: see this script's docstring")
    cores = physical_cores()
    work = args.workdir
    sets = {}
    if args.small:
        sets["small"] = make_photos(work / "small", args.small, (800, 600), 1)
    if args.large:
        sets["12MP"] = make_photos(work / "large", args.large, (4000, 3000), 2)
    try:
        import rapidocr  # noqa: F401

        ocr = not args.no_ocr
    except ImportError:
        ocr = False
        print("(d) skipped: the text pass needs photosearch[ocr] (rapidocr)")
    text_photos = ROOT.parent / "shared" / "testdata" / "photos" / "albums" / "text"
    if ocr and text_photos.is_dir():
        sets["text"] = sorted(text_photos.glob("*.jpg"))
    pgdata = work / "pgdata"
    shutil.rmtree(pgdata, ignore_errors=True)
    dsn = start_embedded(pgdata)
    check_pgvector(dsn)
    migrate(dsn)
    db = connect_pool(ServerInfo(dsn=dsn, embedded=True, pgdata=pgdata), max_size=4)
    settings = Settings(
        data_dir=work / "data",
        database_url=dsn,
        models_dir=args.models_dir,
        model_name=args.model,
        threads=cores,
        ingest_workers=args.workers,
    )
    workers = settings.ingest_workers or os.cpu_count() or 1
    model = load_clip(settings)
    results: dict = {"cores": cores, "workers": workers, "batch": settings.ingest_batch_size, "model": args.model}
    batch = settings.ingest_batch_size
    model.encode_pixels(np.zeros((batch, 3, model.preprocessor.size, model.preprocessor.size), np.float32))
    results["load_before"] = os.getloadavg()[0]
    try:
        print(f"sets {', '.join(f'{k} ({len(v)})' for k, v in sets.items())}; {load()}", flush=True)
        for name, files in sets.items():
            # a, b, c, then a again: the machine may be shared, so the model rate is the mean of two takes
            n_a, wall_a1, cpu_a1 = timed(bench_model, model, max(64, len(files) // 2), batch)
            wall_b, cpu_b = bench_decode(files, model.preprocessor, workers, work / "bench-thumbs")
            wall_c, cpu_c, summary = bench_end_to_end(db, settings, files[0].parent, model, f"bench-{name}")
            _, wall_a2, cpu_a2 = timed(bench_model, model, max(64, len(files) // 2), batch)
            n = len(files)
            a = 2 * n_a / (wall_a1 + wall_a2)
            b, c = n / wall_b, n / wall_c
            ideal = 1 / (1 / a + 1 / b)
            cpu_per_img = {"model": (cpu_a1 + cpu_a2) / (2 * n_a), "decode": cpu_b / n, "end_to_end": cpu_c / n}
            ocr_stats: dict = {}
            if ocr:
                wall_d, ocr_summary = bench_ocr(db, settings, f"bench-{name}")
                ocr_stats = {"ocr_img_s": n / wall_d, "ocr_share": wall_d / (wall_c + wall_d), "ocr": ocr_summary}
            print(f"{name}: {n} files, (a) {a:.2f} (b) {b:.2f} (c) {c:.2f} img/s, c/ideal {c / ideal:.2f}"
                  + (f", (d) OCR {ocr_stats['ocr_img_s']:.2f} img/s, {ocr_stats['ocr_share']:.1%} of ingest time"
                     if ocr_stats else "") + f" ({load()})", flush=True)  # fmt: skip
            results[name] = {
                **ocr_stats,
                "files": n,
                "model_img_s": a,
                "decode_img_s": b,
                "end_to_end_img_s": c,
                "ideal_img_s": ideal,
                "ratio": c / ideal,
                "cpu_s_per_img": cpu_per_img,
                "cpu_ratio": (cpu_per_img["model"] + cpu_per_img["decode"]) / cpu_per_img["end_to_end"],
                "summary": summary,
            }
        results["peak_rss"] = peak_rss_mb()
        results["copy"] = bench_copy(db, args.copy_rows, model.embed_dim)
        results["load_after"] = os.getloadavg()[0]
    finally:
        db.close()
        stop_embedded(pgdata)

    print(f"\ningest benchmark — {args.model}, {cores} cores, {workers} workers, batch {results['batch']}")
    print(f"load average before/after: {results['load_before']:.1f} / {results['load_after']:.1f}")
    print(
        f"{'set':6} {'files':>5} {'(a) model':>10} {'(b) decode':>11} {'(c) e2e':>9} {'ideal':>7} {'c/ideal':>8}"
        f" {'CPU ratio':>10}"
    )
    for name in sets:
        r = results[name]
        print(
            f"{name:6} {r['files']:5d} {r['model_img_s']:10.1f} {r['decode_img_s']:11.1f} {r['end_to_end_img_s']:9.1f}"
            f" {r['ideal_img_s']:7.1f} {r['ratio']:8.2f} {r['cpu_ratio']:10.2f}"
        )
    print("(img/s, wall clock; CPU ratio = (model + decode CPU-s per image) / end-to-end CPU-s per image)")
    if ocr:
        print(f"{'set':6} {'(d) OCR img/s':>14} {'share d/(c+d)':>14} {'with text':>10}")
        for name in sets:
            r = results[name]
            print(f"{name:6} {r['ocr_img_s']:14.2f} {r['ocr_share']:14.1%} {r['ocr']['with_text']:10d}")
    cp = results["copy"]
    print(
        f"embedding COPY: {cp['embedding_copy_rows_per_s']:,.0f} rows/s; writer: {cp['writer_rows_per_s']:,.0f} rows/s"
    )
    rss = results["peak_rss"]
    print(f"peak RSS: main {rss['main_mb']:.0f} MB, largest worker {rss['largest_child_mb']:.0f} MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    _plot(results, list(sets), args.out.with_suffix(".png"))


def _plot(results: dict, names: list[str], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.2
    labels = ["(a) model", "(b) decode", "ideal", "(c) end to end"]
    for i, name in enumerate(names):
        r = results[name]
        vals = [r["model_img_s"], r["decode_img_s"], r["ideal_img_s"], r["end_to_end_img_s"]]
        xs = [i + (j - 1.5) * width for j in range(4)]
        bars = ax.bar(xs, vals, width, color=["#888", "#aaa", "#4c72b0", "#dd8452"])
        ax.text(i, max(vals) * 1.02, f"c/ideal = {r['ratio']:.2f}", ha="center")
        if i == 0:
            for b, lab in zip(bars, labels, strict=True):
                b.set_label(lab)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("images / s")
    ax.set_title(f"ingest throughput ({results['model']}, {results['cores']} cores)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
