"""Derived graphs against the original model files (immich layout, fixed batch 1 and 77 tokens).

The reference is always the untouched original ONNX file run by ONNX Runtime at its full fixed
shape, plus the torch goldens (tests/fixtures/goldens) for the strings they cover.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from photosearch.config import Settings
from photosearch.models import ClipModel, derive
from photosearch.models.probes import PROBE_TEXTS
from photosearch.models.registry import import_model, model_info
from photosearch.models.runtime import SessionConfig, create_session

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _b1_copy(tiny_model_dir: Path, dest: Path) -> Path:
    shutil.copytree(tiny_model_dir, dest)
    for tower in ("visual", "textual"):
        shutil.copyfile(FIXTURES / "tiny-clip-b1" / tower / "model.onnx", dest / tower / "model.onnx")
    return dest


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _original_embeddings(model_dir: Path, model: ClipModel, texts: list[str]) -> np.ndarray:
    """The original file at its fixed 77 tokens, one string at a time (what immich runs)."""
    sess = create_session(model_dir / "textual" / "model.onnx", SessionConfig(threads=1))
    ids = model.tokenizer(texts)
    out = np.concatenate([sess.run(None, {"text": ids[i : i + 1]})[0] for i in range(len(ids))])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_probe_strings_cover_the_hard_cases() -> None:
    assert len(PROBE_TEXTS) >= 50 and "" in PROBE_TEXTS
    assert any("&amp;" in t for t in PROBE_TEXTS) and any("東京" in t for t in PROBE_TEXTS)
    assert any(len(t.split()) > 77 for t in PROBE_TEXTS), "a string longer than the context"


def test_fixed_text_tower_runs_verified_variable_length_graph(tiny_model_dir: Path, tmp_path: Path, golden_texts):
    d = _b1_copy(tiny_model_dir, tmp_path / "b1")
    before = _sha(d / "textual" / "model.onnx")
    model = ClipModel(d, threads=1)
    texts, _, ref = golden_texts
    emb = model.encode_texts(list(texts))
    # the derived graph is what runs: a variable token axis, from the model folder's .derived/
    assert model.textual.active_path == d / ".derived" / "textual.onnx"
    assert not isinstance(model.textual.input_shape()[1], int)
    assert model.graphs["textual"].graph == "derived"
    assert model.graphs["textual"].probes == len(PROBE_TEXTS) and model.graphs["textual"].min_cosine >= 0.99999
    assert _sha(d / "textual" / "model.onnx") == before, "the original file is untouched"
    # against the original file at 77 tokens, and against the torch goldens
    orig = _original_embeddings(d, model, list(texts))
    assert np.min(np.sum(emb * orig, axis=1)) >= 0.99999
    assert np.min(np.sum(emb * ref, axis=1)) >= 0.9999
    probes = model.encode_texts(list(PROBE_TEXTS))
    assert np.min(np.sum(probes * _original_embeddings(d, model, list(PROBE_TEXTS)), axis=1)) >= 0.99999
    assert "derived" in model.info()["text_graph"]


def test_derivation_is_recorded_and_redone_when_the_file_changes(tiny_model_dir: Path, tmp_path: Path) -> None:
    d = _b1_copy(tiny_model_dir, tmp_path / "b1")
    ClipModel(d, threads=1).encode_text("a dog")
    state_file = d / ".derived" / "state.json"
    recorded = json.loads(state_file.read_text())["textual"]
    assert recorded["graph"] == "derived" and recorded["source"]["size"] == (d / "textual/model.onnx").stat().st_size
    stamp = state_file.stat().st_mtime_ns
    again = ClipModel(d, threads=1)
    again.encode_text("a dog")
    assert state_file.stat().st_mtime_ns == stamp, "a recorded derivation is reused, not redone"
    assert again.graphs["textual"].graph == "derived"
    # a replaced model file (new mtime/size) is derived and checked again
    shutil.copyfile(FIXTURES / "tiny-clip-b1" / "textual" / "model.onnx", d / "textual" / "model.onnx")
    assert derive.read_state(d, "textual") is None
    ClipModel(d, threads=1).encode_text("a dog")
    assert derive.read_state(d, "textual").graph == "derived"


def test_optimised_export_also_derives(tiny_model_dir: Path, tmp_path: Path) -> None:
    """immich runs ORT's basic optimiser over its exports (constants folded into initializers)."""
    d = _b1_copy(tiny_model_dir, tmp_path / "b1")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(d / "textual" / "model.onnx")
    original = FIXTURES / "tiny-clip-b1" / "textual" / "model.onnx"
    ort.InferenceSession(str(original), opts, providers=["CPUExecutionProvider"])
    model = ClipModel(d, threads=1)
    texts = list(PROBE_TEXTS[:20])
    emb = model.encode_texts(texts)
    assert model.graphs["textual"].graph == "derived"
    assert np.min(np.sum(emb * _original_embeddings(d, model, texts), axis=1)) >= 0.99999


