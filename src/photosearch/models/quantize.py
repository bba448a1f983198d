"""INT8 copies of an installed model, only on request (`photosearch models quantize NAME`).

ONNX Runtime's dynamic quantization stores MatMul/Gemm weights as int8 (activations are quantized on
the fly), which makes the files ~4x smaller and image embedding faster on CPUs with VNNI, but moves the
embeddings: the copy is installed as a model of its own (`NAME-int8`), its agreement with the float32
model (cosine on the probe strings and images) is measured, recorded in its manifest and printed, and
nothing uses it until `models use NAME-int8 --reembed`. Quantizes the graphs that run (the derived
variable-shape ones when they passed their check), so the copy needs no derivation of its own.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from photosearch.models.errors import ModelError
from photosearch.models.probes import PROBE_TEXTS, probe_images

if TYPE_CHECKING:
    from photosearch.config import Settings
    from photosearch.models.clip import ClipModel


def agreement(fp32: ClipModel, int8: ClipModel, images: np.ndarray | None = None) -> dict[str, float]:
    """Cosine between the two models' embeddings of the probe strings and of `images` (default: probes)."""
    texts = list(PROBE_TEXTS)
    tc = np.sum(fp32.encode_texts(texts) * int8.encode_texts(texts), axis=1)
    x = probe_images(fp32.image_size, 8) if images is None else images
    ic = np.sum(fp32.encode_pixels(x) * int8.encode_pixels(x), axis=1)
    return {
        "text_cosine_min": float(tc.min()),
        "text_cosine_mean": float(tc.mean()),
        "image_cosine_min": float(ic.min()),
        "image_cosine_mean": float(ic.mean()),
    }


def quantize_model(
    settings: Settings, name: str, new_name: str | None = None, *, force: bool = False
) -> tuple[Path, dict[str, Any]]:
    """Install an int8 copy of model `name` as `new_name` (default NAME-int8); returns it and its agreement."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from photosearch.models.clip import ClipModel
    from photosearch.models.registry import MODEL_FILES, _install, _staging, model_path

    src = model_path(settings, name)
    if not src.is_dir():
        raise ModelError(f"model {name!r} is not installed in {src.parent}")
    fp32 = ClipModel(src, name, threads=settings.threads)
    towers = {"visual": fp32.visual, "textual": fp32.textual}
    for tower in towers.values():
        tower.input_shape()  # create the sessions: derives the faster graphs first when needed
    dest = model_path(settings, new_name or f"{name}-int8")
    if dest.exists() and not force:
        raise ModelError(f"model {dest.name!r} is already installed in {dest.parent} (use --force to replace)")
    staging = _staging(settings, dest.name)
    try:
        for f in MODEL_FILES:
            if (src / f).is_file() and not f.endswith(("model.onnx", "model.onnx_data")):
                (staging / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src / f, staging / f)
        logging.disable(logging.WARNING)  # the quantizer's advice to pre-process is not for our users
        try:
            for sub, tower in towers.items():
                quantize_dynamic(
                    tower.active_path, staging / sub / "model.onnx",
                    weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm", "Attention"],
                    # values after a fused Attention node have no inferred type: they are float32
                    extra_options={"DefaultTensorType": TensorProto.FLOAT},
                )  # fmt: skip
        finally:
            logging.disable(logging.NOTSET)
        agree = agreement(fp32, ClipModel(staging, threads=settings.threads, derive_graphs=False))
    except ModelError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except Exception as exc:  # noqa: BLE001 - the quantizer's own errors
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelError(f"cannot quantize model {name!r}: {str(exc).splitlines()[0][:300]}") from exc
    source = {"source": "quantize", "path": str(src), "quantization": "int8 weights (dynamic)", "int8": agree}
    return _install(staging, dest, source, force), agree
