"""CLIP speed on an immich-format model: text query latency and image throughput against the CPU's limit.

    python benchmarks/embed_bench.py                   # ViT-B/32 shapes, random weights
    python benchmarks/embed_bench.py --rounds 3 --seconds 2

The model is a full-size ViT-B/32 exported like immich does (fixed batch 1, fixed 77 tokens,
TorchScript exporter) with random weights (speed does not depend on the values), made once into
benchmarks/.cache by scripts/export_random_clip.py, which needs a torch environment
(`--torch-python`, default /work/venv-torch/bin/python).

Measures, in one run, the model files as they are against the graphs photosearch derives from them
(models/derive.py): text p50 latency for 1-, 5- and 16-word queries (calls interleaved), and image
throughput for several ONNX Runtime set-ups, alternated round by round (median of rounds). The
machine's limit is a GEMM micro-benchmark (ONNX Runtime MatMul on one thread, and numpy):
floating-point operations per CPU-second. A model's share of it is its FLOPs per image x images per
CPU-second (process CPU time, so other load on a shared machine does not count against it; spinning
threads do). Wall-clock images/s are printed too, with the load average. Writes
benchmarks/results/embed_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from photosearch.config import physical_cores
from photosearch.models import ClipModel
from photosearch.models.clip import TEXT_SPIN_US
from photosearch.models.runtime import SessionConfig

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "testdata" / "photos"
CPU = "CPUExecutionProvider"
QUERIES = {
    "1 word": "dog",
    "5 words": "red mushroom in green moss",
    "16 words": "a golden retriever puppy chasing a red ball across the green park lawn on a sunny afternoon",
}


def load() -> str:
    return "load avg " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def ensure_model(cache: Path, arch: str, torch_python: str) -> Path:
    d = cache / f"{arch}__random-fixed"
    if (d / "textual" / "model.onnx").is_file() and (d / "visual" / "model.onnx").is_file():
        return d
    cmd = [torch_python, str(ROOT / "scripts" / "export_random_clip.py"), arch, str(d), "--fixed-batch"]
    print("exporting:", " ".join(cmd))
    subprocess.run(cmd, check=True)
    return d


def unfused_copy(model_dir: Path) -> Path:
    """A sibling of the model folder (links to its files) whose derived text graph has no fused attention:
    the graph the fusion is measured against."""
    from photosearch.models import derive

    d = model_dir.with_name(model_dir.name + "-unfused")
    for f in model_dir.rglob("*"):
        rel = f.relative_to(model_dir)
        if f.is_file() and rel.parts[0] != derive.DERIVED_DIR and not (d / rel).exists():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / rel).symlink_to(f.resolve())
    state = derive.read_state(d, "textual")
    if state is None or state.fused:
        derive.derive_text(d, ClipModel(d, derive_graphs=False).tokenizer, fuse=False)
    return d


# the machine's limit ------------------------------------------------------------------------------------


def gemm_peak(seconds: float) -> dict[str, float]:
    """GFLOP per CPU-second of large float32 matrix products on one thread (ORT) and numpy's BLAS."""
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = 800, 768, 3072  # the shape of ViT-B/32's MLP at batch 16
    w = numpy_helper.from_array(np.random.default_rng(0).random((k, n), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], [w],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    sess = ort.InferenceSession(
        model.SerializeToString(), SessionConfig(threads=1).options(), providers=["CPUExecutionProvider"]
    )
    x = np.random.default_rng(1).random((m, k), np.float32)
    a = np.random.default_rng(2).random((1024, 1024), np.float32)

    def per_cpu_second(fn, flops: float) -> float:
        fn()
        best = 0.0
        for _ in range(5):
            c0, t0, reps = time.process_time(), time.perf_counter(), 0
            while time.perf_counter() - t0 < seconds / 5:
                fn()
                reps += 1
            best = max(best, flops * reps / max(time.process_time() - c0, 1e-9) / 1e9)
        return best

    return {
        "onnxruntime_matmul": per_cpu_second(lambda: sess.run(None, {"x": x}), 2 * m * k * n),
        "numpy_matmul": per_cpu_second(lambda: a @ a, 2 * 1024**3),
    }


def flops_per_image(path: Path) -> float:
    """2 x multiply-adds of every MatMul, Gemm and Conv of a batch-1 graph (shapes from one run)."""
    import onnx

    from photosearch.models.rewrite import runtime_shapes

    model = onnx.load(str(path))
    shapes = runtime_shapes(model)
    total = 0
    for node in model.graph.node:
        if node.op_type in ("MatMul", "Gemm"):
            a, out = shapes[node.input[0]], shapes[node.output[0]]
            total += 2 * int(np.prod(out)) * a[-1] if node.op_type == "MatMul" or not _attr(node, "transA") else 0
        elif node.op_type == "Conv":
            w, out = shapes[node.input[1]], shapes[node.output[0]]
            total += 2 * int(np.prod(out)) * int(np.prod(w[1:]))
    return float(total)


def _attr(node, name: str) -> int:
    return next((a.i for a in node.attribute if a.name == name), 0)


# measurements ---------------------------------------------------------------------------------------------


def image_rate(model: ClipModel, pixels: np.ndarray, seconds: float) -> tuple[float, float]:
    """(images per wall second, images per process CPU-second) over at least `seconds`."""
    model.encode_pixels(pixels[:2])
    n, c0, t0 = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        model.encode_pixels(pixels)
        n += len(pixels)
    return n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)


