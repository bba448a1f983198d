"""`photosearch models ...` through the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from photosearch.config import Settings
from photosearch.db.embedding import get_embedding_model
from photosearch.models import ModelError
from photosearch.models.registry import import_model, model_info


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PHOTOSEARCH_", "HF_"))}
    e.update(
        PHOTOSEARCH_DATA_DIR=str(tmp_path / "data"),
        PHOTOSEARCH_MODELS_DIR=str(tmp_path / "models"),
        PHOTOSEARCH_MODEL_NAME="tiny-clip",
        PHOTOSEARCH_CONFIG=str(tmp_path / "config.toml"),
        PHOTOSEARCH_THREADS="1",
        HF_HOME=str(tmp_path / "hf"),
    )
    return e


def run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(
        [sys.executable, "-m", "photosearch", *args], env=env, capture_output=True, text=True, timeout=120
    )
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def test_import_list_info(env, tiny_model_dir: Path, tiny_clip_b1_dir: Path, tmp_path: Path) -> None:
    run(env, "models", "import", str(tiny_model_dir))
    installed = tmp_path / "models" / "tiny-clip"
    manifest = json.loads((installed / ".photosearch.json").read_text())
    assert manifest["source"] == "import"
    assert set(manifest["sha256"]) >= {"config.json", "visual/model.onnx", "textual/tokenizer.json"}
    assert all(len(h) == 64 for h in manifest["sha256"].values())

    rows = json.loads(run(env, "--json", "models", "list").stdout)
    assert [(r["name"], r["active"], r["embed_dim"], r["status"]) for r in rows] == [("tiny-clip", True, 32, "ok")]
    info = json.loads(run(env, "--json", "models", "info").stdout)
    assert info["embed_dim"] == 32 and info["context_length"] == 77 and info["image_size"] == 224
    assert info["visual_batch"] == "dynamic" and info["text_length"] == "dynamic"
    assert info["checksums"] == "ok"

    # the rest through the same registry functions the CLI calls (subprocesses are slow)
    settings = Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", model_name="tiny-clip", threads=1)
    import_model(settings, tiny_clip_b1_dir, name="tiny-b1")
    info = model_info(settings, "tiny-b1")
    assert info["textual_batch"] == 1
    # immich's batch 1 and fixed 77 tokens: verified variable graphs are derived at import and run instead
    assert info["text_length"] == "dynamic" and info["text_graph"].startswith("variable-length graph derived")
    assert info["visual_batch"] == "dynamic" and info["image_graph"].startswith("variable-batch graph derived")
    with pytest.raises(ModelError, match="already installed"):
        import_model(settings, tiny_model_dir)
    import_model(settings, tiny_model_dir, force=True)
    cfg = installed / "visual" / "preprocess_cfg.json"
    cfg.write_text(cfg.read_text() + " ")
    info = model_info(settings)
    assert "MISMATCH" in info["checksums"] and "visual/preprocess_cfg.json" in info["checksums"]


def test_import_incomplete_folder_names_missing_files(env, tiny_model_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "half-model"
    shutil.copytree(tiny_model_dir, src)
    (src / "textual" / "model.onnx").unlink()
    p = run(env, "models", "import", str(src), ok=False)
    assert p.returncode == 1 and "textual/model.onnx" in p.stderr and "Traceback" not in p.stderr
    models = tmp_path / "models"
    assert not models.exists() or not list(models.iterdir()), "nothing installed, no staging leftovers"


@pytest.mark.parametrize("offline", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}])
def test_download_offline_is_one_clear_line(env, offline: dict[str, str], tmp_path: Path) -> None:
    p = run({**env, **offline}, "models", "download", "ViT-B-32__openai", ok=False)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert "ViT-B-32__openai" in p.stderr and "photosearch models import" in p.stderr
    models = tmp_path / "models"
    assert not models.exists() or not list(models.iterdir()), "nothing half-downloaded is left"


def test_export_without_torch_explains_the_extra(env, tmp_path: Path) -> None:
    p = run(env, "models", "export", "ViT-B-32__openai", "--out", str(tmp_path / "x"), ok=False)
    assert p.returncode == 1 and "photosearch[export]" in p.stderr and "Traceback" not in p.stderr


def test_use_sets_database_dimension_and_settings(cli_env, db, tiny_model_dir: Path, settings) -> None:
    p = run(cli_env, "--json", "models", "use", "tiny-clip")
    out = json.loads(p.stdout)
    assert out["model"] == "tiny-clip" and out["embed_dim"] == 32
    with db.connection() as conn:
        assert get_embedding_model(conn) == ("tiny-clip", 32)
    cfg = Path(cli_env["PHOTOSEARCH_CONFIG"]).read_text()
    assert 'model_name = "tiny-clip"' in cfg
    missing = run(cli_env, "models", "use", "nope", ok=False)
    assert missing.returncode == 1 and "nope" in missing.stderr and "models import" in missing.stderr
