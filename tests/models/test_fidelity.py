"""Our numpy preprocessing + ONNX towers vs the torch reference (open_clip) goldens.

Goldens come from scripts/make_goldens.py (torch, open_clip); nothing here needs torch.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from photosearch.models import ClipModel

MIN_COSINE = 0.9999


def block_means(x: np.ndarray, blocks: int = 8) -> np.ndarray:
    """Mean of a [3, S, S] tensor over blocks x blocks tiles (how the goldens summarise pixels)."""
    s = x.shape[-1] // blocks
    return x.reshape(3, blocks, s, blocks, s).mean(axis=(2, 4))


def test_goldens_cover_every_format(golden_images, golden_texts) -> None:
    names, _, _ = golden_images
    suffixes = {Path(n).suffix.lower() for n in names}
    assert {".jpg", ".jpeg", ".png", ".webp", ".heic", ".avif", ".jxl"} <= suffixes
    assert "metadata/faces/portrait-orientation-6.jpg" in names
    texts, ids, _ = golden_texts
    assert len(texts) >= 30
    assert "" in texts
    assert (ids[:, -1] != 0).any(), "at least one string must overflow the context length"


def test_every_photo_matches_reference(tiny_clip: ClipModel, photos_dir: Path, golden_images) -> None:
    names, ref, ref_blocks = golden_images
    pre = tiny_clip.preprocessor
    pixels = np.stack([pre(pre.load_image(photos_dir / n)) for n in names])
    # the preprocessing itself: per-block means of the normalised tensor equal the reference's
    for name, x, b in zip(names, pixels, ref_blocks, strict=True):
        np.testing.assert_allclose(block_means(x), b, atol=1e-4, err_msg=name)
    emb = tiny_clip.encode_pixels(pixels)
    cos = np.sum(emb * ref, axis=1)
    bad = {n: float(c) for n, c in zip(names, cos, strict=True) if c < MIN_COSINE}
    assert not bad, f"cosine below {MIN_COSINE}: {bad}"


def test_batch_one_model_matches_reference(tiny_clip_b1: ClipModel, photos_dir: Path, golden_images) -> None:
    """immich's exports have a fixed batch of 1: the derived variable-batch graph runs, results identical."""
    names, ref, _ = golden_images
    assert tiny_clip_b1.visual.fixed_batch is None and tiny_clip_b1.graphs["visual"].graph == "derived"
    sample = [0, 9, 12, 21, 22]
    emb = tiny_clip_b1.encode_images([photos_dir / names[i] for i in sample])
    assert emb.shape == (len(sample), tiny_clip_b1.embed_dim)
    assert np.all(np.sum(emb * ref[sample], axis=1) >= MIN_COSINE)


def test_token_ids_identical_to_reference(tiny_clip: ClipModel, golden_texts) -> None:
    texts, ref_ids, _ = golden_texts
    ids = tiny_clip.tokenizer(texts)
    for text, ours, ref in zip(texts, ids, ref_ids, strict=True):
        assert ours.tolist() == ref.tolist(), f"token ids differ for {text!r}"


@pytest.mark.parametrize("model_fixture", ["tiny_clip", "tiny_clip_b1"])
def test_every_text_matches_reference(model_fixture: str, golden_texts, request) -> None:
    model: ClipModel = request.getfixturevalue(model_fixture)
    texts, _, ref = golden_texts
    emb = model.encode_texts(texts)
    cos = np.sum(emb * ref, axis=1)
    bad = {t: float(c) for t, c in zip(texts, cos, strict=True) if c < MIN_COSINE}
    assert not bad, f"cosine below {MIN_COSINE}: {bad}"


def test_mclip_style_text_tower(tiny_model_dir: Path, tmp_path: Path) -> None:
    """immich's multilingual (M-CLIP) exports: `input_ids` + `attention_mask`, case-sensitive HF
    tokenizer padded with its pad token, batch 1. Ids and embeddings match transformers + torch."""
    fixtures = tiny_model_dir.parent
    d = tmp_path / "tiny-mclip"
    shutil.copytree(tiny_model_dir, d)
    shutil.rmtree(d / "textual")
    shutil.copytree(fixtures / "tiny-mclip-textual", d / "textual")
    model = ClipModel(d, threads=2)
    texts = json.loads((fixtures / "goldens" / "mclip_texts.json").read_text())
    ref_ids = np.load(fixtures / "goldens" / "mclip_ids.npy")
    ref = np.load(fixtures / "goldens" / "mclip_embeddings.npy")
    assert not model.tokenizer.clean == "lower" and model.tokenizer.pad_id != 0
    ids = model.tokenizer(texts)
    for text, ours, theirs in zip(texts, ids, ref_ids, strict=True):
        assert ours.tolist() == theirs.tolist(), f"token ids differ for {text!r}"
    emb = model.encode_texts(texts)
    assert model.textual.fixed_batch == 1 and model.textual.extra_inputs == ["attention_mask"]
    assert np.all(np.sum(emb * ref, axis=1) >= MIN_COSINE)
