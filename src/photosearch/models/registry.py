"""Installed models: download from Hugging Face (immich's repos), import a folder, list, describe.

A model is a folder `settings.model_cache_dir / NAME` in the immich layout. Each install writes
`.photosearch.json` beside the files: where they came from and the sha256 of every file, so
`models info` can tell a damaged install from a good one. Installs go to a staging folder first
and are renamed into place, so an interrupted download never leaves a half model behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photosearch.models.errors import ModelError
from photosearch.models.layout import OPTIONAL_FILES, REQUIRED_FILES, missing_files, validate_layout

if TYPE_CHECKING:
    from photosearch.config import Settings

HF_ORG = "immich-app"
MANIFEST = ".photosearch.json"
# onnx external-data files and sentencepiece vocabularies some immich models carry
EXTRA_FILES = (
    "visual/model.onnx_data",
    "textual/model.onnx_data",
    "textual/sentencepiece.bpe.model",
    "textual/spiece.model",
)
MODEL_FILES = (*REQUIRED_FILES, *OPTIONAL_FILES, *EXTRA_FILES)


def model_path(settings: Settings, name: str | None = None) -> Path:
    name = name or settings.model_name
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ModelError(f"invalid model name {name!r}")
    return settings.model_cache_dir / name


TEST_MODEL_NOTE = (
    "the active model ({name}) is a test model with random weights: rankings are meaningless."
    " Install a real one with `photosearch models download`"
)


def is_test_model(settings: Settings, name: str | None = None) -> bool:
    """Whether a model says it has random weights (`"test_model": true` in its config.json, as the bundled
    fixtures do), so the CLI and the API can warn that its rankings mean nothing."""
    try:
        config = json.loads((model_path(settings, name) / "config.json").read_text())
    except (OSError, ValueError, ModelError):
        return False
    return isinstance(config, dict) and config.get("test_model") is True


def default_repo(settings: Settings, name: str) -> str:
    if settings.model_repo and name == settings.model_name:
        return settings.model_repo
    return f"{HF_ORG}/{name}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _manifest(model_dir: Path, source: dict[str, Any]) -> dict[str, Any]:
    files = {f: sha256_file(model_dir / f) for f in MODEL_FILES if (model_dir / f).is_file()}
    return {**source, "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sha256": files}


def read_manifest(model_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((model_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def verify(model_dir: Path) -> list[str]:
    """Files whose sha256 differs from the install manifest (empty when intact or unrecorded)."""
    man = read_manifest(model_dir) or {}
    bad = []
    for f, digest in (man.get("sha256") or {}).items():
        p = model_dir / f
        if not p.is_file() or sha256_file(p) != digest:
            bad.append(f)
    return bad


def _install(staging: Path, dest: Path, source: dict[str, Any], force: bool) -> Path:
    """Validate the staged folder, record checksums, and move it into place."""
    try:
        validate_layout(staging)
        (staging / MANIFEST).write_text(json.dumps(_manifest(staging, source), indent=2) + "\n")
        if dest.exists():
            if not force:
                raise ModelError(f"model {dest.name!r} is already installed in {dest.parent} (use --force to replace)")
            old = dest.with_name(f".old-{dest.name}-{time.time_ns()}")
            dest.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _derive(model_dir: Path, settings: Settings) -> Path:
    """Derive the faster graphs the model allows now (see models/derive.py), not on the first query.
    Never fails the install: a graph that cannot be derived or verified leaves the original in use."""
    from photosearch.models.clip import ClipModel

    model = ClipModel(model_dir, model_dir.name, threads=settings.threads)
    model.textual.input_shape()
    model.visual.input_shape()
    return model_dir


def _staging(settings: Settings, name: str) -> Path:
    settings.model_cache_dir.mkdir(parents=True, exist_ok=True)
    d = settings.model_cache_dir / f".staging-{name}-{time.time_ns()}"
    d.mkdir()
    return d


def download_model(
    settings: Settings, name: str, *, repo: str | None = None, revision: str | None = None, force: bool = False,
    progress: bool = True,
) -> Path:  # fmt: skip
    """Fetch an immich-format model from the Hugging Face hub into the model cache."""
    dest = model_path(settings, name)
    if dest.exists() and not force and not missing_files(dest):
        return dest
    repo = repo or default_repo(settings, name)
    import huggingface_hub
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    staging = _staging(settings, name)
    (disable_progress_bars if not progress else enable_progress_bars)()
    try:
        snap = huggingface_hub.snapshot_download(
            repo_id=repo, revision=revision, local_dir=staging, allow_patterns=list(MODEL_FILES)
        )
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except Exception as exc:  # noqa: BLE001 - network, auth, missing repo: all end in one clear line
        shutil.rmtree(staging, ignore_errors=True)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"cannot download model {name!r} from Hugging Face repo {repo!r} ({type(exc).__name__}: {reason}). "
            f"Offline? Copy an immich-format model folder to this machine and run "
            f"`photosearch models import DIR`."
        ) from exc
    finally:
        enable_progress_bars()
    shutil.rmtree(Path(snap) / ".cache", ignore_errors=True)  # huggingface_hub's local_dir metadata
    dest = _install(staging, dest, {"source": "huggingface", "repo": repo, "revision": revision}, force)
    return _derive(dest, settings)


def import_model(settings: Settings, src: Path, *, name: str | None = None, force: bool = False) -> Path:
    """Copy a model folder (immich layout) into the model cache, after checking it loads."""
    from photosearch.models.clip import ClipModel

    src = Path(src).expanduser().resolve()
    validate_layout(src)
    ClipModel(src, threads=1, derive_graphs=False).info()  # both ONNX files parse and match the config
    dest = model_path(settings, name or src.name)
    staging = _staging(settings, dest.name)
    try:
        for f in MODEL_FILES:
            if (src / f).is_file():
                (staging / f).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src / f, staging / f)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelError(f"cannot copy model files from {src}: {exc}") from exc
    return _derive(_install(staging, dest, {"source": "import", "path": str(src)}, force), settings)


def text_languages(d: Path) -> str:
    """Which languages a model's text tower reads: OpenAI CLIP's tokenizer (lower-cased byte BPE with `</w>` word
    ends) was trained on English captions; immich's multilingual exports (M-CLIP XLM-R / LaBSE, NLLB-SigLIP) use
    their own case-sensitive multilingual tokenizers (~50-200 languages, see the model's card)."""
    try:
        model = json.loads((d / "textual" / "tokenizer.json").read_text()).get("model") or {}
    except (OSError, ValueError, AttributeError):
        return "?"
    return "English" if model.get("end_of_word_suffix") == "</w>" else "multilingual"


def list_models(settings: Settings) -> list[dict[str, Any]]:
    """Installed model folders (complete or not), the active one marked."""
    root = settings.model_cache_dir
    rows = []
    if root.is_dir():
        for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not (d / "config.json").is_file() and not (d / "visual").is_dir():
                continue
            missing = missing_files(d)
            man = read_manifest(d) or {}
            dim = None
            try:
                dim = json.loads((d / "config.json").read_text()).get("embed_dim")
            except (OSError, ValueError, AttributeError):
                pass
            size = sum(p.stat().st_size for p in d.rglob("*") if p.is_file())
            rows.append(
                {
                    "name": d.name,
                    "active": d.name == settings.model_name,
                    "embed_dim": dim,
                    "languages": text_languages(d),
                    "size": f"{size / 1e6:.1f} MB",
                    "status": "ok" if not missing else "missing " + ", ".join(missing),
                    "source": man.get("repo") or man.get("path") or man.get("source") or "",
                }
            )
    if not any(r["name"] == settings.model_name for r in rows):
        rows.append(
            {"name": settings.model_name, "active": True, "embed_dim": None, "languages": "", "size": "",
             "status": "not installed", "source": default_repo(settings, settings.model_name)}
        )  # fmt: skip
    return rows


def model_info(settings: Settings, name: str | None = None) -> dict[str, Any]:
    from photosearch.models.clip import ClipModel

    d = model_path(settings, name)
    if not d.is_dir():
        raise ModelError(
            f"model {d.name!r} is not installed in {d.parent}: run `photosearch models download {d.name}` "
            "or `photosearch models import DIR`"
        )
    info = ClipModel(d, d.name, threads=settings.threads).info()
    man = read_manifest(d) or {}
    info["active"] = d.name == settings.model_name
    info["source"] = man.get("repo") or man.get("path") or "unknown"
    info["installed_at"] = man.get("installed_at")
    if man.get("int8"):
        info["int8_agreement"] = man["int8"]
    corrupt = verify(d)
    info["checksums"] = "not recorded" if not man.get("sha256") else ("ok" if not corrupt else f"MISMATCH {corrupt}")
    return info


def save_active_model(config_file: Path, name: str) -> None:
    """Persist `model_name` in the TOML settings file (top-level key; other content kept)."""
    import re

    text = config_file.read_text() if config_file.is_file() else ""
    line = f"model_name = {json.dumps(name)}"
    pattern = re.compile(r"^model_name\s*=.*$", re.MULTILINE)
    first_table = re.search(r"^\[", text, re.MULTILINE)
    head_end = first_table.start() if first_table else len(text)
    if pattern.search(text[:head_end]):
        text = pattern.sub(line, text[:head_end], count=1) + text[head_end:]
    else:
        text = line + "\n" + text
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(text)
