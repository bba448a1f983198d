"""Provider choice: accelerators when the installed onnxruntime offers them, a clean fall-back otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from photosearch.models import ModelError
from photosearch.models.runtime import SessionConfig, create_session, provider_candidates


def test_candidates_end_with_the_cpu(monkeypatch) -> None:
    monkeypatch.delenv("PHOTOSEARCH_ONNX_PROVIDER", raising=False)
    assert provider_candidates()[-1] == "CPUExecutionProvider"


def test_pinned_provider(monkeypatch) -> None:
    monkeypatch.setenv("PHOTOSEARCH_ONNX_PROVIDER", "cpu")
    assert provider_candidates() == ["CPUExecutionProvider"]
    monkeypatch.setenv("PHOTOSEARCH_ONNX_PROVIDER", "tpu")
    with pytest.raises(ModelError, match="PHOTOSEARCH_ONNX_PROVIDER=tpu"):
        provider_candidates()


def test_unusable_provider_falls_back_to_the_cpu(tiny_model_dir: Path) -> None:
    """A provider this onnxruntime lacks (or that fails to start) is skipped and named."""
    path = tiny_model_dir / "textual" / "model.onnx"
    made = create_session(path, SessionConfig(threads=1), ["NoSuchExecutionProvider", "CPUExecutionProvider"])
    assert made.provider == "CPUExecutionProvider" and "NoSuchExecutionProvider" in made.skipped
    assert made.get_inputs()[0].name == "text"


def test_corrupt_file_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="corrupt or not an ONNX model"):
        create_session(bad, SessionConfig(), ["CPUExecutionProvider"])
