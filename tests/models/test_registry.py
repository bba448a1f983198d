"""The download flow (staging, validation, checksums, atomic install) with a local stand-in for the hub.

The network call is the one thing replaced: `huggingface_hub.snapshot_download` copies from a
folder instead of fetching (offline behaviour of the real call is tested in test_cli_models).
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from pathlib import Path

import huggingface_hub
import pytest

from photosearch.config import Settings
from photosearch.models import ModelError, load_clip
from photosearch.models.registry import download_model, list_models, sha256_file


def fake_hub(src: Path, calls: list[dict], drop: str | None = None):
    def snapshot_download(repo_id, revision=None, local_dir=None, allow_patterns=None, **kw):
        calls.append({"repo_id": repo_id, "revision": revision, "allow_patterns": allow_patterns})
        for f in src.rglob("*"):
            rel = f.relative_to(src).as_posix()
            if f.is_file() and rel != drop and any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                (Path(local_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, Path(local_dir) / rel)
        return str(local_dir)

    return snapshot_download


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", models_dir=tmp_path / "models", model_name="ViT-B-32__openai", threads=1
    )


def test_download_installs_with_checksums(settings, tiny_model_dir: Path, monkeypatch, tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    shutil.copytree(tiny_model_dir, hub)
    (hub / "visual" / "rknpu").mkdir()
    (hub / "visual" / "rknpu" / "model.rknn").write_bytes(b"npu-only weights")  # not ours to fetch
    calls: list[dict] = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_hub(hub, calls))

    path = download_model(settings, "ViT-B-32__openai", progress=False)
    assert path == settings.model_cache_dir / "ViT-B-32__openai"
    assert calls[0]["repo_id"] == "immich-app/ViT-B-32__openai"
    assert not (path / "visual" / "rknpu").exists()
    manifest = json.loads((path / ".photosearch.json").read_text())
    assert manifest["source"] == "huggingface" and manifest["repo"] == "immich-app/ViT-B-32__openai"
    assert manifest["sha256"]["visual/model.onnx"] == sha256_file(tiny_model_dir / "visual" / "model.onnx")
    assert [p.name for p in settings.model_cache_dir.iterdir()] == ["ViT-B-32__openai"]  # no staging left

    model = load_clip(settings)
    assert model.embed_dim == 32 and model.encode_text("a dog").shape == (32,)
    assert list_models(settings)[0]["status"] == "ok"

    download_model(settings, "ViT-B-32__openai", progress=False)  # installed: no second fetch
    assert len(calls) == 1


def test_incomplete_download_installs_nothing(settings, tiny_model_dir: Path, monkeypatch) -> None:
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_hub(tiny_model_dir, [], drop="textual/model.onnx"))
    with pytest.raises(ModelError, match=r"missing textual/model\.onnx"):
        download_model(settings, "ViT-B-32__openai", progress=False)
    assert not list(settings.model_cache_dir.iterdir())


def test_invalid_model_names_are_rejected(settings) -> None:
    for bad in ("../etc", ".hidden", "a/b"):
        with pytest.raises(ModelError, match="invalid model name"):
            download_model(settings, bad, progress=False)
