"""Attention fusion for text towers: each multi-head attention block becomes one ONNX Runtime
`Attention` node (com.microsoft domain).

A short query's time in a CLIP text tower is reading the weights (~150 MB for ViT-B/32) plus the
~40 small nodes per attention block that PyTorch's exporter emits around the packed in-projection
(reshapes, transposes, gathers, the causal mask, the scaling), each a kernel launch and, with two
threads, a thread wake-up. `fused_attention_model` replaces every block whose structure it
recognises; derive.py uses the result only when it reproduces the original model like any
derived graph, and falls back to the unfused one otherwise.

Recognised (PyTorch `nn.MultiheadAttention` as open_clip exports it, the immich layout):
  x -> MatMul(W [D, 3D]) -> Add(b [3D]) -> ...split into q, k, v and heads...
    q, k -> MatMul -> [Add(causal mask)] -> Softmax -> MatMul(., v) -> Transpose -> Reshape ...
with the sequence axis first (perm [2, 0, 1, 3]) or the batch axis first (perm [0, 2, 1, 3]).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from photosearch.models.rewrite import DeriveError, _constants, _toposort

if TYPE_CHECKING:
    import onnx

_PASS_THROUGH = {"Reshape", "Transpose", "Gather", "Squeeze", "Unsqueeze", "Mul", "Div", "Slice", "Split", "Cast"}
_LAYOUTS = {(2, 0, 1, 3): "seq_first", (0, 2, 1, 3): "batch_first"}


def _perm(node: onnx.NodeProto) -> tuple[int, ...]:
    return tuple(next((a.ints for a in node.attribute if a.name == "perm"), ()))


def softmax_shapes(model: onnx.ModelProto, tokens: int = 4) -> dict[str, list[int]]:
    """The shape of every Softmax output, from one run of the graph on a short input."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.ModelProto.FromString(model.SerializeToString())
    names = [n.output[0] for n in probe.graph.node if n.op_type == "Softmax"]
    if not names:
        return {}
    for name in names:
        probe.graph.output.append(helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = {}
    for inp in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else (1 if k == 0 else tokens) for k, d in enumerate(inp.shape)]
        dtype = np.int32 if "int32" in inp.type else np.float32 if "float" in inp.type else np.int64
        feeds[inp.name] = np.ones(shape, dtype)
    return {n: list(v.shape) for n, v in zip(names, sess.run(names, feeds), strict=True)}


def _is_causal(mask: np.ndarray) -> bool:
    """An additive [.., L, L] mask that hides every later position and nothing else."""
    while mask.ndim > 2 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.ndim != 2 or mask.shape[0] != mask.shape[1] or mask.dtype.kind != "f":
        return False
    upper = np.triu(np.ones(mask.shape, bool), 1)
    return bool(np.all(mask[upper] <= -1e4) and np.all(mask[~upper] == 0))


