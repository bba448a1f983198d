"""Decode and embed on a Ray cluster (`photosearch index --cluster ADDRESS|auto`, extra `photosearch[cluster]`).

Only the middle of a run moves: the driver scans, builds the work list, holds the library lock and writes every
batch exactly as a local run does (`pipeline.py`); here the work list goes to Ray Data in windows and the results
come back as a stream. On the workers each file goes through the same `decode.process_file` as locally (read,
hash, metadata, one decode, thumbnails, model input), then an actor pool embeds it — one ONNX Runtime session per
actor, CUDA when the actor holds a GPU. Thumbnails are cut where the file was decoded and travel back with the
embedding; the driver stores them under its own thumbnails folder.

Files are read on the workers at the path the driver stored, so every node must see the library at the same path
(an NFS/SMB mount, or object storage mounted alike). The model's visual tower — the graph a local run uses, for an
immich export its variable-batch derivation — is shipped through Ray's object store, so workers need photosearch
installed but no model files.

Crash safety is the local run's: nothing is written until a batch commits on the driver, so a killed driver loses
its open batch (Ray ends the job's tasks and actors with it) and a re-run resumes from the work list. A lost actor is
restarted and its batch retried by Ray Data (the run finishes); a lost worker node's tasks are retried on the others.
The local runtime of `auto` ends with the driver, a SIGKILLed one included (`reaper.py`).
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from photosearch.ingest import decode
from photosearch.ingest.decode import FileError, FileResult, FileTask
from photosearch.ingest.thumbnails import atomic_write_bytes, thumb_paths

log = logging.getLogger(__name__)

WINDOW = 4096  # tasks handed to Ray Data at a time: the driver never holds the whole work list
CPU_BATCH = 16  # files per actor call on a CPU: small enough that results stream back steadily
GPU_BATCH = 64  # on a GPU the per-call overhead matters more
CONNECT_TIMEOUT = 10.0


class ClusterError(RuntimeError):
    """The cluster cannot be used (extra not installed, address unreachable); the message says what to do."""


@dataclass(frozen=True)
class ClusterPlan:
    """How the embedding stage is laid out on the cluster's resources."""

    actors: int
    batch_size: int
    gpus_per_actor: float
    cpus_per_actor: float


def plan_for(resources: dict[str, float]) -> ClusterPlan:
    """One actor per GPU when there are GPUs (decode then runs in separate CPU tasks), else one single-threaded
    actor per CPU that decodes and embeds in the same process (Ray Data fuses the two stages)."""
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return ClusterPlan(actors=gpus, batch_size=GPU_BATCH, gpus_per_actor=1, cpus_per_actor=1)
    cpus = max(1, int(resources.get("CPU", 1)))
    return ClusterPlan(actors=cpus, batch_size=CPU_BATCH, gpus_per_actor=0, cpus_per_actor=1)


def check(address: str) -> None:
    """Before a run starts: Ray is installed and the address answers (joining waits until there is work)."""
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        raise ClusterError("--cluster needs Ray: pip install 'photosearch[cluster]'") from exc
    if address != "auto":
        _check_reachable(address)


def connect(address: str) -> None:
    """Join the cluster at `address` (`host:port` of `ray start --head`, or `ray://host:10001`), or start a local
    Ray runtime for `auto`."""
    import ray

    if ray.is_initialized():
        return
    check(address)
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # the driver's core worker logs to our stderr
    opts: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False, "include_dashboard": False}
    if address != "auto":
        opts.pop("include_dashboard")
    else:
        _start_reaper()
    try:
        with _quiet_stderr():  # Ray's C++ core announces its log level on fd 2
            ray.init(address="local" if address == "auto" else address, **opts)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"--cluster {address}: cannot connect to a Ray cluster there ({exc})") from exc
    _divert_cluster_messages()
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # the CLI draws its own bar
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    # Ray Data's hint that the last window is smaller than the actor pool is expected here.
    warnings.filterwarnings("ignore", message="The minimum number of concurrent actors", category=UserWarning)


def parse_address(address: str) -> tuple[str, int] | None:
    """(host, port) of `HOST:PORT` or `ray://HOST:PORT`; None for `auto`; ValueError for anything else."""
    if address == "auto":
        return None
    scheme, sep, hostport = address.rpartition("://")
    host, _, port = hostport.rpartition(":")
    if (sep and scheme != "ray") or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not HOST:PORT, ray://HOST:PORT or auto")
    return host.strip("[]"), int(port)


