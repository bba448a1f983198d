"""ThumbHash (Evan Wallace's image placeholder, as immich stores it), encoder only, in numpy.

No maintained PyPI package: the candidates are unmaintained single releases from 2023 or brand-new forks,
and the encoder is a small, fully specified algorithm (github.com/evanw/thumbhash, `rgbaToThumbHash`).
Ours follows the reference step by step, vectorised; JS `Math.round` is `floor(x + 0.5)`.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

MAX_SIDE = 100


def _round(x: float) -> int:
    return math.floor(x + 0.5)


def _encode_channel(ch: np.ndarray, nx: int, ny: int) -> tuple[float, list[float], float]:
    h, w = ch.shape
    fx = np.cos(np.pi / w * np.arange(nx)[:, None] * (np.arange(w)[None, :] + 0.5))  # [nx, w]
    fy = np.cos(np.pi / h * np.arange(ny)[:, None] * (np.arange(h)[None, :] + 0.5))  # [ny, h]
    coeffs = fy @ ch @ fx.T / (w * h)  # [ny, nx]
    dc, ac = 0.0, []
    for cy in range(ny):
        cx = 0
        while cx * ny < nx * (ny - cy):
            f = float(coeffs[cy, cx])
            if cx or cy:
                ac.append(f)
            else:
                dc = f
            cx += 1
    scale = max((abs(f) for f in ac), default=0.0)
    if scale:
        ac = [0.5 + 0.5 / scale * f for f in ac]
    return dc, ac, scale


def rgba_to_thumbhash(rgba: np.ndarray) -> bytes:
    """`rgba`: uint8 [h, w, 4] with h, w <= 100."""
    h, w = rgba.shape[:2]
    if w > MAX_SIDE or h > MAX_SIDE:
        raise ValueError(f"{w}x{h} doesn't fit in {MAX_SIDE}x{MAX_SIDE}")
    px = rgba.astype(np.float64)
    alpha = px[..., 3] / 255
    avg_a = float(alpha.sum())
    avg = [float((alpha / 255 * px[..., i]).sum()) for i in range(3)]
    if avg_a:
        avg = [v / avg_a for v in avg]
    has_alpha = avg_a < w * h
    l_limit = 5 if has_alpha else 7
    lx = max(1, _round(l_limit * w / max(w, h)))
    ly = max(1, _round(l_limit * h / max(w, h)))
    r, g, b = (avg[i] * (1 - alpha) + alpha / 255 * px[..., i] for i in range(3))
    l_ch, p_ch, q_ch = (r + g + b) / 3, (r + g) / 2 - b, r - g
    l_dc, l_ac, l_scale = _encode_channel(l_ch, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = _encode_channel(p_ch, 3, 3)
    q_dc, q_ac, q_scale = _encode_channel(q_ch, 3, 3)
    a_dc, a_ac, a_scale = _encode_channel(alpha, 5, 5) if has_alpha else (0.0, [], 0.0)
    landscape = w > h
    header24 = (
        _round(63 * l_dc)
        | (_round(31.5 + 31.5 * p_dc) << 6)
        | (_round(31.5 + 31.5 * q_dc) << 12)
        | (_round(31 * l_scale) << 18)
        | (int(has_alpha) << 23)
    )
    header16 = (
        (ly if landscape else lx) | (_round(63 * p_scale) << 3) | (_round(63 * q_scale) << 9) | (int(landscape) << 15)
    )
    out = [header24 & 255, (header24 >> 8) & 255, header24 >> 16, header16 & 255, header16 >> 8]
    if has_alpha:
        out.append(_round(15 * a_dc) | (_round(15 * a_scale) << 4))
    start = len(out)
    factors = l_ac + p_ac + q_ac + (a_ac if has_alpha else [])
    out.extend([0] * ((len(factors) + 1) // 2))
    for i, f in enumerate(factors):
        out[start + (i >> 1)] |= _round(15 * f) << ((i & 1) << 2)
    return bytes(out)


def thumbhash_of(img: Image.Image) -> bytes:
    """ThumbHash of an image (downscaled to fit 100×100 first, as immich does)."""
    small = img.copy() if max(img.size) <= MAX_SIDE else img.resize(_fit(img.size), Image.Resampling.BILINEAR)
    return rgba_to_thumbhash(np.asarray(small.convert("RGBA")))


def _fit(size: tuple[int, int]) -> tuple[int, int]:
    w, h = size
    s = MAX_SIDE / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def average_rgba(hash_: bytes) -> tuple[float, float, float, float]:
    """The average colour a ThumbHash encodes (reference `thumbHashToAverageRGBA`), each 0..1."""
    header = hash_[0] | (hash_[1] << 8) | (hash_[2] << 16)
    lum = (header & 63) / 63
    p = ((header >> 6) & 63) / 31.5 - 1
    q = ((header >> 12) & 63) / 31.5 - 1
    a = (hash_[5] & 15) / 15 if header >> 23 else 1.0
    b = lum - 2 / 3 * p
    r = (3 * lum - b + q) / 2
    g = r - q

    def clamp(v: float) -> float:
        return max(0.0, min(1.0, v))

    return clamp(r), clamp(g), clamp(b), a
