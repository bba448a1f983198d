"""Peak memory of one ingest worker on one very large photo, by format.

Writes a 100 MP photo (10000×10000, a smooth ramp so the files stay small) as JPEG, greyscale PNG, RGB PNG,
RGBA PNG, TIFF (deflate) and WebP into a temporary folder, then runs ingest's per-file work (`process_file`:
read, hash, metadata, decode, thumbnails, model input) on each in a fresh process and reports how much its peak
RSS (VmHWM) grew, next to the size of one full decoded frame. A JPEG decodes at reduced size in the DCT domain;
the other formats have no reduced decode in Pillow, so one full frame (4 bytes a pixel for RGB and RGBA) is the
floor. Prints a table, writes benchmarks/results/decode_memory.json.

    python benchmarks/decode_memory.py [--megapixels 100]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FORMATS = {  # name: (file name, mode, save options)
    "JPEG": ("p.jpg", "RGB", {"quality": 85}),
    "PNG grey": ("grey.png", "L", {"compress_level": 1}),
    "PNG RGB": ("rgb.png", "RGB", {"compress_level": 1}),
    "PNG RGBA": ("rgba.png", "RGBA", {"compress_level": 1}),
    "TIFF RGB": ("rgb.tif", "RGB", {"compression": "tiff_deflate"}),
    "WebP RGB": ("rgb.webp", "RGB", {"quality": 80}),
}
WORKER = """
import sys
from pathlib import Path
from photosearch.ingest.decode import FileTask, process_file, register_decoders
from photosearch.models.preprocess import PreprocessConfig, Preprocessor

def hwm():
    return next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")) / 1024

register_decoders()
pre = Preprocessor(PreprocessConfig((224, 224), (0.5,) * 3, (0.5,) * 3))
before = hwm()
r = process_file(FileTask(sys.argv[1], 0, 0), pre, Path(sys.argv[2]))
print(type(r).__name__, hwm() - before)
"""


def write(folder: Path, side: int) -> dict[str, Path]:
    ramp = np.linspace(0, 255, side, dtype=np.float32).astype(np.uint8)
    rgba = np.empty((side, side, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = ramp, ramp[::-1], ramp[:, None], 255
    full = Image.fromarray(rgba)
    out = {}
    for name, (file, mode, options) in FORMATS.items():
        if name.startswith("WebP") and side > 16_383:
            continue  # WebP's limit
        full.convert(mode).save(folder / file, **options)
        out[name] = folder / file
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--megapixels", type=float, default=100.0)
    args = ap.parse_args()
    side = int((args.megapixels * 1e6) ** 0.5)
    rows = []
    with tempfile.TemporaryDirectory(prefix="decode-memory-") as tmp:
        for name, path in write(Path(tmp), side).items():
            out = subprocess.run(
                [sys.executable, "-c", WORKER, str(path), str(Path(tmp) / "thumbs")], capture_output=True, text=True
            )
            if out.returncode:
                raise SystemExit(out.stderr)
            result, grew = out.stdout.split()
            frame = side * side * (1 if "grey" in name else 4) / 2**20
            rows.append({"format": name, "megapixels": round(side * side / 1e6, 1), "file_mb": round(
                path.stat().st_size / 2**20, 1), "frame_mb": round(frame), "peak_growth_mb": round(float(grew)),
                "result": result})  # fmt: skip
    print(f"{'format':10s} {'MP':>6s} {'file MB':>8s} {'frame MB':>9s} {'peak +MB':>9s}")
    for r in rows:
        mp, file_mb, frame, peak = r["megapixels"], r["file_mb"], r["frame_mb"], r["peak_growth_mb"]
        print(f"{r['format']:10s} {mp:6.1f} {file_mb:8.1f} {frame:9d} {peak:9d}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "decode_memory.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
