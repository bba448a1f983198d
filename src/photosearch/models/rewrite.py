"""ONNX graph rewrites that lift the fixed shapes immich's exports bake in (see derive.py for when
they are used: only after the result reproduces the original model).

`dynamic_text_model`: the token axis of a text tower becomes variable. Every constant shape holding
the context length takes the input's length instead, and constants with a token axis (position
embedding, causal mask) are sliced to it.
`dynamic_batch_model`: the batch axis of a batch-1 tower becomes variable. The batch axis is
followed through the graph (static shapes from ONNX shape inference); a Reshape whose target was
fixed for batch 1 gets the batch folded into the axis that carries it, a Concat of a batch-less
constant (the class token) with batched data gets that constant expanded to the batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Where", "Max", "Min", "Pow", "Equal", "Less", "Greater", "And", "Or"}
_SHAPE_INPUTS = {("Reshape", 1), ("Expand", 1), ("ConstantOfShape", 0), ("Slice", 2)}


class DeriveError(Exception):
    """The graph has a shape the rewrite does not understand (the original is used)."""


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    out = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            out[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return out


def _toposort(nodes: list) -> list:
    """Kahn's order over node inputs/outputs (inserted nodes may consume Constant nodes placed later)."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    deps = [{producer[x] for x in n.input if x in producer} for n in nodes]
    users: dict[int, list[int]] = {}
    for i, d in enumerate(deps):
        for j in d:
            users.setdefault(j, []).append(i)
    pending = [len(d) for d in deps]
    ready = [i for i, p in enumerate(pending) if p == 0]
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for u in users.get(i, []):
            pending[u] -= 1
            if pending[u] == 0:
                ready.append(u)
    if len(order) != len(nodes):
        raise DeriveError("the graph has a cycle")
    return [nodes[i] for i in order]


