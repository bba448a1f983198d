"""Faster graphs derived from a model's own ONNX files, used only once they reproduce the original.

immich's text towers run a fixed 77 tokens. For causal CLIP text towers the padding after the
end token never reaches the pooled embedding, so the same graph with the token axis made
variable gives the same result on a few positions: `dynamic_text_model` marks the axis dynamic,
replaces the context length in every constant shape (Reshape/Expand targets) by the input's
length, and slices constants that carry a token axis (position embedding, causal mask) to it.

The derived file goes to `<model>/.derived/`, the original stays untouched. It is used only
after it matched the original on every probe string (`probes.PROBE_TEXTS`, cosine >= 0.99999);
otherwise the original is used. The outcome is recorded in `.derived/state.json`, keyed to the
original file's size and mtime, so a replaced model is checked again. Derivation runs at
`models download` / `models import`, and once, on first use, for models installed before.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from photosearch.models.probes import PROBE_TEXTS
from photosearch.models.runtime import Session, SessionConfig, create_session

if TYPE_CHECKING:
    import onnx

    from photosearch.models.tokenizer import ClipTokenizer

DERIVED_DIR = ".derived"
REWRITE_VERSION = 1
TEXT_MIN_COSINE = 0.99999
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Where", "Max", "Min", "Pow", "Equal", "Less", "Greater", "And", "Or"}
_SHAPE_INPUTS = {("Reshape", 1), ("Expand", 1), ("ConstantOfShape", 0), ("Slice", 2)}


class DeriveError(Exception):
    """The graph has a shape the rewrite does not understand (the original is used)."""


@dataclass
class Derived:
    """Which graph a tower runs and why."""

    graph: str  # "derived" or "original"
    reason: str
    min_cosine: float | None = None
    probes: int = 0
    source: dict[str, int] | None = None
    version: int = REWRITE_VERSION

    def path(self, model_dir: Path, tower: str) -> Path:
        if self.graph == "derived":
            return model_dir / DERIVED_DIR / f"{tower}.onnx"
        return model_dir / tower / "model.onnx"

    def describe(self) -> str:
        if self.graph == "derived":
            return (
                f"variable-length graph derived from the model file "
                f"(min cosine {self.min_cosine:.7f} on {self.probes} probes)"
            )
        return f"original model file ({self.reason})"


def padding_is_inert(masked: bool, hf_tokenizer: bool) -> bool:
    """Trailing padding cannot change the embedding: towers that take an attention mask, and CLIP
    BPE towers (causal mask, pooled at the end token). Others (e.g. SigLIP pools over the full
    padded sequence) always get the full context."""
    return masked or not hf_tokenizer


# state ------------------------------------------------------------------------------------------------


def _source_id(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def read_state(model_dir: Path, tower: str) -> Derived | None:
    """The recorded outcome for `tower`, or None when never derived or the original changed since."""
    try:
        raw = json.loads((model_dir / DERIVED_DIR / "state.json").read_text())[tower]
        state = Derived(**raw)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    original = model_dir / tower / "model.onnx"
    try:
        fresh = original.is_file() and state.source == _source_id(original) and state.version == REWRITE_VERSION
    except OSError:
        return None
    if not fresh or not state.path(model_dir, tower).is_file():
        return None
    return state


def _write_state(model_dir: Path, tower: str, state: Derived) -> None:
    path = model_dir / DERIVED_DIR / "state.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[tower] = asdict(state)
    _atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# the rewrite -------------------------------------------------------------------------------------------


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


# verification -----------------------------------------------------------------------------------------

_NP = {"tensor(float)": np.float32, "tensor(int32)": np.int32, "tensor(int64)": np.int64}


def _text_feeds(sess: Session, ids: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
    feeds = {}
    for inp in sess.get_inputs():
        dtype = _NP.get(inp.type, np.int64)
        if inp.name == "attention_mask":
            feeds[inp.name] = (np.arange(ids.shape[1])[None, :] < lengths[:, None]).astype(dtype)
        else:
            feeds[inp.name] = ids.astype(dtype)
    return feeds


def text_cosines(original: Session, derived: Session, tokenizer: ClipTokenizer) -> np.ndarray:
    """Cosine between the original (full context) and the derived graph (trimmed) on every probe."""
    ids, lengths = tokenizer.encode(list(PROBE_TEXTS))
    out = []
    for i in range(len(ids)):
        row, n = ids[i : i + 1], lengths[i : i + 1]
        a = original.run(None, _text_feeds(original, row, n))[0][0]
        trimmed = np.ascontiguousarray(row[:, : max(2, int(n[0]))])
        b = derived.run(None, _text_feeds(derived, trimmed, n))[0][0]
        out.append(float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)))
    return np.array(out)


def fixed_text_length(sess: Session) -> int | None:
    """The token count a text tower is fixed to, or None when its token axis is already dynamic."""
    inp = next((i for i in sess.get_inputs() if i.name in ("text", "input_ids")), None)
    if inp is None or len(inp.shape) != 2 or not isinstance(inp.shape[1], int):
        return None
    return int(inp.shape[1])


def derive_text(
    model_dir: Path, tokenizer: ClipTokenizer, original: Session | None = None, threads: int = 1
) -> Derived:
    """Derive, verify and record the variable-length text graph; the outcome says which graph to use."""
    src = model_dir / "textual" / "model.onnx"
    source = _source_id(src)
    original = original or create_session(src, SessionConfig(threads=threads))
    length = fixed_text_length(original)
    if length is None:
        return Derived("original", "the token axis is already variable", source=source)
    masked = any(i.name == "attention_mask" for i in original.get_inputs())
    if not padding_is_inert(masked, tokenizer.hf_tokenizer):
        state = Derived("original", "padding can change this tower's embedding", source=source)
    else:
        state = _derive_and_check(model_dir, src, length, tokenizer, original, threads, source)
    try:
        _write_state(model_dir, "textual", state)
    except OSError as exc:
        state.reason = f"{state.reason}; not recorded: {exc.strerror or exc}"
    return state


def _derive_and_check(
    model_dir: Path, src: Path, length: int, tokenizer: ClipTokenizer, original: Session, threads: int, source: dict
) -> Derived:
    t0 = time.perf_counter()
    try:
        import onnx
    except ImportError:
        return Derived("original", "the onnx package is not installed", source=source)
    dest = model_dir / DERIVED_DIR / "textual.onnx"
    try:
        model = dynamic_text_model(onnx.load(str(src)), length)
        _atomic_write(dest, model.SerializeToString())
        del model
        derived = create_session(dest, SessionConfig(threads=threads))
        cos = text_cosines(original, derived, tokenizer)
    except DeriveError as exc:
        return Derived("original", f"cannot derive a variable-length graph: {exc}", source=source)
    except OSError as exc:
        return Derived("original", f"cannot write {dest}: {exc.strerror or exc}", source=source)
    except Exception as exc:  # noqa: BLE001 - onnx/ORT errors on graphs the rewrite got wrong
        dest.unlink(missing_ok=True)
        return Derived("original", f"the derived graph does not run: {str(exc).splitlines()[0][:200]}", source=source)
    worst = float(cos.min())
    if worst < TEXT_MIN_COSINE:
        dest.unlink(missing_ok=True)
        return Derived("original", f"the derived graph differs (min cosine {worst:.6f})", worst, len(cos), source)
    took = time.perf_counter() - t0
    return Derived("derived", f"verified in {took:.1f} s", worst, len(cos), source)


def summary(model_dir: Path) -> dict[str, Any]:
    """What `models info` shows per tower."""
    out = {}
    for tower in ("textual", "visual"):
        state = read_state(model_dir, tower)
        if state is not None:
            out[tower] = state.describe()
    return out
