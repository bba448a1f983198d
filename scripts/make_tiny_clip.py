"""Build the tiny random CLIP test model in the immich layout (reproducible: fixed seed).

Run with a torch environment (never needed at test time):

    python3 -m venv /work/venv-torch
    /work/venv-torch/bin/pip install torch==2.13.0 open_clip_torch onnx transformers \
        pillow-heif pillow-jxl-plugin onnxruntime
    /work/venv-torch/bin/python scripts/make_tiny_clip.py

Writes `tests/fixtures/tiny-clip/` (dynamic batch, dynamic text length: our own export style)
and `tests/fixtures/tiny-clip-b1/{visual,textual}/model.onnx` (the same weights with immich's
fixed batch of 1 and fixed 77 tokens). The architecture is ViT-B/32's preprocessing (224 px,
bicubic, OpenAI mean/std) and the real CLIP BPE tokenizer (49408 tokens), but tiny widths.
The token embedding is stored as float16 (values pre-rounded so the torch reference is identical)
to keep the fixture small. `scripts/make_goldens.py` then computes the reference embeddings.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import _torch_shim  # noqa: E402, F401  (before open_clip)

from photosearch.models.export import create_open_clip, export_model, export_towers  # noqa: E402

NAME = "tiny-clip"
SEED = 1234
TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 32, "head_width": 16, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 8, "heads": 2, "layers": 2},
}


def build_model():
    """The seeded tiny model, token embedding rounded to float16 precision (stored as float16)."""
    import torch

    model = create_open_clip(NAME, model_cfg=TINY_CFG, seed=SEED)
    with torch.no_grad():
        model.token_embedding.weight.copy_(model.token_embedding.weight.half().float())
    return model


def store_token_embedding_fp16(onnx_path: Path, vocab_size: int) -> None:
    """Replace the [vocab, width] float32 initializer by float16 + a Cast node (exact: pre-rounded)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(onnx_path))
    g = m.graph
    for init in list(g.initializer):
        arr = numpy_helper.to_array(init)
        if arr.ndim == 2 and arr.shape[0] == vocab_size and arr.dtype == np.float32:
            half = numpy_helper.from_array(arr.astype(np.float16), init.name + "_fp16")
            g.initializer.remove(init)
            g.initializer.append(half)
            g.node.insert(0, helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
            break
    else:
        raise SystemExit(f"no token embedding found in {onnx_path}")
    onnx.checker.check_model(m)
    onnx.save(m, str(onnx_path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "tiny-clip")
    ap.add_argument("--b1-out", type=Path, default=ROOT / "tests" / "fixtures" / "tiny-clip-b1")
    args = ap.parse_args()

    model = build_model()
    vocab = TINY_CFG["text_cfg"]["vocab_size"]
    shutil.rmtree(args.out, ignore_errors=True)
    export_model(NAME, args.out, model=model, dynamic=True)
    config = json.loads((args.out / "config.json").read_text())  # random weights: say so (models.registry)
    (args.out / "config.json").write_text(json.dumps({"test_model": True, **config}, indent=2) + "\n")
    store_token_embedding_fp16(args.out / "textual" / "model.onnx", vocab)

    shutil.rmtree(args.b1_out, ignore_errors=True)
    export_towers(model, args.b1_out, 224, 77, dynamic=False)
    store_token_embedding_fp16(args.b1_out / "textual" / "model.onnx", vocab)
    (args.b1_out / "README.md").write_text(
        "Same weights as `../tiny-clip`, exported like immich does (fixed batch 1, fixed 77 tokens).\n"
        "Tests overlay these two files on a copy of `../tiny-clip`. Built by `scripts/make_tiny_clip.py`.\n"
    )
    for p in sorted([*args.out.rglob("*"), *args.b1_out.rglob("*")]):
        if p.is_file():
            print(f"{p.stat().st_size:>10,}  {p.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
