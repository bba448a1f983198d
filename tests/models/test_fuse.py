"""Attention fusion of derived text graphs, against the original model file (immich layout, 77 tokens)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from photosearch.models import ClipModel, derive
from photosearch.models.fuse import fused_attention_model
from photosearch.models.probes import PROBE_TEXTS
from photosearch.models.rewrite import DeriveError
from photosearch.models.runtime import SessionConfig, create_session

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _b1_copy(tiny_model_dir: Path, dest: Path) -> Path:
    shutil.copytree(tiny_model_dir, dest)
    for tower in ("visual", "textual"):
        shutil.copyfile(FIXTURES / "tiny-clip-b1" / tower / "model.onnx", dest / tower / "model.onnx")
    return dest


def _original(model_dir: Path, model: ClipModel, texts: list[str]) -> np.ndarray:
    sess = create_session(model_dir / "textual" / "model.onnx", SessionConfig(threads=1))
    ids = model.tokenizer(texts)
    out = np.concatenate([sess.run(None, {"text": ids[i : i + 1]})[0] for i in range(len(ids))])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _attention_nodes(path: Path) -> list[onnx.NodeProto]:
    return [n for n in onnx.load(str(path)).graph.node if n.op_type == "Attention" and n.domain == "com.microsoft"]


def test_text_attention_is_fused_and_reproduces_the_original(tiny_model_dir: Path, tmp_path: Path) -> None:
    d = _b1_copy(tiny_model_dir, tmp_path / "b1")
    model = ClipModel(d, threads=1)
    texts = list(PROBE_TEXTS)
    emb = model.encode_texts(texts)
    layers = json.loads((d / "config.json").read_text())["text_cfg"]["layers"]
    state = model.graphs["textual"]
    assert state.graph == "derived" and state.fused == layers
    nodes = _attention_nodes(d / ".derived" / "textual.onnx")
    assert len(nodes) == layers
    causal = [next(a.i for a in n.attribute if a.name == "unidirectional") for n in nodes]
    assert causal == [1] * layers
    assert np.min(np.sum(emb * _original(d, model, texts), axis=1)) >= 0.99999
    assert f"{layers} attention blocks fused" in model.info()["text_graph"]


def test_a_fusion_that_differs_falls_back_to_the_plain_derived_graph(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    def wrong(model):  # attention that sees later tokens: not what the model computes
        fused, n = fused_attention_model(model)
        for node in fused.graph.node:
            for a in node.attribute:
                if a.name == "unidirectional":
                    a.i = 0
        return fused, n

    monkeypatch.setattr(derive, "fused_attention_model", wrong)
    d = _b1_copy(tiny_model_dir, tmp_path / "b1")
    model = ClipModel(d, threads=1)
    texts = ["a dog", "two cats on a red sofa", "東京の夜景"]
    emb = model.encode_texts(texts)
    state = model.graphs["textual"]
    assert state.graph == "derived" and state.fused == 0 and state.min_cosine >= 0.99999
    assert not _attention_nodes(d / ".derived" / "textual.onnx")
    assert not isinstance(model.textual.input_shape()[1], int)
    assert np.min(np.sum(emb * _original(d, model, texts), axis=1)) >= 0.99999


def test_no_fusion_when_openvino_runs_the_graph(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(derive, "provider_candidates", lambda: ["OpenVINOExecutionProvider", "CPUExecutionProvider"])
    d = _b1_copy(tiny_model_dir, tmp_path / "b1")
    state = derive.derive_text(d, ClipModel(d, threads=1, derive_graphs=False).tokenizer)
    assert state.graph == "derived" and state.fused == 0


def test_a_graph_without_attention_has_nothing_to_fuse() -> None:
    w = numpy_helper.from_array(np.ones((4, 12), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Softmax", ["y"], ["z"], axis=-1)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n", 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [w],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(DeriveError, match="nothing|no attention"):
        fused_attention_model(model)
