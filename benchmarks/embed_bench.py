"""Model-only throughput ceiling of the CLIP engine: images/s and text queries/s on ONNX Runtime.

    python benchmarks/embed_bench.py                 # ViT-B/32 shapes, random weights
    python benchmarks/embed_bench.py --seconds 2     # shorter runs

Compares an immich-style export (fixed batch 1, 77 tokens) with our own export (dynamic batch,
dynamic token axis). Both are full-size ViT-B/32 with random weights (speed does not depend on
the values), exported once into benchmarks/.cache by scripts/export_random_clip.py, which needs a
torch environment (`--torch-python`, default /work/venv-torch/bin/python). Also measures JPEG
draft-mode decoding of a 12 MP photo and its effect on the embedding. Variants are measured in
alternation (median of rounds) so background load hits both alike. Writes
benchmarks/results/embed_bench.json and .png.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from photosearch.config import physical_cores
from photosearch.models import ClipModel

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"immich (batch 1, 77 tok)": "fixed", "ours (dynamic)": "dynamic"}
SHORT_QUERY = "red mushroom in moss"  # 4 words -> 6 tokens with start/end
LONG_QUERY = "a photo of " + "a red mushroom in green moss " * 14  # truncated to 77 tokens


def ensure_model(cache: Path, arch: str, kind: str, torch_python: str) -> Path:
    d = cache / f"{arch}__random-{kind}"
    if (d / "textual" / "model.onnx").is_file() and (d / "visual" / "model.onnx").is_file():
        return d
    cmd = [torch_python, str(ROOT / "scripts" / "export_random_clip.py"), arch, str(d)]
    if kind == "fixed":
        cmd.append("--fixed-batch")
    print("exporting:", " ".join(cmd))
    subprocess.run(cmd, check=True)
    return d


def rate(fn, items: int, seconds: float) -> float:
    """Items per second over at least `seconds` (and at least one call)."""
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += items
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return n / dt


def alternate(models: dict[str, ClipModel], make_fn, items: int, seconds: float, rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(rounds):
        for k, m in models.items():
            samples[k].append(rate(make_fn(m), items, seconds / rounds))
    return {k: statistics.median(v) for k, v in samples.items()}


def draft_check(model: ClipModel) -> dict[str, float]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:3000, 0:4000]
    base = np.stack([(x * 255 // 4000), (y * 255 // 3000), ((x + y) % 512) // 2], axis=-1)
    img = Image.fromarray(np.clip(base + rng.integers(-20, 21, (3000, 4000, 3)), 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    pre = model.preprocessor
    out: dict[str, float] = {}
    for label, draft in (("full", None), ("draft", pre.draft_size)):
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            px = pre(pre.load_image(data, draft_to=draft))
            times.append(time.perf_counter() - t0)
        out[f"{label}_decode_preprocess_ms"] = 1000 * min(times)
        out[f"{label}_pixels"] = px
    emb = model.encode_pixels(np.stack([out.pop("full_pixels"), out.pop("draft_pixels")]))
    out["cosine_draft_vs_full"] = float(emb[0] @ emb[1])
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(VARIANTS)
    batches = result["batch_sizes"]
    w = 0.38
    for i, name in enumerate(names):
        vals = [result["images_per_s"][name][str(bs)] for bs in batches]
        a.bar(np.arange(len(batches)) + (i - 0.5) * w, vals, w, label=name)
        tv = [result["text_queries_per_s"][name][q] for q in ("short", "77 tokens")]
        b.bar(np.arange(2) + (i - 0.5) * w, tv, w, label=name)
    a.set_xticks(range(len(batches)), [f"batch {bs}" for bs in batches])
    a.set_ylabel("images / s")
    a.set_title(f"{result['arch']} image tower, {result['threads']} threads")
    b.set_xticks(range(2), ["short query (6 tok)", "77-token query"])
    b.set_ylabel("queries / s")
    b.set_title("text tower")
    for ax in (a, b):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="ViT-B-32")
    ap.add_argument("--cache", type=Path, default=ROOT / "benchmarks" / ".cache")
    ap.add_argument("--threads", type=int, default=physical_cores())
    ap.add_argument("--seconds", type=float, default=6.0, help="per measurement, split over rounds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--torch-python", default=os.environ.get("PHOTOSEARCH_TORCH_PYTHON", "/work/venv-torch/bin/python"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "embed_bench.json")
    args = ap.parse_args()

    models = {
        name: ClipModel(ensure_model(args.cache, args.arch, kind, args.torch_python), threads=args.threads)
        for name, kind in VARIANTS.items()
    }
    load0 = os.getloadavg()[0]
    pixels = np.random.default_rng(0).standard_normal((32, 3, 224, 224)).astype(np.float32)
    for m in models.values():  # create sessions, warm up
        m.encode_pixels(pixels[:1])
        m.encode_texts([SHORT_QUERY])
    batches = [1, 8, 32]
    images: dict[str, dict[str, float]] = {k: {} for k in models}
    for bs in batches:
        r = alternate(models, lambda m, bs=bs: lambda: m.encode_pixels(pixels[:bs]), bs, args.seconds, args.rounds)
        for k, v in r.items():
            images[k][str(bs)] = v
    texts: dict[str, dict[str, float]] = {k: {} for k in models}
    for label, q in (("short", SHORT_QUERY), ("77 tokens", LONG_QUERY)):
        r = alternate(models, lambda m, q=q: lambda: m.encode_texts([q]), 1, args.seconds, args.rounds)
        for k, v in r.items():
            texts[k][label] = v
    draft = draft_check(models["ours (dynamic)"])
    result = {
        "arch": args.arch,
        "weights": "random (speed only)",
        "threads": args.threads,
        "onnxruntime": ort.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "load_avg_start_end": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "batch_sizes": batches,
        "images_per_s": images,
        "text_queries_per_s": texts,
        "text_ms": {k: {q: 1000 / v for q, v in d.items()} for k, d in texts.items()},
        "jpeg_12mp": draft,
    }
    print(f"\n{args.arch}, random weights, {args.threads} threads, onnxruntime {ort.__version__}, "
          f"load avg {result['load_avg_start_end']}")  # fmt: skip
    print(
        f"{'export':28s}"
        + "".join(f"{'img/s b' + str(b):>12s}" for b in batches)
        + f"{'short q/s':>12s}{'77tok q/s':>12s}"
    )
    for k in models:
        row = "".join(f"{images[k][str(b)]:12.2f}" for b in batches)
        print(f"{k:28s}{row}{texts[k]['short']:12.2f}{texts[k]['77 tokens']:12.2f}")
    imm, ours = list(models)
    print(
        f"ours/immich: images batch 32 {images[ours]['32'] / images[imm]['32']:.2f}x, "
        f"ours batch 32 vs immich batch 1 {images[ours]['32'] / images[imm]['1']:.2f}x, "
        f"short query {texts[ours]['short'] / texts[imm]['short']:.2f}x, "
        f"77-token query {texts[ours]['77 tokens'] / texts[imm]['77 tokens']:.2f}x"
    )
    print(f"12 MP JPEG decode+preprocess: full {draft['full_decode_preprocess_ms']:.0f} ms, draft "
          f"{draft['draft_decode_preprocess_ms']:.0f} ms, cosine {draft['cosine_draft_vs_full']:.6f}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