def dynamic_text_model(model: onnx.ModelProto, length: int) -> onnx.ModelProto:
    """A copy of a fixed-length text tower whose token axis is variable (see the module docstring)."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    init_names = {i.name for i in g.initializer}
    token_inputs = []
    for inp in g.input:
        dims = inp.type.tensor_type.shape.dim
        if inp.name not in init_names and len(dims) == 2 and dims[1].dim_value == length:
            dims[1].Clear()
            dims[1].dim_param = "tokens"
            token_inputs.append(inp.name)
    if not token_inputs:
        raise DeriveError(f"no input with a {length}-token axis")
    del g.value_info[:]  # shapes recorded for the fixed length; ORT infers them again
    for out in g.output:
        for d in out.type.tensor_type.shape.dim:
            if d.dim_value == length:
                d.Clear()
                d.dim_param = "tokens"

    consts = _constants(g)
    new_nodes = [
        helper.make_node("Shape", [token_inputs[0]], ["ps_shape"]),
        helper.make_node("Slice", ["ps_shape", "ps_one", "ps_two"], ["ps_len"]),
    ]
    new_inits = [numpy_helper.from_array(np.array([v], np.int64), n) for n, v in (("ps_one", 1), ("ps_two", 2))]
    replaced: dict[tuple[str, str], str] = {}

    def dynamic_shape(name: str, arr: np.ndarray) -> str:
        key = (name, "shape")
        if key not in replaced:
            parts, run = [], []
            for k, v in enumerate(arr.tolist()):
                if v == length:
                    if run:
                        parts.append(_const(new_inits, f"ps_c{len(new_inits)}", np.array(run, arr.dtype)))
                        run = []
                    parts.append("ps_len" if arr.dtype == np.int64 else _cast(new_nodes, arr.dtype, k))
                else:
                    run.append(v)
            if run:
                parts.append(_const(new_inits, f"ps_c{len(new_inits)}", np.array(run, arr.dtype)))
            out = f"ps_shape_{len(replaced)}"
            new_nodes.append(helper.make_node("Concat", parts, [out], axis=0))
            replaced[key] = out
        return replaced[key]

    def sliced(name: str, arr: np.ndarray) -> str:
        key = (name, "slice")
        if key not in replaced:
            axes = [a for a, d in enumerate(arr.shape) if d == length]
            starts = _const(new_inits, f"ps_s{len(new_inits)}", np.zeros(len(axes), np.int64))
            ax = _const(new_inits, f"ps_a{len(new_inits)}", np.array(axes, np.int64))
            ends = f"ps_ends_{len(replaced)}"
            new_nodes.append(helper.make_node("Concat", ["ps_len"] * len(axes), [ends], axis=0))
            out = f"ps_sliced_{len(replaced)}"
            new_nodes.append(helper.make_node("Slice", [name, starts, ends, ax], [out]))
            replaced[key] = out
        return replaced[key]

    for node in g.node:
        for idx, name in enumerate(node.input):
            arr = consts.get(name)
            if arr is None:
                continue
            if (node.op_type, idx) in _SHAPE_INPUTS and arr.ndim == 1 and arr.dtype.kind == "i":
                if (arr == length).any():
                    node.input[idx] = dynamic_shape(name, arr)
            elif node.op_type in _ELEMENTWISE and length in arr.shape:
                node.input[idx] = sliced(name, arr)
    g.initializer.extend(new_inits)
    nodes = _toposort([*new_nodes, *g.node])
    del g.node[:]
    g.node.extend(nodes)
    return model


def _const(inits: list, name: str, value: np.ndarray) -> str:
    from onnx import numpy_helper

    inits.append(numpy_helper.from_array(value, name))
    return name


def _cast(nodes: list, dtype: np.dtype, k: int) -> str:
    from onnx import helper

    out = f"ps_len_{dtype}_{k}_{len(nodes)}"
    to = helper.np_dtype_to_tensor_dtype(dtype)
    nodes.append(helper.make_node("Cast", ["ps_len"], [out], to=to))
    return out


_SAME_SHAPE = {"Add", "Sub", "Mul", "Div", "Pow", "Erf", "Sqrt", "Cast", "Relu", "Sigmoid", "Tanh", "Gelu", "Clip",
               "Where", "Softmax", "LayerNormalization", "Identity", "Neg", "Exp", "Log", "Abs", "Max", "Min",
               "Dropout", "QuickGelu", "Equal", "Not", "HardSigmoid", "Reciprocal", "ReduceL2", "ReduceMean",
               "ReduceSum", "ReduceMax", "Conv", "MaxPool", "AveragePool", "BatchNormalization"}  # fmt: skip


def _prod(xs) -> int:
    return int(np.prod(xs, dtype=np.int64)) if len(xs) else 1


def _reshape_batch(src: list[int], axis: int, inner: int, out: list[int]) -> tuple[int, int]:
    """Where the batch lands in a Reshape of `src` (batch at `axis`, `inner` of that axis inside it)
    to `out`. Reshape keeps element order, so the batch keeps its flat stride; at an axis boundary
    it joins the next axis as its outer factor, or the previous one when the next is the last."""
    stride = inner * _prod(src[axis + 1 :])
    suffix = [_prod(out[j + 1 :]) for j in range(len(out))]
    for j, d in enumerate(out):
        if d == 1 and suffix[j] == stride:
            return j, 1
    for j in range(len(out)):  # on the boundary before axis j
        if _prod(out[j:]) == stride:
            return (j, out[j]) if j < len(out) - 1 or j == 0 else (j - 1, 1)
    for j, d in enumerate(out):  # inside axis j
        if suffix[j] < stride < suffix[j] * d and stride % suffix[j] == 0:
            return j, stride // suffix[j]
    raise DeriveError(f"cannot place the batch in a reshape {src} -> {out}")


def runtime_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """The shape of every tensor, from one run of the batch-1 graph with every value as an output
    (exact where shape inference gives up, e.g. on shapes computed by Where/Equal)."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.ModelProto.FromString(model.SerializeToString())
    g = probe.graph
    known = {o.name for o in g.output}
    for node in g.node:
        for name in node.output:
            if name and name not in known:
                g.output.append(helper.make_empty_tensor_value_info(name))
                known.add(name)
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {}
    for inp in sess.get_inputs():
        if any(not isinstance(d, int) for d in inp.shape):
            raise DeriveError(f"input {inp.name} has no fixed shape")
        feeds[inp.name] = np.zeros(inp.shape, np.float32 if "float" in inp.type else np.int64)
    names = [o.name for o in sess.get_outputs()]
    shapes = {n: list(np.shape(v)) for n, v in zip(names, sess.run(names, feeds), strict=True)}
    shapes.update({i.name: list(i.shape) for i in sess.get_inputs()})
    shapes.update({i.name: list(i.dims) for i in model.graph.initializer})
    return shapes


