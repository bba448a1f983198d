"""Text in photos: how small an image OCR can read without losing words, and what it costs.

For each photo of the shared `albums/text` set (real signs and handwriting, 12-17 MP), reads the text from:
the original at full size (the reference), the stored preview (short side 1440, as ingest keeps it) and the
original downscaled to a long side of 2000, 1600, 1280 and 960 px; reports the seconds per photo and word recall
against the reference (words of ≥ 2 letters or digits, case-folded; for CJK every character counts as a word).
Each configuration runs twice and the faster run counts (the first call of a size also builds the session).
Prints a table, writes benchmarks/results/ocr_bench.json.

    python benchmarks/ocr_bench.py [--photos DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from PIL import Image

from photosearch.ingest.decode import register_decoders
from photosearch.ingest.ocr import TextReader
from photosearch.ingest.thumbnails import PREVIEW_SIZE, fit_short_side

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIZES = (None, "preview", 2000, 1600, 1280, 960)
_WORD = re.compile(r"[0-9A-Za-z\u00c0-\u024f]{2,}|[\u3040-\u30ff\u3400-\u9fff]")


def words(text: str) -> set[str]:
    return {w.casefold() for w in _WORD.findall(text)}


def _image(path: Path, size: object) -> Image.Image:
    img = Image.open(path)
    img.load()
    if size == "preview":
        return fit_short_side(img.convert("RGB"), PREVIEW_SIZE, slack=1.1)
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "testdata" / "photos" / "albums" / "text")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    register_decoders()
    photos = sorted(args.photos.glob("*.jpg"))
    if not photos:
        sys.exit(f"no photos in {args.photos}")
    rows = []
    reference: dict[str, set[str]] = {}
    for size in SIZES:
        reader = TextReader(args.threads, max_side=10**6 if size in (None, "preview") else int(size))  # type: ignore[arg-type]
        secs, recalls = [], []
        for p in photos:
            arr = reader.prepare(_image(p, size))
            best = float("inf")
            for _ in range(2):
                t = time.perf_counter()
                text = reader.read_array(arr)
                best = min(best, time.perf_counter() - t)
            got = words(text)
            if size is None:
                reference[p.name] = got
            ref = reference[p.name]
            recalls.append(len(got & ref) / max(1, len(ref)))
            secs.append(best)
        rows.append(
            {
                "image": "original" if size is None else "preview 1440" if size == "preview" else f"long side {size}",
                "s_per_photo": round(sum(secs) / len(secs), 3),
                "word_recall": round(sum(recalls) / len(recalls), 3),
                "per_photo": {
                    p.name: [round(s, 3), round(r, 3)] for p, s, r in zip(photos, secs, recalls, strict=True)
                },
            }
        )
    print(f"{len(photos)} photos, {args.threads} threads; recall = words of the full-size reading found again")
    print(f"{'image':<16} {'s/photo':>8} {'recall':>7}")
    for r in rows:
        print(f"{r['image']:<16} {r['s_per_photo']:>8.3f} {r['word_recall']:>7.3f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ocr_bench.json").write_text(json.dumps({"photos": len(photos), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