def text_p50(models: dict[str, ClipModel], calls: int) -> dict[str, dict[str, dict[str, float]]]:
    """p50 wall ms and CPU ms per query, calls interleaved across variants so background load hits them alike."""
    out: dict[str, dict[str, dict[str, float]]] = {k: {"wall_ms": {}, "cpu_ms": {}} for k in models}
    for label, q in QUERIES.items():
        wall: dict[str, list[float]] = {k: [] for k in models}
        cpu: dict[str, list[float]] = {k: [] for k in models}
        for m in models.values():
            m.encode_texts([q])
        for _ in range(calls):
            for k, m in models.items():
                c0, t0 = time.process_time(), time.perf_counter()
                m.encode_texts([q])
                wall[k].append(1000 * (time.perf_counter() - t0))
                cpu[k].append(1000 * (time.process_time() - c0))
        for k in models:
            out[k]["wall_ms"][label] = statistics.median(wall[k])
            out[k]["cpu_ms"][label] = statistics.median(cpu[k])
    return out


def image_variants(model_dir: Path, threads: int, providers: list[str]) -> dict[str, ClipModel]:
    """The set-ups compared: the model file as is vs the derived variable-batch graph, parallel
    single-thread sessions vs one multi-thread session, spinning, optimisation level."""

    def make(derive: bool, parallel: bool, **cfg) -> ClipModel:
        m = ClipModel(model_dir, threads=threads, derive_graphs=derive)
        m.visual.concurrent_runs = threads if parallel else 1
        m.visual.session_config = {"mem_pattern": True, **cfg}
        m.visual.providers = [CPU]
        return m

    v = {
        f"file b1, {threads}x1 thread": make(False, True),
        f"file b1, 1x{threads} threads": make(False, False),
        f"derived, {threads}x1 thread": make(True, True),
        f"derived, 1x{threads} threads": make(True, False),
        f"derived, 1x{threads} threads, no spin": make(True, False, spin=False),
        f"derived, {threads}x1 thread, basic opt": make(True, True, level="basic"),
        f"derived, {threads}x1 thread, no mem pattern (default)": make(True, True, mem_pattern=False),
    }
    for p in providers:
        m = make(True, False)
        m.visual.providers = [p, CPU]
        v[f"derived, {p.replace('ExecutionProvider', '')}"] = m
    return v