def dynamic_batch_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of a batch-1 tower whose batch axis is variable (see the module docstring)."""
    import onnx
    from onnx import helper, numpy_helper

    shapes = runtime_shapes(model)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    consts = _constants(g)
    init_names = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in init_names]
    if len(inputs) != 1 or shapes.get(inputs[0].name, [0])[0] != 1:
        raise DeriveError("expected one input with a batch of 1")
    main = inputs[0].name
    batch: dict[str, tuple[int, int]] = {main: (0, 1)}
    dynamic_values = set()  # tensors computed from the shape of batched data (correct for any batch)
    new_nodes = [
        helper.make_node("Shape", [main], ["pb_shape"]),
        helper.make_node("Slice", ["pb_shape", "pb_zero", "pb_one"], ["pb_batch"]),
    ]
    new_inits = [numpy_helper.from_array(np.array([v], np.int64), n) for n, v in (("pb_zero", 0), ("pb_one", 1))]

    def need(name: str) -> list[int]:
        if name not in shapes:
            raise DeriveError(f"no static shape for {name}")
        return shapes[name]

    for node in list(g.node):
        op = node.op_type
        ins = [(k, n) for k, n in enumerate(node.input) if n in batch]
        if not ins:
            if op == "Shape" and node.input[0] in batch or any(n in dynamic_values for n in node.input):
                dynamic_values.update(node.output)
            continue
        k0, name0 = ins[0]
        axis, inner = batch[name0]
        out = node.output[0]
        rank_in = len(need(name0))
        if op == "Shape":
            dynamic_values.update(node.output)
            continue
        if op in _SAME_SHAPE or k0 == 0 and op in ("MatMul", "Gemm", "Expand"):
            rank_out = len(need(out))
            batch[out] = (axis + rank_out - rank_in, inner)
            if op == "Gemm" and axis != 0:
                raise DeriveError("Gemm over the batch axis")
        elif op == "MatMul":  # batch only in the second operand: aligned right unless in its last axis
            rank_out = len(need(out))
            if axis >= rank_in - 2:
                raise DeriveError("MatMul contracts the batch axis")
            batch[out] = (axis + rank_out - rank_in, inner)
        elif op == "Transpose":
            perm = list(next(a.ints for a in node.attribute if a.name == "perm"))
            batch[out] = (perm.index(axis), inner)
        elif op in ("Unsqueeze", "Squeeze"):
            axes = consts.get(node.input[1]) if len(node.input) > 1 else None
            if axes is None:
                axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
            if axes is None:
                raise DeriveError(f"{op} without constant axes")
            r = len(need(out)) if op == "Unsqueeze" else rank_in
            axes = sorted(int(a) % r for a in np.atleast_1d(axes))
            if op == "Squeeze":
                if axis in axes:
                    raise DeriveError("Squeeze of the batch axis")
                batch[out] = (axis - sum(a < axis for a in axes), inner)
            else:
                pos = axis
                for a in axes:
                    if a <= pos:
                        pos += 1
                batch[out] = (pos, inner)
        elif op == "Gather" and k0 == 0:
            gaxis = next((a.i for a in node.attribute if a.name == "axis"), 0) % rank_in
            if gaxis == axis:
                raise DeriveError("Gather along the batch axis")
            idx_rank = len(need(node.input[1])) if node.input[1] in shapes else len(consts[node.input[1]].shape)
            batch[out] = (axis if axis < gaxis else axis - 1 + idx_rank, inner)
        elif op == "Flatten":
            f = next((a.i for a in node.attribute if a.name == "axis"), 1) % rank_in
            src = need(name0)
            batch[out] = (0, inner * _prod(src[axis + 1 : f])) if axis < f else (1, inner * _prod(src[axis + 1 :]))
        elif op == "Reshape" and k0 == 0:
            j, new_inner = _reshape_batch(need(name0), axis, inner, need(out))
            batch[out] = (j, new_inner)
            if node.input[1] not in dynamic_values:
                target = list(need(out))
                target[j] = -1
                node.input[1] = _const(new_inits, f"pb_shape_{len(new_inits)}", np.array(target, np.int64))
        elif op == "Concat":
            caxis = next(a.i for a in node.attribute if a.name == "axis") % rank_in
            if caxis == axis:
                raise DeriveError("Concat along the batch axis")
            for k, n in enumerate(node.input):
                if n in batch:
                    continue
                shape = need(n)
                if len(shape) != rank_in or shape[axis] != 1:
                    raise DeriveError(f"cannot broadcast {n} to the batch")
                parts = [_const(new_inits, f"pb_ones_{len(new_inits)}", np.ones(axis, np.int64))] if axis else []
                parts.append("pb_batch")
                if rank_in - axis - 1:
                    parts.append(_const(new_inits, f"pb_ones_{len(new_inits)}", np.ones(rank_in - axis - 1, np.int64)))
                target = f"pb_target_{len(new_nodes)}"
                new_nodes.append(helper.make_node("Concat", parts, [target], axis=0))
                expanded = f"pb_expanded_{len(new_nodes)}"
                new_nodes.append(helper.make_node("Expand", [n, target], [expanded]))
                node.input[k] = expanded
            batch[out] = (axis, inner)
        else:
            raise DeriveError(f"{op} on batched data is not supported")
    for o in g.output:
        if o.name not in batch:
            raise DeriveError(f"output {o.name} does not carry the batch")
        dims = o.type.tensor_type.shape.dim
        if dims:
            dims[batch[o.name][0]].Clear()
            dims[batch[o.name][0]].dim_param = "batch"
    dims = next(i for i in g.input if i.name == main).type.tensor_type.shape.dim
    dims[0].Clear()
    dims[0].dim_param = "batch"
    del g.value_info[:]
    g.initializer.extend(new_inits)
    nodes = _toposort([*new_nodes, *g.node])
    del g.node[:]
    g.node.extend(nodes)
    return model