def fused_attention_model(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of `model` with every recognised attention block fused; (model, blocks fused).
    DeriveError when there is nothing to fuse."""
    import onnx
    from onnx import helper

    shapes = softmax_shapes(model)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    consts = _constants(g)
    producer = {o: n for n in g.node for o in n.output}
    users: dict[str, list] = {}
    for n in g.node:
        for x in n.input:
            users.setdefault(x, []).append(n)

    sizes = set(consts)  # values computed from constants and tensor shapes only (scales, reshape targets)
    for n in g.node:
        if n.op_type == "Shape" or all(x in sizes for x in n.input if x):
            sizes.update(n.output)

    def sole_user(name: str, op: str):
        found = users.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op else None

    def constant_source(name: str, through: tuple[str, ...] = ("Identity",)) -> np.ndarray | None:
        """The constant a value is (through Identity nodes; for a mask also the Slice derive.py adds)."""
        while name not in consts:
            node = producer.get(name)
            if node is None or node.op_type not in through:
                return None
            name = node.input[0]
        return consts[name]

    def packed_projection(starts: list[str]):
        """The single MatMul with a [D, 3D] weight that q, k and v all come from, and its bias Add."""
        found, seen, stack = set(), set(), list(starts)
        while stack:
            name = stack.pop()
            node = producer.get(name)
            if node is None or name in seen:
                continue
            seen.add(name)
            if node.op_type == "Add" and any(producer.get(x) is not None and producer[x].op_type == "MatMul"
                                             and constant_source(producer[x].input[1]) is not None
                                             for x in node.input):  # fmt: skip
                found.add(node.output[0])
                add = node
                continue
            if node.op_type not in _PASS_THROUGH:
                return None
            stack.extend(x for x in node.input if x not in sizes)
        if len(found) != 1:
            return None
        matmul = next(producer[x] for x in add.input if x in producer and producer[x].op_type == "MatMul")
        bias = next(x for x in add.input if x != matmul.output[0])
        w, b = constant_source(matmul.input[1]), constant_source(bias)
        if w is None or b is None or w.ndim != 2 or w.shape[1] != 3 * w.shape[0] or b.shape != (w.shape[1],):
            return None
        return matmul, bias

    new_nodes, fused = [], 0
    for softmax in [n for n in g.node if n.op_type == "Softmax"]:
        shape = shapes.get(softmax.output[0], [])
        axis = next((a.i for a in softmax.attribute if a.name == "axis"), -1)
        if axis not in (-1, len(shape) - 1):
            continue
        attn_v = sole_user(softmax.output[0], "MatMul")
        if len(shape) != 4 or attn_v is None or attn_v.input[0] != softmax.output[0]:
            continue
        merge = sole_user(attn_v.output[0], "Transpose")
        layout = _LAYOUTS.get(_perm(merge)) if merge is not None else None
        if layout is None or not all(u.op_type == "Reshape" for u in users.get(merge.output[0], [])):
            continue
        scores = producer.get(softmax.input[0])
        causal = 0
        if scores is not None and scores.op_type == "Add":
            mm = [producer[x] for x in scores.input if x in producer and producer[x].op_type == "MatMul"]
            others = [x for x in scores.input if x not in producer or producer[x] not in mm]
            mask = [constant_source(x, ("Slice", "Identity")) for x in others]
            if len(mm) != 1 or len(mask) != 1 or mask[0] is None or not _is_causal(mask[0]):
                continue
            scores, causal = mm[0], 1
        if scores is None or scores.op_type != "MatMul":
            continue
        found = packed_projection([scores.input[0], scores.input[1], attn_v.input[1]])
        if found is None:
            continue
        matmul, bias = found
        x = matmul.input[0]
        if layout == "seq_first":  # Attention takes [batch, sequence, hidden]
            before = producer.get(x)
            if before is not None and before.op_type == "Transpose" and _perm(before) == (1, 0, 2):
                x = before.input[0]
            else:
                x = f"fa_in_{fused}"
                new_nodes.append(helper.make_node("Transpose", [matmul.input[0]], [x], perm=[1, 0, 2]))
        out = merge.output[0]
        merge.output[0] = f"fa_unused_{fused}"
        attn_out = f"fa_out_{fused}" if layout == "seq_first" else out
        new_nodes.append(
            helper.make_node("Attention", [x, matmul.input[1], bias], [attn_out], name=f"fused_attention_{fused}",
                             domain="com.microsoft", num_heads=int(shape[1]), unidirectional=causal)
        )  # fmt: skip
        if layout == "seq_first":
            new_nodes.append(helper.make_node("Transpose", [attn_out], [out], perm=[1, 0, 2]))
        fused += 1
    if not fused:
        raise DeriveError("no attention block to fuse")
    _replace_nodes(g, _toposort([*g.node, *new_nodes]))
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model, fused


def _replace_nodes(g: onnx.GraphProto, ordered: list) -> None:
    """Keep the nodes (in topological order) that an output depends on, and the initializers they read."""
    needed = {o.name for o in g.output}
    keep = []
    for node in reversed(ordered):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    del g.node[:]
    g.node.extend(reversed(keep))
    live = [i for i in g.initializer if i.name in needed]
    del g.initializer[:]
    g.initializer.extend(live)
