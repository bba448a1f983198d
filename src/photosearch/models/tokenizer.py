"""Text tokenization with `tokenizers`, giving the same ids as the model's open_clip tokenizer.

open_clip cleans text before tokenizing (ftfy.fix_text, HTML unescaping twice, whitespace
collapsing, lower-casing for the CLIP BPE; "canonicalize" drops punctuation for SigLIP-style
models), adds start/end tokens, truncates keeping the end token and pads to the context length:
with 0 for its own CLIP tokenizer, with the tokenizer's pad token for Hugging Face tokenizers.
"""

from __future__ import annotations

import html
import string
from pathlib import Path
from typing import Any

import ftfy
import numpy as np
from tokenizers import Tokenizer

from photosearch.models.errors import ModelError
from photosearch.models.layout import read_json

_PUNCTUATION = str.maketrans("", "", string.punctuation)


def basic_clean(text: str) -> str:
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    return text.strip()


def whitespace_clean(text: str) -> str:
    return " ".join(text.split()).strip()


def canonicalize_text(text: str) -> str:
    text = text.replace("_", " ").translate(_PUNCTUATION).lower()
    return " ".join(text.split()).strip()


def clean_text(text: str, mode: str) -> str:
    if mode == "spaces":  # M-CLIP (immich): whitespace collapsed, nothing else
        return whitespace_clean(text)
    if mode == "lower":
        return whitespace_clean(basic_clean(text)).lower()
    if mode == "whitespace":
        return whitespace_clean(basic_clean(text))
    if mode == "canonicalize":
        return canonicalize_text(basic_clean(text))
    raise ModelError(f"unsupported tokenizer clean mode {mode!r}")


class ClipTokenizer:
    """Tokenizer of one model folder (`textual/tokenizer.json` + `config.json`'s `text_cfg`)."""

    def __init__(self, textual_dir: Path, text_cfg: dict[str, Any]) -> None:
        path = textual_dir / "tokenizer.json"
        try:
            self._tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # noqa: BLE001 - tokenizers raises plain Exception on bad files
            raise ModelError(f"model file {path} is corrupt: {exc}") from exc
        self.context_length = int(text_cfg.get("context_length", 77))
        kwargs = text_cfg.get("tokenizer_kwargs") or {}
        tok_cfg = read_json(textual_dir / "tokenizer_config.json")
        clip_bpe = tok_cfg.get("tokenizer_class", "CLIPTokenizer") in ("CLIPTokenizer", "CLIPTokenizerFast")
        self.hf_tokenizer = bool(text_cfg.get("hf_tokenizer_name")) or not clip_bpe
        if text_cfg.get("hf_tokenizer_name"):
            default_clean = "whitespace"  # open_clip's HFTokenizer
        elif not clip_bpe:
            default_clean = "spaces"  # M-CLIP text towers (XLM-R, LaBSE) as immich feeds them
        else:
            default_clean = "lower"  # open_clip's own CLIP tokenizer
        self.clean = kwargs.get("clean") or default_clean
        if self.hf_tokenizer:
            pad = tok_cfg.get("pad_token")
            pad = pad.get("content") if isinstance(pad, dict) else pad
            pad_id = self._tok.token_to_id(pad) if pad else None
            self.pad_id = int(pad_id) if pad_id is not None else 0
        else:
            # open_clip's SimpleTokenizer never treats text as special tokens, and pads with 0
            self._tok.encode_special_tokens = True
            self.pad_id = 0
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=self.context_length)

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """-> (ids int32 [N, context_length], lengths int [N]: tokens before padding).
        The attention mask, for towers that take one, is `arange(L) < lengths`."""
        encs = self._tok.encode_batch([clean_text(t, self.clean) for t in texts])
        ids = np.full((len(texts), self.context_length), self.pad_id, dtype=np.int32)
        lengths = np.zeros(len(texts), dtype=np.int64)
        for i, e in enumerate(encs):
            n = len(e.ids)
            ids[i, :n] = e.ids
            lengths[i] = n
        return ids, lengths

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)[0]
