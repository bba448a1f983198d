"""Text tokenization with `tokenizers`, giving the same ids as the model's open_clip tokenizer.

open_clip cleans text before tokenizing (ftfy.fix_text, HTML unescaping twice, whitespace
collapsing, lower-casing for the CLIP BPE; "canonicalize" drops punctuation for SigLIP-style
models), adds start/end tokens, truncates keeping the end token and pads to the context length:
with 0 for its own CLIP tokenizer, with the tokenizer's pad token for Hugging Face tokenizers.
"""

from __future__ import annotations

import html
import string
import unicodedata
from pathlib import Path
from typing import Any

import ftfy
import numpy as np
from tokenizers import Tokenizer

from photosearch.models.errors import ModelError
from photosearch.models.layout import read_json

_PUNCTUATION = str.maketrans("", "", string.punctuation)
# open_clip's CLIP tokenizer recognises these two strings in the text itself (ids 49406, 49407)
OPEN_CLIP_SPECIALS = {"<start_of_text>": 49406, "<end_of_text>": 49407}
_CONTRACTIONS = ("'s", "'t", "'re", "'ve", "'m", "'ll", "'d")


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


def _kind(ch: str) -> str:
    cat = unicodedata.category(ch)
    return "L" if cat[0] == "L" else "N" if cat[0] == "N" else "S" if ch.isspace() else "P"


def open_clip_pieces(text: str) -> list[str]:
    """open_clip's pre-tokenizer regex (`<specials>|'s|'t|...|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+`,
    leftmost alternative wins) as a scanner; only needed when a special string occurs in the text."""
    pieces, i, n = [], 0, len(text)
    while i < n:
        special = next((t for t in OPEN_CLIP_SPECIALS if text.startswith(t, i)), None)
        if special:
            pieces.append(special)
            i += len(special)
            continue
        c = next((c for c in _CONTRACTIONS if text[i : i + len(c)].lower() == c), None)
        if c:
            pieces.append(text[i : i + len(c)])
            i += len(c)
            continue
        kind = _kind(text[i])
        if kind == "S":
            i += 1
            continue
        j = i + 1
        if kind != "N":
            while j < n and _kind(text[j]) == kind:
                j += 1
        pieces.append(text[i:j])
        i = j
    return pieces


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
        cleaned = [clean_text(t, self.clean) for t in texts]
        rows = [e.ids for e in self._tok.encode_batch(cleaned)]
        if not self.hf_tokenizer:
            for i, t in enumerate(cleaned):
                if any(s in t for s in OPEN_CLIP_SPECIALS):
                    rows[i] = self._encode_with_specials(t)
        ids = np.full((len(texts), self.context_length), self.pad_id, dtype=np.int32)
        lengths = np.zeros(len(texts), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            lengths[i] = len(row)
        return ids, lengths

    def _encode_with_specials(self, text: str) -> list[int]:
        """Rare path: open_clip turns `<end_of_text>` typed in a query into the real token."""
        sot, eot = OPEN_CLIP_SPECIALS.values()
        body: list[int] = []
        for piece in open_clip_pieces(text):
            if piece in OPEN_CLIP_SPECIALS:
                body.append(OPEN_CLIP_SPECIALS[piece])
            else:
                body.extend(self._tok.encode(piece, add_special_tokens=False).ids)
        row = [sot, *body, eot]
        if len(row) > self.context_length:
            row = row[: self.context_length]
            row[-1] = eot
        return row

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)[0]
