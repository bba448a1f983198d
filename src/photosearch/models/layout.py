"""The immich model folder: which files a model needs and reading its JSON with clear errors.

<model>/config.json                  open_clip model config (embed_dim, vision_cfg, text_cfg)
<model>/visual/model.onnx            image tower: `image` float32 [N,3,S,S] -> `embedding`
<model>/visual/preprocess_cfg.json   open_clip preprocess config (size, mean, std, ...)
<model>/textual/model.onnx           text tower: `text` int32 [N,L] -> `embedding`
<model>/textual/tokenizer.json       Hugging Face tokenizer (+ tokenizer_config.json ...)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from photosearch.models.errors import ModelError

REQUIRED_FILES = (
    "config.json",
    "visual/model.onnx",
    "visual/preprocess_cfg.json",
    "textual/model.onnx",
    "textual/tokenizer.json",
    "textual/tokenizer_config.json",
)
OPTIONAL_FILES = ("textual/special_tokens_map.json", "textual/vocab.json", "textual/merges.txt")


def missing_files(model_dir: Path) -> list[str]:
    return [f for f in REQUIRED_FILES if not (model_dir / f).is_file()]


def validate_layout(model_dir: Path) -> None:
    """Raise ModelError naming every missing file, and any JSON file that does not parse."""
    if not model_dir.is_dir():
        raise ModelError(f"model folder {model_dir} does not exist")
    missing = missing_files(model_dir)
    if missing:
        raise ModelError(
            f"model folder {model_dir} is incomplete: missing {', '.join(missing)} "
            "(expected the immich layout: config.json, visual/, textual/)"
        )
    for f in REQUIRED_FILES:
        if f.endswith(".json"):
            read_json(model_dir / f)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"model file {path} is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"model file {path} is corrupt: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"model file {path} is corrupt: expected a JSON object")
    return data
