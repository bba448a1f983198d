"""Export an open_clip architecture with random weights (full-size shapes) for benchmarks.

    /work/venv-torch/bin/python scripts/export_random_clip.py ViT-B-32 OUT_DIR [--fixed-batch]

`--fixed-batch` reproduces immich's export (batch 1, 77 tokens, TorchScript exporter); without
it, our own export (dynamic batch, dynamic token axis). Speed does not depend on weight values.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import _torch_shim  # noqa: E402, F401  (before open_clip)

from photosearch.models.export import create_open_clip, export_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arch")
    ap.add_argument("out", type=Path)
    ap.add_argument("--fixed-batch", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    model = create_open_clip(args.arch, seed=args.seed)
    export_model(args.arch, args.out, model=model, dynamic=not args.fixed_batch)
    print(args.out)


if __name__ == "__main__":
    main()
