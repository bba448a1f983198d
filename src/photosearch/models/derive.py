"""Faster graphs derived from a model's own ONNX files, used only once they reproduce the original.

immich's text towers run a fixed 77 tokens. For causal CLIP text towers the padding after the
end token never reaches the pooled embedding, so the same graph with the token axis made
variable gives the same result on a few positions: `dynamic_text_model` marks the axis dynamic,
replaces the context length in every constant shape (Reshape/Expand targets) by the input's
length, and slices constants that carry a token axis (position embedding, causal mask) to it.

The text graph then gets its attention blocks fused (fuse.py) where ONNX Runtime runs the fused
node (CPU, CUDA, ROCm); the fused graph is checked like any derived graph, and when it fails the
check the unfused derived graph is checked and used instead.

The derived file goes to `<model>/.derived/`, the original stays untouched. It is used only
after it matched the original on every probe string (`probes.PROBE_TEXTS`, cosine >= 0.99999);
otherwise the original is used. The outcome is recorded in `.derived/state.json`, keyed to the
original file's size and mtime, so a replaced model is checked again. Derivation runs at
`models download` / `models import`, and once, on first use, for models installed before.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from photosearch.atomic import atomic_write
from photosearch.models.errors import ModelError
from photosearch.models.fuse import fused_attention_model
from photosearch.models.probes import PROBE_TEXTS, probe_images
from photosearch.models.rewrite import DeriveError, dynamic_batch_model, dynamic_text_model
from photosearch.models.runtime import Session, SessionConfig, create_session, provider_candidates

if TYPE_CHECKING:
    import onnx

    from photosearch.models.tokenizer import ClipTokenizer

DERIVED_DIR = ".derived"
REWRITE_VERSION = {"textual": 2, "visual": 1}  # per tower; textual 2: attention blocks fused
MIN_COSINE = 0.99999
# providers that run the fused com.microsoft Attention node themselves (OpenVINO would hand it back to the CPU
# provider node by node, splitting its graph)
FUSING_PROVIDERS = ("CPUExecutionProvider", "CUDAExecutionProvider", "ROCMExecutionProvider")


@dataclass
class Derived:
    """Which graph a tower runs and why."""

    graph: str  # "derived" or "original"
    reason: str
    min_cosine: float | None = None
    probes: int = 0
    source: dict[str, int] | None = None
    version: int = 0  # REWRITE_VERSION of its tower, set when recorded
    fused: int = 0  # attention blocks fused into one node each

    def path(self, model_dir: Path, tower: str) -> Path:
        if self.graph == "derived":
            return model_dir / DERIVED_DIR / f"{tower}.onnx"
        return model_dir / tower / "model.onnx"

    def describe(self, what: str) -> str:
        if self.graph == "derived":
            fused = f", {self.fused} attention blocks fused" if self.fused else ""
            return (
                f"{what} graph derived from the model file{fused} "
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
        fresh = original.is_file() and state.source == _source_id(original) and state.version == REWRITE_VERSION[tower]
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
    atomic_write(path, lambda f: f.write(data))


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


def fixed_batch(sess: Session) -> int | None:
    dim = sess.get_inputs()[0].shape[0]
    return dim if isinstance(dim, int) and dim > 0 else None


def image_cosines(original: Session, derived: Session, size: int) -> np.ndarray:
    """Cosine between the original run one image at a time and the derived graph on the whole batch."""
    x = probe_images(size)
    name = original.get_inputs()[0].name
    a = np.concatenate([original.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])
    b = derived.run(None, {derived.get_inputs()[0].name: x})[0]
    return np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def derive_text(
    model_dir: Path,
    tokenizer: ClipTokenizer,
    original: Session | None = None,
    threads: int = 1,
    fuse: bool | None = None,
) -> Derived:
    """Derive, verify and record the variable-length text graph; the outcome says which graph to use.
    `fuse`: try fusing its attention blocks (default: when the best provider runs the fused node)."""
    src = model_dir / "textual" / "model.onnx"
    original = original or create_session(src, SessionConfig(threads=threads))
    length = fixed_text_length(original)
    if length is None:
        return Derived("original", "the token axis is already variable", source=_source_id(src))
    masked = any(i.name == "attention_mask" for i in original.get_inputs())
    if not padding_is_inert(masked, tokenizer.hf_tokenizer):
        state = Derived("original", "padding can change this tower's embedding", source=_source_id(src))
    else:
        state = _derive_and_check(
            model_dir, "textual", lambda m: dynamic_text_model(m, length),
            lambda d: text_cosines(original, d, tokenizer), threads, refine=_fusion_wanted() if fuse is None else fuse,
        )  # fmt: skip
    return _record(model_dir, "textual", state)


def derive_visual(model_dir: Path, image_size: int, original: Session | None = None, threads: int = 1) -> Derived:
    """Derive, verify and record the variable-batch image graph of a batch-1 export."""
    src = model_dir / "visual" / "model.onnx"
    original = original or create_session(src, SessionConfig(threads=threads))
    if fixed_batch(original) != 1:
        return Derived("original", "the batch axis is already variable", source=_source_id(src))
    state = _derive_and_check(
        model_dir, "visual", dynamic_batch_model, lambda d: image_cosines(original, d, image_size), threads
    )
    return _record(model_dir, "visual", state)


def _fusion_wanted() -> bool:
    try:
        return provider_candidates()[0] in FUSING_PROVIDERS
    except ModelError:
        return False


def _record(model_dir: Path, tower: str, state: Derived) -> Derived:
    state.version = REWRITE_VERSION[tower]
    try:
        _write_state(model_dir, tower, state)
    except OSError as exc:
        state.reason = f"{state.reason}; not recorded: {exc.strerror or exc}"
    return state


def _derive_and_check(
    model_dir: Path,
    tower: str,
    rewrite: Callable[[onnx.ModelProto], onnx.ModelProto],
    cosines: Callable[[Session], np.ndarray],
    threads: int,
    refine: bool = False,
) -> Derived:
    """`refine`: try the graph with fused attention first, the plain derived graph when that fails."""
    t0 = time.perf_counter()
    src = model_dir / tower / "model.onnx"
    source = _source_id(src)
    what = "variable-length" if tower == "textual" else "variable-batch"
    try:
        import onnx
    except ImportError:
        return Derived("original", "the onnx package is not installed", source=source)
    dest = model_dir / DERIVED_DIR / f"{tower}.onnx"
    try:
        model = rewrite(onnx.load(str(src)))
        fused = _fused_and_checked(model, dest, cosines, threads) if refine else None
        if fused is not None:
            cos, blocks = fused
            return Derived("derived", f"verified in {time.perf_counter() - t0:.1f} s", float(cos.min()), len(cos),
                           source, fused=blocks)  # fmt: skip
        _atomic_write(dest, model.SerializeToString())
        del model
        cos = cosines(create_session(dest, SessionConfig(threads=threads)))
    except DeriveError as exc:
        return Derived("original", f"cannot derive a {what} graph: {exc}", source=source)
    except OSError as exc:
        return Derived("original", f"cannot write {dest}: {exc.strerror or exc}", source=source)
    except Exception as exc:  # noqa: BLE001 - onnx/ORT errors on graphs the rewrite got wrong
        dest.unlink(missing_ok=True)
        return Derived("original", f"the derived graph does not run: {str(exc).splitlines()[0][:200]}", source=source)
    worst = float(cos.min())
    if worst < MIN_COSINE:
        dest.unlink(missing_ok=True)
        return Derived("original", f"the derived graph differs (min cosine {worst:.6f})", worst, len(cos), source)
    return Derived("derived", f"verified in {time.perf_counter() - t0:.1f} s", worst, len(cos), source)


def _fused_and_checked(
    model: onnx.ModelProto, dest: Path, cosines: Callable[[Session], np.ndarray], threads: int
) -> tuple[np.ndarray, int] | None:
    """Write the attention-fused graph to `dest` and check it: (cosines, blocks fused), or None (nothing to
    fuse, or the fused graph does not run or does not reproduce the original)."""
    try:
        fused, blocks = fused_attention_model(model)
        _atomic_write(dest, fused.SerializeToString())
        del fused
        cos = cosines(create_session(dest, SessionConfig(threads=threads)))
    except OSError:
        raise
    except Exception:  # noqa: BLE001 - DeriveError, or onnx/ORT errors on a graph the fusion got wrong
        return None
    return (cos, blocks) if float(cos.min()) >= MIN_COSINE else None
