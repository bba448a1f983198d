"""Image decoding and CLIP preprocessing in numpy + Pillow, numerically matching open_clip.

The reference pipeline (what the goldens are computed with) is:
    decode with Pillow (+ pillow-heif, JPEG XL plugin) -> ImageOps.exif_transpose -> convert("RGB")
    -> open_clip's eval transform for the model's preprocess_cfg (torchvision Resize / CenterCrop on
    the PIL image, ToTensor, Normalize).
Converting to RGB before resizing is what immich does when it decodes; `convert` drops alpha (it
does not composite over a colour), exactly like open_clip's own `convert("RGB")`.
open_clip does not apply EXIF orientation itself; we do, so rotated phone photos embed upright.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from photosearch.models.errors import ModelError


def register_plugins() -> None:
    """HEIC/HEIF (and AVIF where Pillow lacks it) via pillow-heif, JPEG XL via pillow-jxl-plugin."""
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        if "AVIF" not in Image.registered_extensions().values() and hasattr(pillow_heif, "register_avif_opener"):
            pillow_heif.register_avif_opener()
    except ImportError:  # optional at import time; decoding such files then fails with a clear error
        pass
    try:
        import pillow_jxl  # noqa: F401 - registers the plugin
    except ImportError:
        pass


register_plugins()

_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F", "I;16"})  # Image.reduce's modes
_RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


@dataclass(frozen=True)
class PreprocessConfig:
    """open_clip's preprocess config (`visual/preprocess_cfg.json`)."""

    size: tuple[int, int]  # (height, width)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"
    fill_color: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "preprocess_cfg.json") -> PreprocessConfig:
        try:
            size = d["size"]
            hw = (int(size[0]), int(size[1])) if isinstance(size, list | tuple) else (int(size), int(size))
            mean = tuple(float(x) for x in d.get("mean", (0.48145466, 0.4578275, 0.40821073)))
            std = tuple(float(x) for x in d.get("std", (0.26862954, 0.26130258, 0.27577711)))
            interpolation = d.get("interpolation") or "bicubic"
            resize_mode = d.get("resize_mode") or "shortest"
            fill = int(d.get("fill_color") or 0)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelError(f"model file {source} is invalid: {exc!r}") from exc
        if len(mean) == 1:
            mean = mean * 3
        if len(std) == 1:
            std = std * 3
        if resize_mode not in ("shortest", "longest", "squash"):
            raise ModelError(f"model file {source}: unsupported resize_mode {resize_mode!r}")
        if interpolation not in ("bicubic", "bilinear", "random"):
            raise ModelError(f"model file {source}: unsupported interpolation {interpolation!r}")
        return cls(hw, mean, std, interpolation, resize_mode, fill)  # type: ignore[arg-type]


class Preprocessor:
    """Picklable (plain config, no sessions): safe to send to ingest worker processes."""

    def __init__(self, config: PreprocessConfig) -> None:
        self.config = config
        self._mean = np.asarray(config.mean, dtype=np.float32)
        self._std = np.asarray(config.std, dtype=np.float32)
        # open_clip maps anything but "bilinear" (incl. "random") to bicubic at eval time
        self._resample = _RESAMPLING.get(config.interpolation, Image.Resampling.BICUBIC)

    @property
    def size(self) -> int:
        return self.config.size[0]

    @property
    def draft_size(self) -> int:
        """Smallest short side a JPEG may be draft-decoded to with embeddings unchanged (cosine >= 0.9999)."""
        return 2 * max(self.config.size)

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["config"])

    def load_image(self, source: Path | str | bytes | Image.Image, draft_to: int | None = None) -> Image.Image:
        """Decode, apply EXIF orientation, convert to RGB. `draft_to`: downscale early, never below that many
        pixels on the short side: a JPEG in the DCT domain (much faster and smaller for large photos), other
        formats by an integer box reduction right after decoding, before any converted copy is made."""
        name = "<image>" if isinstance(source, Image.Image | bytes) else str(source)
        try:
            if isinstance(source, Image.Image):
                img = source
            else:
                img = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
                if draft_to and img.format == "JPEG" and min(img.size) >= 2 * draft_to:
                    img.draft(img.mode, (draft_to, draft_to))
                img.load()
                if draft_to and min(img.size) >= 2 * draft_to and img.mode in _REDUCIBLE:
                    img = img.reduce(min(img.size) // draft_to)
            if img.getexif().get(0x0112, 1) != 1:
                img = ImageOps.exif_transpose(img)
            if img.mode != "RGB":
                img = img.convert("RGB")
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise ImageDecodeError(f"cannot decode image {name}: {exc}") from exc
        return img

    def resize_crop(self, img: Image.Image) -> Image.Image:
        """open_clip's geometric transform (torchvision Resize/CenterCrop semantics on PIL)."""
        h, w = self.config.size
        mode = self.config.resize_mode
        if mode == "squash":
            return _resize(img, (h, w), self._resample)
        if mode == "shortest" and h == w:
            iw, ih = img.size
            short, long = (iw, ih) if iw <= ih else (ih, iw)
            new_long = int(h * long / short)
            out = (new_long, h) if iw <= ih else (h, new_long)  # (height, width)
            img = _resize(img, out, self._resample)
        else:  # ResizeKeepRatio: shortest edge (non-square target) or longest edge
            longest = 1.0 if mode == "longest" else 0.0
            iw, ih = img.size
            rh, rw = ih / h, iw / w
            ratio = max(rh, rw) * longest + min(rh, rw) * (1.0 - longest)
            # ResizeKeepRatio without an explicit interpolation ("shortest", non-square) is bicubic
            resample = self._resample if mode == "longest" else Image.Resampling.BICUBIC
            img = _resize(img, (round(ih / ratio), round(iw / ratio)), resample)
        return _center_crop_or_pad(img, (h, w), self.config.fill_color if mode == "longest" else 0)

    def __call__(self, img: Image.Image) -> np.ndarray:
        """RGB PIL image -> float32 [3, H, W], normalised like torchvision ToTensor + Normalize."""
        if img.mode != "RGB":
            img = img.convert("RGB")
        img = self.resize_crop(img)
        arr = np.asarray(img, dtype=np.uint8).astype(np.float32) / np.float32(255.0)
        arr = (arr - self._mean) / self._std
        return np.ascontiguousarray(arr.transpose(2, 0, 1))


class ImageDecodeError(ModelError):
    """A file that Pillow (with the HEIF/JXL plugins) cannot decode."""


def _resize(img: Image.Image, hw: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    h, w = hw
    if img.size == (w, h):
        return img
    return img.resize((w, h), resample)


def _center_crop_or_pad(img: Image.Image, hw: tuple[int, int], fill: int) -> Image.Image:
    ch, cw = hw
    iw, ih = img.size
    if cw > iw or ch > ih:
        left, top = (cw - iw) // 2 if cw > iw else 0, (ch - ih) // 2 if ch > ih else 0
        right, bottom = (cw - iw + 1) // 2 if cw > iw else 0, (ch - ih + 1) // 2 if ch > ih else 0
        canvas = Image.new(img.mode, (iw + left + right, ih + top + bottom), (fill,) * len(img.getbands()))
        canvas.paste(img, (left, top))
        img = canvas
        iw, ih = img.size
        if (iw, ih) == (cw, ch):
            return img
    top = int(round((ih - ch) / 2.0))
    left = int(round((iw - cw) / 2.0))
    return img.crop((left, top, left + cw, top + ch))
