"""Query arithmetic, like rclip: `"beach" + "sunset" - "people"`, weighted terms (`2:sunset`), and an image or a
photo plus or minus words (`--image a.jpg --add "at night"`).

Each term is embedded and L2-normalised, the terms are summed with their signed weights, and the sum is
normalised again: CLIP's towers put the terms on one sphere, so the sum points between them (rclip does the same).
A query is arithmetic only when it has an operator with spaces around it (` + `, ` - `) or a `weight:` prefix
outside quotes, so "t-shirt", "a+b" or "3:10 to Yuma" in quotes stay plain text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

MAX_TERMS = 16
_WEIGHT = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*:\s*(.+)$", re.S)


class Term(NamedTuple):
    weight: float
    text: str


def _split(text: str) -> list[tuple[str, str]]:
    """(sign, raw term) pieces split at top-level ` + ` / ` - ` (outside double quotes)."""
    pieces, sign, buf, quoted, i = [], "+", [], False, 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "+-" and i > 0 and text[i - 1] == " " and text[i + 1 : i + 2] == " ":
            pieces.append((sign, "".join(buf)))
            sign, buf = ch, []
            i += 1
            continue
        buf.append(ch)
        i += 1
    pieces.append((sign, "".join(buf)))
    return pieces


def _term(sign: str, raw: str) -> Term | None:
    raw = raw.strip()
    weight = 1.0
    if not raw.startswith('"'):
        m = _WEIGHT.match(raw)
        if m:
            weight, raw = float(m.group(1)), m.group(2).strip()
    if len(raw) >= 2 and raw.startswith('"') and raw.endswith('"'):
        raw = raw[1:-1].strip()
    if not raw:
        return None
    return Term(-weight if sign == "-" else weight, raw)


def parse(text: str) -> list[Term]:
    """The terms of a text query: one term of weight 1 for plain text. Raises ValueError for an empty term
    (`"a" + `) or too many terms."""
    pieces = _split(text)
    if len(pieces) == 1:
        only = pieces[0][1].strip()
        m = _WEIGHT.match(only) if not only.startswith('"') else None
        if m is None:
            unquoted = only[1:-1].strip() if len(only) >= 2 and only[0] == only[-1] == '"' else only
            return [Term(1.0, unquoted or only)]
    terms = [_term(sign, raw) for sign, raw in pieces]
    if any(t is None for t in terms):
        raise ValueError("every + or - in the query needs a term on both sides")
    if len(terms) > MAX_TERMS:
        raise ValueError(f"at most {MAX_TERMS} terms in one query")
    return [t for t in terms if t is not None]


def is_arithmetic(text: str) -> bool:
    terms = parse(text)
    return len(terms) > 1 or terms[0].weight != 1.0


def combine(parts: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """Σ weight · v/|v|, normalised. Raises ValueError when the terms cancel out."""
    total = np.zeros_like(parts[0][1], dtype=np.float32)
    for weight, v in parts:
        v = np.asarray(v, dtype=np.float32)
        total += weight * v / max(float(np.linalg.norm(v)), 1e-12)
    norm = float(np.linalg.norm(total))
    if norm < 1e-6:
        raise ValueError("the query's terms cancel each other out")
    return total / norm


def text_vector(encode: Callable[[str], np.ndarray], text: str) -> np.ndarray:
    """The vector of a text query: arithmetic or plain."""
    return combine([(t.weight, encode(t.text)) for t in parse(text)])


__all__ = ["MAX_TERMS", "Term", "combine", "is_arithmetic", "parse", "text_vector"]
