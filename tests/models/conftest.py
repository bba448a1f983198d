"""Model-engine fixtures: the tiny CLIP (dynamic batch) and its immich-style batch-1 twin."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from photosearch.models import ClipModel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOLDENS = FIXTURES / "goldens"


@pytest.fixture(scope="session")
def tiny_clip(tiny_model_dir: Path) -> ClipModel:
    return ClipModel(tiny_model_dir, threads=2)


@pytest.fixture(scope="session")
def tiny_clip_b1_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with immich's fixed batch-1 / 77-token towers (same weights)."""
    d = tmp_path_factory.mktemp("models") / "tiny-clip-b1"
    shutil.copytree(tiny_model_dir, d)
    for tower in ("visual", "textual"):
        shutil.copyfile(FIXTURES / "tiny-clip-b1" / tower / "model.onnx", d / tower / "model.onnx")
    return d


@pytest.fixture(scope="session")
def tiny_clip_b1(tiny_clip_b1_dir: Path) -> ClipModel:
    return ClipModel(tiny_clip_b1_dir, threads=2)


@pytest.fixture(scope="session")
def golden_images() -> tuple[list[str], np.ndarray, np.ndarray]:
    names = json.loads((GOLDENS / "images.json").read_text())
    return names, np.load(GOLDENS / "image_embeddings.npy"), np.load(GOLDENS / "image_blocks.npy")


@pytest.fixture(scope="session")
def golden_texts() -> tuple[list[str], np.ndarray, np.ndarray]:
    texts = json.loads((GOLDENS / "texts.json").read_text())
    return texts, np.load(GOLDENS / "text_ids.npy"), np.load(GOLDENS / "text_embeddings.npy")