def _check_reachable(address: str) -> None:
    """Ray retries an unreachable head for minutes; a plain TCP connect says so in seconds."""
    try:
        hostport = parse_address(address)
    except ValueError as exc:
        raise ClusterError(f"--cluster: {exc}") from exc
    assert hostport is not None
    try:
        socket.create_connection(hostport, timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        raise ClusterError(f"--cluster {address}: no Ray cluster answers there ({exc.strerror or exc})") from exc


def _divert_cluster_messages() -> None:
    """Ray's driver prints the cluster's error messages ("a worker died …", "the actor was restarted …") to *stdout*
    from a background thread, which would break `--json` and the progress bar. Ray handles those events (it restarts
    the actor and retries its tasks), so they go to our log on stderr instead: the first line of each, once."""
    from ray._private import worker as ray_worker

    printer = getattr(ray_worker, "print_to_stdstream", None)
    if printer is None or getattr(printer, "photosearch", False):
        return
    seen: set[str] = set()

    def divert(data: dict, ignore_prefix: bool) -> None:
        if data.get("pid") != "raylet":
            return printer(data, ignore_prefix)
        for message in data.get("lines") or ():
            first = (str(message).strip().splitlines() or [""])[0][:300]
            if first not in seen:
                seen.add(first)
                log.warning("the Ray cluster reports: %s", first)

    divert.photosearch = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = divert


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def disconnect() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
    reaper = _REAPER.pop("proc", None)
    if reaper is not None:  # it ends what the shutdown left of a local runtime
        reaper.stdin.close()
        try:
            reaper.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log.warning("the local Ray runtime's clean-up (pid %s) is still running", reaper.pid)


_REAPER: dict[str, subprocess.Popen] = {}


def _start_reaper() -> None:
    """`reaper.py` in a process of its own: the local runtime of `--cluster auto` ends with this driver, even with
    a SIGKILLed one."""
    cmd = [sys.executable, "-m", "photosearch.ingest.reaper", str(os.getpid())]
    _REAPER["proc"] = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


# ---- on the workers ------------------------------------------------------------------------------------------

_THUMBS: dict[str, Path] = {}


def _scratch() -> Path:
    """A per-process folder where `decode` writes thumbnails before they are read back and shipped."""
    if "dir" not in _THUMBS:
        _THUMBS["dir"] = Path(tempfile.mkdtemp(prefix="photosearch-thumbs-"))
        decode.register_decoders()
    return _THUMBS["dir"]


def decode_batch(batch: dict[str, np.ndarray], preprocessor: Any) -> dict[str, list[bytes]]:
    """Ray Data map: pickled `FileTask`s → pickled `FileResult`/`FileError`s, each result carrying its model input
    and its thumbnail files' bytes."""
    scratch = _scratch()
    out = []
    for blob in batch["task"]:
        task: FileTask = pickle.loads(blob)
        try:
            r = decode.process_file(task, preprocessor, scratch)
        except Exception as exc:  # noqa: BLE001 - one file must never fail the batch
            r = FileError(task.path, decode.CORRUPT, f"{type(exc).__name__}: {exc}")
        if isinstance(r, FileResult):
            r.extra["thumbs"] = _take_thumbs(scratch, r.checksum)
        out.append(pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL))
    return {"result": out}


def _take_thumbs(scratch: Path, checksum: bytes) -> tuple[bytes, bytes] | None:
    thumb, preview = thumb_paths(scratch, checksum)
    try:
        data = (thumb.read_bytes(), preview.read_bytes())
    except FileNotFoundError:
        return None  # same content as stored: the driver has them already
    thumb.unlink(missing_ok=True)
    preview.unlink(missing_ok=True)
    return data


