"""ONNX Runtime sessions: which execution provider runs a model, with what threads and options.

Providers are chosen from what the installed onnxruntime offers, best first: CUDA (the
`onnxruntime-gpu` wheel), ROCm, OpenVINO (the `onnxruntime-openvino` wheel, `photosearch[openvino]`),
then the default CPU provider. An accelerator that is listed but cannot start (no driver, no
device) is skipped: the session is created again on the next provider and the reason is kept
for `models info`. `PHOTOSEARCH_ONNX_PROVIDER=cpu` (or any provider name) pins the choice.
Every provider is set up for full float32 precision: OpenVINO would otherwise run bf16 on CPUs
with AMX, and CUDA TF32, both of which move embeddings further than our fidelity bound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photosearch.models.errors import ModelError

if TYPE_CHECKING:
    import onnxruntime as ort

ACCELERATORS = ("CUDAExecutionProvider", "ROCMExecutionProvider", "OpenVINOExecutionProvider")
PROVIDER_OPTIONS: dict[str, dict[str, str]] = {
    "CUDAExecutionProvider": {"use_tf32": "0"},
    "OpenVINOExecutionProvider": {"device_type": "CPU", "precision": "FP32"},
}
_SHORT = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "rocm": "ROCMExecutionProvider",
          "openvino": "OpenVINOExecutionProvider"}  # fmt: skip


def provider_candidates() -> list[str]:
    """Providers to try, best first, ending with the CPU provider."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    pinned = os.environ.get("PHOTOSEARCH_ONNX_PROVIDER", "").strip()
    if pinned:
        name = _SHORT.get(pinned.lower(), pinned)
        if name not in available:
            raise ModelError(f"PHOTOSEARCH_ONNX_PROVIDER={pinned}: this onnxruntime offers {', '.join(available)}")
        return [name] if name == "CPUExecutionProvider" else [name, "CPUExecutionProvider"]
    return [p for p in ACCELERATORS if p in available] + ["CPUExecutionProvider"]


def bounded_spin_supported(version: str) -> bool:
    """`session.intra_op.spin_duration_us` (a time bound on a waiting thread's spin) came with ONNX Runtime 1.27."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (1, 27)


@dataclass
class SessionConfig:
    """How one session runs. `spin`: worker threads busy-wait between ops instead of sleeping (no
    wake-up per op); `spin_us` bounds each wait's spin, so a pool stops spinning right after a call
    instead of burning the cores other work needs (unbounded: ONNX Runtime's own spin count)."""

    threads: int = 1
    spin: bool = True
    spin_us: int | None = None
    level: str = "all"  # basic | extended | all
    mem_pattern: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    def options(self) -> ort.SessionOptions:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, self.threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = {
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.level]
        opts.enable_mem_pattern = self.mem_pattern
        opts.log_severity_level = 3
        # a bounded spin where ONNX Runtime can bound it; an older one would ignore the bound and spin on after
        # every call, so its threads sleep instead
        spin = self.spin and (self.spin_us is None or bounded_spin_supported(ort.__version__))
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        if spin and self.spin_us is not None:
            opts.add_session_config_entry("session.intra_op.spin_duration_us", str(self.spin_us))
        for k, v in self.extra.items():
            opts.add_session_config_entry(k, v)
        return opts


@dataclass
class Session:
    """A created session and the provider that runs it (plus why better ones were skipped)."""

    session: ort.InferenceSession
    provider: str
    skipped: dict[str, str]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


def create_session(path: Path, config: SessionConfig, providers: list[str] | None = None) -> Session:
    """A session on the best provider that starts; ModelError when the file itself is unusable."""
    import onnxruntime as ort

    if not Path(path).is_file():
        raise ModelError(f"model file {path} is missing")
    skipped: dict[str, str] = {}
    available = ort.get_available_providers()
    candidates = []
    for name in providers or provider_candidates():
        if name in available:
            candidates.append(name)
        else:
            skipped[name] = "not offered by the installed onnxruntime"
    if "CPUExecutionProvider" not in candidates:
        candidates.append("CPUExecutionProvider")
    for i, name in enumerate(candidates):
        options = dict(PROVIDER_OPTIONS.get(name, {}))
        if name == "OpenVINOExecutionProvider":  # its own thread pool: as many threads as the session gets
            options["num_of_threads"] = str(max(1, config.threads))
        chain = [(name, options)]
        if name != "CPUExecutionProvider":
            chain.append(("CPUExecutionProvider", {}))
        try:
            sess = ort.InferenceSession(str(path), sess_options=config.options(), providers=chain)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
            if i == len(candidates) - 1:
                raise ModelError(f"model file {path} is corrupt or not an ONNX model: {_first_line(exc)}") from exc
            skipped[name] = _first_line(exc)
            continue
        used = sess.get_providers()[0]
        if used != name:  # the provider was registered but declined the model
            skipped[name] = "declined the model"
        return Session(sess, used, skipped)
    raise ModelError(f"no ONNX Runtime provider could load {path}")  # pragma: no cover - CPU always listed


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
