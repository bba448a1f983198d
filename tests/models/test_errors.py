"""Missing, corrupt or unreachable models end in one clear ModelError naming the model or file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from photosearch.config import Settings
from photosearch.models import ClipModel, ModelError, load_clip
from photosearch.models.preprocess import ImageDecodeError


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    d = tmp_path / "models" / "copy-clip"
    shutil.copytree(tiny_model_dir, d)
    return d


def test_not_installed_names_model_and_import(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, models_dir=tmp_path / "models", model_name="ViT-B-32__openai")
    with pytest.raises(ModelError) as err:
        load_clip(settings)
    msg = str(err.value)
    assert "ViT-B-32__openai" in msg and "photosearch models import" in msg and "models download" in msg


@pytest.mark.parametrize(
    "rel", ["config.json", "visual/model.onnx", "visual/preprocess_cfg.json", "textual/tokenizer.json"]
)
def test_missing_file_is_named(model_copy: Path, rel: str) -> None:
    (model_copy / rel).unlink()
    with pytest.raises(ModelError, match=rel.replace(".", r"\.")):
        ClipModel(model_copy)


@pytest.mark.parametrize("rel", ["config.json", "visual/preprocess_cfg.json", "textual/tokenizer_config.json"])
def test_corrupt_json_is_named(model_copy: Path, rel: str) -> None:
    (model_copy / rel).write_text("{ not json")
    with pytest.raises(ModelError, match=f"{rel.replace('.', r'.')} is corrupt"):
        ClipModel(model_copy)


def test_corrupt_onnx_is_named_on_first_use(model_copy: Path) -> None:
    (model_copy / "visual" / "model.onnx").write_bytes(b"\x00garbage" * 100)
    model = ClipModel(model_copy)  # lazy: nothing loaded yet, text still works
    assert model.encode_text("a dog").shape == (32,)
    with pytest.raises(ModelError, match=r"visual/model\.onnx is corrupt"):
        model.encode_pixels(np.zeros((1, 3, 224, 224), np.float32))


def test_corrupt_tokenizer_is_named(model_copy: Path) -> None:
    (model_copy / "textual" / "tokenizer.json").write_text('{"version": "1.0"}')
    model = ClipModel(model_copy)
    with pytest.raises(ModelError, match=r"textual/tokenizer\.json is corrupt"):
        model.encode_text("a dog")


def test_wrong_pixel_shape_is_rejected(tiny_clip: ClipModel) -> None:
    with pytest.raises(ModelError, match="expected pixels of shape"):
        tiny_clip.encode_pixels(np.zeros((1, 3, 100, 100), np.float32))


def test_undecodable_image_is_named(tiny_clip: ClipModel, tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        tiny_clip.encode_images([bad])
    with pytest.raises(ImageDecodeError):
        tiny_clip.preprocessor.load_image(b"")


def test_truncated_photo_is_a_decode_error(tiny_clip: ClipModel, photos_dir: Path) -> None:
    data = (photos_dir / "albums/nature/prairie_falcon.jpg").read_bytes()
    with pytest.raises(ImageDecodeError, match="truncated"):
        tiny_clip.preprocessor.load_image(data[: len(data) // 2])