class Embedder:
    """Ray Data actor: one ONNX Runtime session of the visual tower; embeds the results that carry pixels."""

    def __init__(self, model_ref: Any, model_name: str) -> None:
        import ray

        from photosearch.models.clip import OnnxTower

        blob = ray.get(model_ref[0]) if isinstance(model_ref, list) else model_ref
        self._dir = tempfile.mkdtemp(prefix="photosearch-model-")
        path = Path(self._dir) / f"{model_name}-visual.onnx"
        path.write_bytes(blob)
        # models/runtime.py picks the provider: CUDA when this onnxruntime has it and a device answers, else CPU
        self.tower = OnnxTower(path, ("image",), threads=1, parallel=True)
        self.tower.session_config = {"mem_pattern": False}  # as ClipModel's: batch sizes vary from call to call

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[bytes]]:
        from photosearch.models.clip import _normalize as normalize

        results = [pickle.loads(b) for b in batch["result"]]
        todo = [r for r in results if isinstance(r, FileResult) and r.pixels is not None]
        if todo:
            emb = normalize(self.tower.run_batched(np.stack([r.pixels for r in todo])))
            for r, e in zip(todo, emb, strict=True):
                r.embedding, r.pixels = e, None
        return {"result": [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in results]}

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "_dir", ""), ignore_errors=True)


# ---- on the driver -------------------------------------------------------------------------------------------


def visual_graph(model: Any) -> Path:
    """The image graph a local run uses: for a batch-1 export (immich's), its verified variable-batch derivation
    (models/derive.py), so that an actor embeds a whole batch in one call as a local run does."""
    from photosearch.models import derive

    tower = model.visual
    if tower.resolve is not None and not tower.loaded:
        state = derive.read_state(model.model_dir, "visual")
        if state is not None:
            return state.path(model.model_dir, "visual")
    tower.session  # noqa: B018 - resolves the graph (deriving and recording it once, as a local run would)
    return tower.active_path


def run_on_cluster(
    address: str,
    tasks: Iterable[FileTask],
    model: Any,
    thumbs_dir: Path,
    take: Callable[[FileResult | FileError], None],
) -> None:
    """Send `tasks` through the cluster a window at a time; hand every result to `take` as it arrives."""
    import ray

    connect(address)

    plan = plan_for(ray.cluster_resources())
    # in a list: Ray must not resolve it before the actor wants it
    model_ref = [ray.put(visual_graph(model).read_bytes())]
    it = iter(tasks)
    while window := list(islice(it, WINDOW)):
        for r in _stream(window, plan, model, model_ref, thumbs_dir):
            take(r)


def _stream(
    window: list[FileTask], plan: ClusterPlan, model: Any, model_ref: list, thumbs_dir: Path
) -> Iterator[FileResult | FileError]:
    import ray.data

    for t in window:
        if t.known_checksum:
            t.thumbs_ready = all(p.exists() for p in thumb_paths(thumbs_dir, t.known_checksum))
    # Small windows are cut finer, so that every actor gets some of the work.
    batch = max(1, min(plan.batch_size, -(-len(window) // (2 * plan.actors))))
    ds = ray.data.from_items([{"task": pickle.dumps(t)} for t in window], override_num_blocks=-(-len(window) // batch))
    ds = ds.map_batches(
        decode_batch,
        batch_size=batch,
        fn_kwargs={"preprocessor": model.preprocessor},
        num_cpus=plan.cpus_per_actor,
    )
    ds = ds.map_batches(
        Embedder,
        batch_size=batch,
        fn_constructor_kwargs={"model_ref": model_ref, "model_name": model.name},
        compute=ray.data.ActorPoolStrategy(size=plan.actors),
        num_cpus=plan.cpus_per_actor,
        num_gpus=plan.gpus_per_actor,
    )
    for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for blob in out["result"]:
            r = pickle.loads(blob)
            if isinstance(r, FileResult):
                _store_thumbs(r, thumbs_dir)
            yield r


def _store_thumbs(r: FileResult, thumbs_dir: Path) -> None:
    """Write the shipped thumbnails under the driver's folder and point the result at them."""
    thumb, preview = thumb_paths(thumbs_dir, r.checksum)
    shipped = r.extra.pop("thumbs", None)
    if shipped is not None:
        for path, data in ((thumb, shipped[0]), (preview, shipped[1])):
            if not path.exists():
                atomic_write_bytes(path, data)
    r.thumbnail_path, r.preview_path = str(thumb), str(preview)


def describe() -> dict[str, Any]:
    """Nodes and resources of the connected cluster (for the run summary)."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    res = ray.cluster_resources()
    return {"nodes": len(nodes), "cpus": int(res.get("CPU", 0)), "gpus": int(res.get("GPU", 0))}