def test_failed_check_falls_back_to_the_original(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    d = _b1_copy(tiny_model_dir, tmp_path / "b1")
    monkeypatch.setattr(derive, "MIN_COSINE", 1.5)  # no graph can pass: exercise the fallback
    model = ClipModel(d, threads=1)
    emb = model.encode_texts(["a dog", "a cat"])
    assert model.textual.active_path == d / "textual" / "model.onnx"
    assert model.graphs["textual"].graph == "original" and "differs" in model.graphs["textual"].reason
    assert not (d / ".derived" / "textual.onnx").exists()
    assert model.info()["text_length"] == 77 and "original model file" in model.info()["text_graph"]
    np.testing.assert_allclose(emb, _original_embeddings(d, model, ["a dog", "a cat"]), atol=1e-6)


def test_import_derives_and_leaves_the_source_alone(tiny_model_dir: Path, tmp_path: Path) -> None:
    src = _b1_copy(tiny_model_dir, tmp_path / "src-b1")
    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", model_name="b1", threads=1)
    dest = import_model(settings, src, name="b1")
    assert not (src / ".derived").exists(), "import writes nothing into the folder it copies from"
    assert derive.read_state(dest, "textual").graph == "derived"
    info = model_info(settings, "b1")
    assert info["text_length"] == "dynamic" and "derived" in info["text_graph"] and info["checksums"] == "ok"


def test_variable_length_export_is_used_as_is(tiny_model_dir: Path) -> None:
    model = ClipModel(tiny_model_dir, threads=1)
    model.encode_text("a dog")
    assert "textual" not in model.graphs and model.textual.active_path == tiny_model_dir / "textual" / "model.onnx"
    assert not (tiny_model_dir / ".derived").exists()


@pytest.mark.parametrize("threshold", [0.99999])
def test_mclip_tower_is_checked_like_any_other(tiny_model_dir: Path, tmp_path: Path, threshold: float) -> None:
    """A fixed-length M-CLIP tower (attention mask) is derived or kept, never run unchecked."""
    d = tmp_path / "mclip"
    shutil.copytree(tiny_model_dir, d)
    shutil.rmtree(d / "textual")
    shutil.copytree(FIXTURES / "tiny-mclip-textual", d / "textual")
    model = ClipModel(d, threads=1)
    texts = json.loads((FIXTURES / "goldens" / "mclip_texts.json").read_text())
    ref = np.load(FIXTURES / "goldens" / "mclip_embeddings.npy")
    emb = model.encode_texts(texts)
    assert np.all(np.sum(emb * ref, axis=1) >= 0.9999)
    state = derive.read_state(d, "textual")
    assert state is not None and (state.graph == "original" or state.min_cosine >= threshold)


def test_batch_one_image_tower_runs_verified_variable_batch_graph(
    tiny_model_dir: Path, tmp_path: Path, photos_dir: Path, golden_images
) -> None:
    d = _b1_copy(tiny_model_dir, tmp_path / "b1")
    before = _sha(d / "visual" / "model.onnx")
    model = ClipModel(d, threads=2)
    names, ref, _ = golden_images
    pre = model.preprocessor
    pixels = np.stack([pre(pre.load_image(photos_dir / n)) for n in names])
    emb = model.encode_pixels(pixels)
    assert model.visual.active_path == d / ".derived" / "visual.onnx" and model.visual.fixed_batch is None
    assert model.graphs["visual"].graph == "derived" and model.graphs["visual"].min_cosine >= 0.99999
    assert _sha(d / "visual" / "model.onnx") == before
    # the original file, one photo at a time, is the reference; and the torch goldens
    sess = create_session(d / "visual" / "model.onnx", SessionConfig(threads=1))
    orig = np.concatenate([sess.run(None, {"image": pixels[i : i + 1]})[0] for i in range(len(pixels))])
    orig /= np.linalg.norm(orig, axis=1, keepdims=True)
    assert np.min(np.sum(emb * orig, axis=1)) >= 0.99999
    assert np.min(np.sum(emb * ref, axis=1)) >= 0.9999
    assert model.info()["visual_batch"] == "dynamic"


def test_optimised_image_export_also_derives(tiny_model_dir: Path, tmp_path: Path, photos_dir: Path) -> None:
    d = _b1_copy(tiny_model_dir, tmp_path / "b1")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.optimized_model_filepath = str(d / "visual" / "model.onnx")
    ort.InferenceSession(
        str(FIXTURES / "tiny-clip-b1" / "visual" / "model.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    model = ClipModel(d, threads=1)
    paths = sorted((photos_dir / "albums" / "nature").glob("*.jpg"))[:5]
    emb = model.encode_images(paths)
    assert model.graphs["visual"].graph == "derived"
    reference = ClipModel(d, threads=1, derive_graphs=False).encode_images(paths)
    assert np.min(np.sum(emb * reference, axis=1)) >= 0.99999


def test_int8_copy_is_opt_in_and_measured(tiny_model_dir: Path, tmp_path: Path) -> None:
    from photosearch.models.quantize import quantize_model

    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", model_name="b1", threads=1)
    src = import_model(settings, _b1_copy(tiny_model_dir, tmp_path / "src-b1"), name="b1")
    before = {t: _sha(src / t / "model.onnx") for t in ("visual", "textual")}
    dest, agree = quantize_model(settings, "b1")
    assert dest.name == "b1-int8" and model_info(settings)["name"] == "b1", "the active model is unchanged"
    assert {t: _sha(src / t / "model.onnx") for t in ("visual", "textual")} == before
    assert set(agree) == {"text_cosine_min", "text_cosine_mean", "image_cosine_min", "image_cosine_mean"}
    assert all(-1.0 <= v <= 1.0 + 1e-6 for v in agree.values())
    info = model_info(settings, "b1-int8")
    assert info["int8_agreement"] == agree and info["checksums"] == "ok"
    # the copy quantized the derived variable-shape graphs: it runs any batch and length as is
    assert info["visual_batch"] == "dynamic" and info["text_length"] == "dynamic"
    emb = ClipModel(dest, threads=1).encode_texts(["a dog", "a cat on a red sofa"])
    assert emb.shape == (2, 32) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
