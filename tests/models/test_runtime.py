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


def test_text_sessions_spin_only_briefly(tiny_model_dir: Path) -> None:
    """A text query's threads spin between ops, bounded per wait (ONNX Runtime's unbounded spin keeps both
    cores busy long after the call); image sessions keep ONNX Runtime's own setting."""
    from photosearch.models import ClipModel
    from photosearch.models.clip import TEXT_SPIN_US

    model = ClipModel(tiny_model_dir, threads=2)
    text = SessionConfig(threads=2, **model.textual.session_config).options()
    assert text.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert text.get_session_config_entry("session.intra_op.spin_duration_us") == str(TEXT_SPIN_US)
    assert 0 < TEXT_SPIN_US <= 100
    asleep = SessionConfig(threads=2, spin=False, spin_us=TEXT_SPIN_US).options()
    assert asleep.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(RuntimeError, match="does not have"):  # no bound: nothing spins
        asleep.get_session_config_entry("session.intra_op.spin_duration_us")
    assert model.encode_texts(["a dog"]).shape == (1, model.embed_dim)  # the session starts with these options


def test_an_onnxruntime_without_the_spin_bound_sleeps_instead(monkeypatch) -> None:
    """Before ONNX Runtime 1.27 the bound is ignored and the pool would spin on after each call: no spinning."""
    import onnxruntime as ort

    from photosearch.models.runtime import bounded_spin_supported

    assert bounded_spin_supported("1.27.0") and bounded_spin_supported("2.0.1") and not bounded_spin_supported("1.26.2")
    assert not bounded_spin_supported("dev")
    monkeypatch.setattr(ort, "__version__", "1.20.1")
    opts = SessionConfig(threads=2, spin=True, spin_us=25).options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    unbounded = SessionConfig(threads=2, spin=True).options()  # image sessions: ONNX Runtime's own spinning
    assert unbounded.get_session_config_entry("session.intra_op.allow_spinning") == "1"