def draft_check(model: ClipModel) -> dict[str, float]:
    """A 12 MP JPEG decoded in full and in JPEG draft mode: time, and the embeddings' agreement."""
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:3000, 0:4000]
    base = np.stack([(x * 255 // 4000), (y * 255 // 3000), ((x + y) % 512) // 2], axis=-1)
    img = Image.fromarray(np.clip(base + rng.integers(-20, 21, (3000, 4000, 3)), 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    pre, out, px = model.preprocessor, {}, {}
    for label, draft in (("full", None), ("draft", pre.draft_size)):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            px[label] = pre(pre.load_image(buf.getvalue(), draft_to=draft))
            times.append(time.perf_counter() - t0)
        out[f"{label}_decode_preprocess_ms"] = 1000 * min(times)
    emb = model.encode_pixels(np.stack([px["full"], px["draft"]]))
    out["cosine_draft_vs_full"] = float(emb[0] @ emb[1])
    return out


def int8_section(model_dir: Path, threads: int, seconds: float, rounds: int, pixels: np.ndarray) -> dict:
    """The opt-in int8 copy (`models quantize`): agreement with float32 on the probes and on the test photos
    (cosine, and top-10 overlap of the photos ranked for each probe string), and its speed."""
    from photosearch.config import Settings
    from photosearch.models.quantize import agreement, quantize_model

    settings = Settings(data_dir=model_dir.parent / "data", models_dir=model_dir.parent, model_name=model_dir.name,
                        threads=threads)  # fmt: skip
    dest, agree = quantize_model(settings, model_dir.name, f"{model_dir.name}-int8", force=True)
    fp32, int8 = ClipModel(model_dir, threads=threads), ClipModel(dest, threads=threads)
    photos = sorted(p for p in PHOTOS.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    pre = fp32.preprocessor
    px = np.stack([pre(pre.load_image(p)) for p in photos])
    on_photos = agreement(fp32, int8, px)
    from photosearch.models.probes import PROBE_TEXTS

    q32, q8 = fp32.encode_texts(list(PROBE_TEXTS)), int8.encode_texts(list(PROBE_TEXTS))
    top32 = np.argsort(-(q32 @ fp32.encode_pixels(px).T), axis=1)[:, :10]
    top8 = np.argsort(-(q8 @ int8.encode_pixels(px).T), axis=1)[:, :10]
    overlap = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top32, top8, strict=True)]))
    rates = {"fp32": [], "int8": []}
    for _ in range(rounds):
        for k, m in (("fp32", fp32), ("int8", int8)):
            rates[k].append(image_rate(m, pixels, seconds)[1])
    out = {
        "probes": agree, "photos": len(photos), "photo_image_cosine_min": on_photos["image_cosine_min"],
        "photo_image_cosine_mean": on_photos["image_cosine_mean"], "top10_overlap": overlap,
        "img_per_cpu_s": {k: statistics.median(v) for k, v in rates.items()},
    }  # fmt: skip
    print(f"\nint8 copy (opt-in): text cosine min {agree['text_cosine_min']:.4f} mean {agree['text_cosine_mean']:.4f}; "
          f"{len(photos)} test photos: image cosine min {out['photo_image_cosine_min']:.4f} mean "
          f"{out['photo_image_cosine_mean']:.4f}, top-10 overlap {overlap:.2f}; img per CPU-s fp32 "
          f"{out['img_per_cpu_s']['fp32']:.2f}, int8 {out['img_per_cpu_s']['int8']:.2f} ({load()})")  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="ViT-B-32")
    ap.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / ".cache")
    ap.add_argument("--threads", type=int, default=physical_cores())
    ap.add_argument("--seconds", type=float, default=3.0, help="per image measurement per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--calls", type=int, default=40, help="text queries per variant and query length")
    ap.add_argument("--torch-python", default=os.environ.get("PHOTOSEARCH_TORCH_PYTHON", "/work/venv-torch/bin/python"))
    ap.add_argument("--no-int8", action="store_true", help="skip the int8 copy's agreement and speed")
    ap.add_argument(
        "--busy", type=int, default=0, help="busy-loop processes competing for the cores during the text table"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "embed_bench.json")
    args = ap.parse_args()

    model_dir = ensure_model(args.cache, args.arch, args.torch_python)
    accel = [p for p in ort.get_available_providers() if p not in ("CPUExecutionProvider", "AzureExecutionProvider")]
    result: dict = {
        "arch": args.arch, "export": "immich layout, fixed batch 1 and 77 tokens, random weights",
        "threads": args.threads, "onnxruntime": ort.__version__, "providers": ort.get_available_providers(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus", "load_start": os.getloadavg(),
    }  # fmt: skip

    # text
    t = args.threads
    plain = unfused_copy(model_dir)
    spin = {"spin": True, "spin_us": TEXT_SPIN_US}  # the default: spinning bounded per wait (TEXT_SPIN_US)
    setups: dict[str, tuple[ClipModel, dict]] = {
        f"model file (77 tokens), {t} thr": (ClipModel(model_dir, threads=t, derive_graphs=False), spin),
        f"derived, {t} thr (default)": (ClipModel(model_dir, threads=t), spin),
        "model file (77 tokens), 1 thr": (ClipModel(model_dir, threads=1, derive_graphs=False), spin),
        f"derived unfused, {t} thr": (ClipModel(plain, threads=t), spin),
        "derived unfused, 1 thr": (ClipModel(plain, threads=1), spin),
        f"derived, {t} thr, no spin": (ClipModel(model_dir, threads=t), {"spin": False}),
        "derived, 1 thr": (ClipModel(model_dir, threads=1), spin),
    }
    for p in accel:
        setups[f"derived, {p.replace('ExecutionProvider', '')}"] = (ClipModel(model_dir, threads=t), spin)
    text_models = {}
    for k, (m, config) in setups.items():
        m.textual.providers = [p for p in accel if p.replace("ExecutionProvider", "") in k] + [CPU]
        m.textual.session_config = config
        text_models[k] = m
    l0 = load()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        text = text_p50(text_models, args.calls)
    finally:
        for b in busy:
            b.kill()
            b.wait()
    result["text_busy_processes"] = args.busy
    print(f"\ntext query p50, {args.arch}, {args.busy} busy processes, {l0} -> {load()}")
    print(
        f"{'graph':32s}" + "".join(f"{q + ' ms':>11s}" for q in QUERIES) + "".join(f"{'CPU ms':>8s}" for _ in QUERIES)
    )
    for k, row in text.items():
        print(
            f"{k:32s}"
            + "".join(f"{row['wall_ms'][q]:11.1f}" for q in QUERIES)
            + "".join(f"{row['cpu_ms'][q]:8.1f}" for q in QUERIES)
        )
    file_k, der_k = list(text)[:2]
    ratio = {q: text[file_k]["wall_ms"][q] / text[der_k]["wall_ms"][q] for q in QUERIES}
    print(f"derived vs file, {t} threads, wall: " + ", ".join(f"{q} {r:.2f}x" for q, r in ratio.items()))
    one = {q: text["model file (77 tokens), 1 thr"]["cpu_ms"][q] / text["derived, 1 thr"]["cpu_ms"][q] for q in QUERIES}
    print("derived vs file, 1 thread, CPU ms: " + ", ".join(f"{q} {r:.2f}x" for q, r in one.items()))
    fz = {q: text[f"derived unfused, {t} thr"]["wall_ms"][q] / text[f"derived, {t} thr (default)"]["wall_ms"][q]
          for q in QUERIES}  # fmt: skip
    sp = {q: text[f"derived, {t} thr, no spin"]["wall_ms"][q] / text[f"derived, {t} thr (default)"]["wall_ms"][q]
          for q in QUERIES}  # fmt: skip
    fz1 = {q: text["derived unfused, 1 thr"]["cpu_ms"][q] / text["derived, 1 thr"]["cpu_ms"][q] for q in QUERIES}
    print(f"fused vs unfused attention, {t} threads, wall: " + ", ".join(f"{q} {r:.2f}x" for q, r in fz.items()))
    print("fused vs unfused attention, 1 thread, CPU ms: " + ", ".join(f"{q} {r:.2f}x" for q, r in fz1.items()))
    print(f"bounded spin vs sleeping threads, {t} threads, wall: " + ", ".join(f"{q} {r:.2f}x" for q, r in sp.items()))
    result["text"] = text
    result["text_graph"] = text_models[der_k].info()["text_graph"]

    # the limit
    peak = gemm_peak(args.seconds * 2)
    flops = flops_per_image(model_dir / "visual" / "model.onnx")
    best_peak = max(peak.values())
    print("\nGEMM peak per CPU-second: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peak.items()))
    print(f"{args.arch} image tower: {flops / 1e9:.2f} GFLOP per image")
    result.update(gemm_gflops_per_cpu_s=peak, gflop_per_image=flops / 1e9)

    # images
    variants = image_variants(model_dir, args.threads, accel)
    pixels = np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224)).astype(np.float32)
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    l0 = load()
    for _ in range(args.rounds):
        for k, m in variants.items():
            samples[k].append(image_rate(m, pixels, args.seconds))
    print(f"\nimages, batch {args.batch}, {args.rounds} rounds (median), {l0} -> {load()}")
    print(f"{'set-up':44s}{'img/s':>8s}{'img/CPU-s':>11s}{'% of peak':>11s}{'provider':>10s}")
    images = {}
    for k, s in samples.items():
        wall = statistics.median(x[0] for x in s)
        cpu = statistics.median(x[1] for x in s)
        share = 100 * cpu * flops / 1e9 / best_peak
        prov = variants[k].visual.provider.replace("ExecutionProvider", "")
        images[k] = {"img_per_s": wall, "img_per_cpu_s": cpu, "pct_of_peak": share, "provider": prov}
        print(f"{k:44s}{wall:8.1f}{cpu:11.2f}{share:10.0f}%{prov:>10s}")
    base = images[f"file b1, {args.threads}x1 thread"]
    best = max(images.items(), key=lambda kv: kv[1]["img_per_cpu_s"])
    print(f"best: {best[0]}: {best[1]['img_per_cpu_s'] / base['img_per_cpu_s']:.2f}x the model file's img/CPU-s")
    result["images"] = images
    result["image_graph"] = variants[f"derived, {args.threads}x1 thread"].info()["image_graph"]
    if not args.no_int8:
        result["int8"] = int8_section(model_dir, args.threads, args.seconds, args.rounds, pixels)
    draft = draft_check(variants[f"derived, {args.threads}x1 thread"])
    print(f"12 MP JPEG decode+preprocess: full {draft['full_decode_preprocess_ms']:.0f} ms, draft "
          f"{draft['draft_decode_preprocess_ms']:.0f} ms, cosine {draft['cosine_draft_vs_full']:.6f}")  # fmt: skip
    result["jpeg_12mp"] = draft
    result["load_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
