"""CLIP towers on ONNX Runtime: one lazily created session per tower, batched when the model allows.

immich's exports have a fixed batch of 1 (and 77 tokens); our own exports (`models export`) have
a dynamic batch axis and, for causal CLIP text towers, a dynamic token axis, which lets a short
query run on a few positions instead of the full context.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from photosearch.models import derive
from photosearch.models.errors import ModelError
from photosearch.models.layout import read_json, validate_layout
from photosearch.models.preprocess import PreprocessConfig, Preprocessor
from photosearch.models.runtime import Session, SessionConfig, create_session
from photosearch.models.tokenizer import ClipTokenizer

if TYPE_CHECKING:
    import onnxruntime as ort

    from photosearch.config import Settings

MAX_BATCH = 32
TEXT_SPIN_US = 25  # the longest a text session's thread spins waiting for the next op (runtime.SessionConfig)
_NP_TYPES = {"tensor(float)": np.float32, "tensor(int32)": np.int32, "tensor(int64)": np.int64}


class OnnxTower:
    """One ONNX model file, its session created on first use (thread-safe).

    `input_names`: accepted names of the main input, first match wins (text towers: `text` for
    open_clip exports, `input_ids` + `attention_mask` for immich's M-CLIP exports).
    `session_config` (SessionConfig fields) and `providers` tune the session; `resolve(config, providers)`
    creates the session instead, returning it and the file it runs (a verified
    derived graph, or `path`).
    `parallel`: throughput over latency. The session then runs single-threaded and a batch is
    split into `threads` chunks run side by side (one image each for batch-1 models). Measured
    on a 2-core box shared with other work, this beats one 2-thread inference (whose threads
    spin and wait on each other) and it is the only way to use several cores with immich's
    batch-1 exports. Text towers keep multi-threaded sessions: a query is one latency-bound call.
    """

    def __init__(
        self,
        path: Path,
        input_names: tuple[str, ...],
        threads: int,
        *,
        parallel: bool = False,
        resolve: Callable[[SessionConfig, list[str] | None], tuple[Session, Path]] | None = None,
    ) -> None:
        self.path = self.active_path = path
        self.resolve = resolve
        self.session_config: dict[str, Any] = {}
        self.providers: list[str] | None = None
        self.provider = ""
        self.skipped: dict[str, str] = {}
        self.input_names = input_names
        self.input_name = input_names[0]
        self.threads = max(1, int(threads))
        self.concurrent_runs = self.threads if parallel else 1
        self._session: ort.InferenceSession | None = None
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self.extra_inputs: list[str] = []
        self._dtypes: dict[str, Any] = {}

    @property
    def session(self) -> ort.InferenceSession:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._create(1 if self.concurrent_runs > 1 else self.threads)
        return self._session

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def _create(self, threads: int) -> ort.InferenceSession:
        config = SessionConfig(threads=threads, **self.session_config)
        if self.resolve is not None:
            made, path = self.resolve(config, self.providers)
        else:
            made, path = create_session(self.path, config, self.providers), self.path
        sess = made.session
        names = [i.name for i in sess.get_inputs()]
        found = [n for n in self.input_names if n in names]
        if not found:
            raise ModelError(f"model file {path} has inputs {names}, expected one of {self.input_names}")
        self.active_path, self.provider, self.skipped = path, made.provider, made.skipped
        if made.provider in ("CUDAExecutionProvider", "ROCMExecutionProvider"):
            self.concurrent_runs = 1  # a GPU takes the whole batch at once
        self.input_name = found[0]
        self.extra_inputs = [n for n in names if n != self.input_name]
        self._dtypes = {i.name: _NP_TYPES.get(i.type) for i in sess.get_inputs()}
        return sess

    def input_shape(self) -> list[Any]:
        inp = next(i for i in self.session.get_inputs() if i.name == self.input_name)
        return list(inp.shape)

    @property
    def fixed_batch(self) -> int | None:
        """The batch size baked into the model (immich exports: 1), or None when dynamic."""
        return _fixed_batch(self.session, (self.input_name,))

    def run(self, x: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> np.ndarray:
        sess = self.session
        feeds = {self.input_name: x, **(extra or {})}
        for k, v in feeds.items():  # e.g. int64 token ids for exports that declare them
            want = self._dtypes.get(k)
            if want is not None and v.dtype != want:
                feeds[k] = v.astype(want)
        try:
            out = sess.run(None, feeds)[0]
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"inference with {self.path} failed: {exc}") from exc
        return np.asarray(out, dtype=np.float32)

    def run_batched(
        self, x: np.ndarray, extra: dict[str, np.ndarray] | None = None, max_batch: int = MAX_BATCH
    ) -> np.ndarray:
        """Dynamic batch axis: `concurrent_runs` chunks of at most `max_batch`; fixed batch axis: chunks
        of that size (the last one padded). Chunks run side by side when the tower is parallel."""
        extra = extra or {}
        fixed = self.fixed_batch
        step = fixed or max(1, min(max_batch, -(-len(x) // self.concurrent_runs)))
        if len(x) <= step and (fixed is None or len(x) == fixed):
            return self.run(x, extra)
        arrays = {self.input_name: x, **extra}
        chunks = []
        for i in range(0, len(x), step):
            chunk = {k: v[i : i + step] for k, v in arrays.items()}
            if fixed is not None and len(x) - i < fixed:  # pad the last chunk of a fixed-batch model
                chunk = {k: np.concatenate([v, np.repeat(v[-1:], fixed - len(v), axis=0)]) for k, v in chunk.items()}
            chunks.append(chunk)

        def one(feeds: dict[str, np.ndarray]) -> np.ndarray:
            main = feeds.pop(self.input_name)
            return self.run(main, feeds)

        if self.concurrent_runs > 1 and len(chunks) > 1:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.concurrent_runs, thread_name_prefix="onnx")
            parts = list(self._pool.map(one, chunks))
        else:
            parts = [one(c) for c in chunks]
        return np.concatenate(parts)[: len(x)]

    def unload(self) -> None:
        self._session = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


class ClipModel:
    """A CLIP model folder in the immich layout: preprocessing, tokenizer and both towers.

    `derive_graphs=False` runs the model files as they are and writes nothing into the folder
    (checking a folder before import)."""

    def __init__(
        self,
        model_dir: Path,
        name: str | None = None,
        *,
        threads: int = 1,
        text_cache_size: int = 1024,
        derive_graphs: bool = True,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.name = name or self.model_dir.name
        validate_layout(self.model_dir)
        self.config = read_json(self.model_dir / "config.json")
        try:
            self.embed_dim = int(self.config["embed_dim"])
            self.text_cfg: dict[str, Any] = dict(self.config.get("text_cfg") or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"model file {self.model_dir / 'config.json'} lacks embed_dim/text_cfg") from exc
        self.context_length = int(self.text_cfg.get("context_length", 77))
        cfg_path = self.model_dir / "visual" / "preprocess_cfg.json"
        self.preprocessor = Preprocessor(PreprocessConfig.from_dict(read_json(cfg_path), str(cfg_path)))
        self.image_size = self.preprocessor.size
        self.visual = OnnxTower(
            self.model_dir / "visual" / "model.onnx",
            ("image",),
            threads,
            parallel=True,
            resolve=self._visual_session if derive_graphs else None,
        )
        self.textual = OnnxTower(
            self.model_dir / "textual" / "model.onnx",
            ("text", "input_ids"),
            threads,
            resolve=self._text_session if derive_graphs else None,
        )
        # a query's threads spin between ops (no wake-up per op: a short query is ~400 small ops), but each
        # wait spins TEXT_SPIN_US at most, so the pool sleeps right after the call instead of spinning on into cores
        # that indexing or other requests need: faster than sleeping threads idle and loaded, at the same CPU
        # per query; unbounded spinning doubled it (benchmarks/embed_bench.py)
        self.textual.session_config = {"spin": True, "spin_us": TEXT_SPIN_US}
        # batch sizes vary from call to call; planned allocations cost 2-6 % (embed_bench.py)
        self.visual.session_config = {"mem_pattern": False}
        self.graphs: dict[str, derive.Derived] = {}  # tower -> which graph runs and why
        self._tokenizer: ClipTokenizer | None = None
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._text_cache_size = text_cache_size
        self._cache_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClipModel({self.name!r}, dim={self.embed_dim}, dir={str(self.model_dir)!r})"

    @property
    def tokenizer(self) -> ClipTokenizer:
        if self._tokenizer is None:
            self._tokenizer = ClipTokenizer(self.model_dir / "textual", self.text_cfg)
        return self._tokenizer

    def _text_session(self, config: SessionConfig, providers: list[str] | None) -> tuple[Session, Path]:
        return self._derived_session("textual", config, providers)

    def _visual_session(self, config: SessionConfig, providers: list[str] | None) -> tuple[Session, Path]:
        return self._derived_session("visual", config, providers)

    def _derived_session(self, tower: str, config: SessionConfig, providers: list[str] | None) -> tuple[Session, Path]:
        """A fixed-shape tower runs its verified derivation (derived here, once, when the install
        did not); a tower that is variable already, or failed the check, runs as is."""
        original, threads = self.model_dir / tower / "model.onnx", config.threads
        state = derive.read_state(self.model_dir, tower)
        if state is None:
            sess = create_session(original, config, providers)
            if tower == "textual":
                if derive.fixed_text_length(sess) is None:
                    return sess, original
                state = derive.derive_text(self.model_dir, self.tokenizer, sess, threads)
            else:
                if derive.fixed_batch(sess) != 1:
                    return sess, original
                state = derive.derive_visual(self.model_dir, self.image_size, sess, threads)
            self.graphs[tower] = state
            if state.graph != "derived":
                return sess, original
        self.graphs[tower] = state
        path = state.path(self.model_dir, tower)
        return create_session(path, config, providers), path

    # images -------------------------------------------------------------------------------------------

    def encode_pixels(self, batch: np.ndarray) -> np.ndarray:
        """Preprocessed float32 [N, 3, S, S] -> L2-normalised float32 [N, D]."""
        batch = np.asarray(batch, dtype=np.float32)
        expect = (3, self.image_size, self.image_size)
        if batch.ndim != 4 or batch.shape[1:] != expect:
            raise ModelError(f"{self.name}: expected pixels of shape [N, {', '.join(map(str, expect))}]")
        if len(batch) == 0:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        return self._checked(_normalize(self.visual.run_batched(np.ascontiguousarray(batch))))

    def encode_images(self, images: Sequence[Path | str | bytes | Image.Image]) -> np.ndarray:
        pre = self.preprocessor
        if not images:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        pixels = np.stack([pre(pre.load_image(im, draft_to=pre.draft_size)) for im in images])
        return self.encode_pixels(pixels)

    # text ---------------------------------------------------------------------------------------------

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Strings -> L2-normalised float32 [N, D]."""
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        ids, lengths = self.tokenizer.encode(list(texts))
        shape = self.textual.input_shape()
        masked = "attention_mask" in self.textual.extra_inputs
        if (
            len(shape) > 1
            and not isinstance(shape[1], int)
            and derive.padding_is_inert(masked, self.tokenizer.hf_tokenizer)
        ):
            # dynamic token axis where padding cannot matter: short queries skip it
            ids = np.ascontiguousarray(ids[:, : max(2, int(lengths.max()))])
        extra = {}
        if masked:
            extra["attention_mask"] = (np.arange(ids.shape[1])[None, :] < lengths[:, None]).astype(np.int32)
        return self._checked(_normalize(self.textual.run_batched(ids, extra)))

    def encode_text(self, text: str) -> np.ndarray:
        """One query -> [D], LRU-cached (search repeats queries: paging, filters, the web UI)."""
        with self._cache_lock:
            hit = self._text_cache.get(text)
            if hit is not None:
                self._text_cache.move_to_end(text)
                return hit
        vec = self.encode_texts([text])[0]
        vec.flags.writeable = False
        if self._text_cache_size > 0:
            with self._cache_lock:
                self._text_cache[text] = vec
                while len(self._text_cache) > self._text_cache_size:
                    self._text_cache.popitem(last=False)
        return vec

    # misc ---------------------------------------------------------------------------------------------

    def _graph(self, tower: str, what: str) -> str:
        state = self.graphs.get(tower)
        return state.describe(what) if state else "model file"

    def _providers(self) -> str:
        used = {t.provider for t in (self.visual, self.textual) if t.provider}
        text = ", ".join(sorted(used))
        skipped = {**self.visual.skipped, **self.textual.skipped}
        if skipped:
            text += " (" + "; ".join(f"{k} unavailable: {v}" for k, v in skipped.items()) + ")"
        return text

    def _checked(self, emb: np.ndarray) -> np.ndarray:
        if emb.ndim != 2 or emb.shape[1] != self.embed_dim:
            raise ModelError(
                f"{self.name}: towers return {emb.shape[1:]} embeddings but config.json says embed_dim {self.embed_dim}"
            )
        return emb

    def info(self) -> dict[str, Any]:
        """Dimensions and axes, read from the model's own files (loads both sessions)."""
        vshape, tshape = self.visual.input_shape(), self.textual.input_shape()
        return {
            "name": self.name,
            "path": str(self.model_dir),
            "embed_dim": self.embed_dim,
            "image_size": self.image_size,
            "context_length": self.context_length,
            "visual_batch": "dynamic" if self.visual.fixed_batch is None else self.visual.fixed_batch,
            "textual_batch": "dynamic" if self.textual.fixed_batch is None else self.textual.fixed_batch,
            "text_length": "dynamic" if not isinstance(tshape[1], int) else tshape[1],
            "text_graph": self._graph("textual", "variable-length"),
            "image_graph": self._graph("visual", "variable-batch"),
            "provider": self._providers(),
            "visual_input": vshape,
            "threads": f"text: 1 x {self.textual.threads}; images: {self.visual.concurrent_runs} x 1",
            "interpolation": self.preprocessor.config.interpolation,
            "resize_mode": self.preprocessor.config.resize_mode,
        }


def _fixed_batch(sess: ort.InferenceSession, input_names: tuple[str, ...]) -> int | None:
    dim = next(i for i in sess.get_inputs() if i.name in input_names).shape[0]
    return dim if isinstance(dim, int) and dim > 0 else None


def _normalize(x: np.ndarray) -> np.ndarray:
    """Exports already normalise; doing it again is cheap and guards third-party models."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def load_clip(settings: Settings) -> ClipModel:
    """The active model (`settings.model_cache_dir / settings.model_name`), sessions created lazily."""
    model_dir = settings.model_cache_dir / settings.model_name
    if not model_dir.is_dir():
        raise ModelError(
            f"model {settings.model_name!r} is not installed in {settings.model_cache_dir}: run "
            f"`photosearch models download {settings.model_name}` or, offline, "
            f"`photosearch models import DIR`"
        )
    return ClipModel(model_dir, settings.model_name, threads=settings.threads, text_cache_size=settings.text_cache_size)
