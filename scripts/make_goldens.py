"""Reference embeddings for the tiny CLIP fixture, computed with the torch reference (open_clip).

    /work/venv-torch/bin/python scripts/make_goldens.py     # after scripts/make_tiny_clip.py

Reference image pipeline: Pillow decode (+ pillow-heif, JPEG XL plugin) -> ImageOps.exif_transpose
-> convert("RGB") -> open_clip's eval transform for the model's preprocess_cfg -> encode_image
(normalised). open_clip itself does not apply EXIF orientation; immich does when decoding, so the
reference does too. Reference text pipeline: open_clip.get_tokenizer(model) -> encode_text
(normalised). Writes tests/fixtures/goldens/: images.json (relative paths), image_embeddings.npy,
image_blocks.npy (mean of the preprocessed tensor over 8x8 blocks per channel, to check the
preprocessing itself), texts.json, text_ids.npy, text_embeddings.npy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import _torch_shim  # noqa: E402, F401  (before open_clip)
import numpy as np  # noqa: E402
import open_clip  # noqa: E402
import pillow_heif  # noqa: E402
import pillow_jxl  # noqa: E402, F401  (registers the JPEG XL plugin)
import torch  # noqa: E402
from make_tiny_clip import NAME, build_model  # noqa: E402
from open_clip.transform import PreprocessCfg, image_transform_v2  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

pillow_heif.register_heif_opener()

PHOTOS = ROOT.parent / "shared" / "testdata" / "photos"
OUT = ROOT / "tests" / "fixtures" / "goldens"
BLOCKS = 8

TEXTS = [
    "a photo of a dog",
    "",
    "   ",
    "Red Mushroom in MOSS",
    "café crème brûlée",
    "naïve façade São Paulo Zürich",
    "🐶🐱 cute pets 😀",
    "👨‍👩‍👧‍👦 family picnic",
    "emoji with skin tone 👍🏽 and flag 🇯🇵",
    "東京の夜景",
    "Москва зимой",
    "مرحبا بالعالم",
    "ελληνικά νησιά",
    "&amp; Tom &amp;amp; Jerry &lt;3 &quot;quoted&quot;",
    "“curly quotes” and ‘single’ ones",
    "ﬁsh and ﬂowers",
    "Ｆｕｌｌ ｗｉｄｔｈ ＴＥＸＴ",
    "tabs\tand\nnewlines\r\n  everywhere  ",
    "mojibake: cafÃ© and â€œquotesâ€\x9d",
    "zero\u200bwidth space",
    "control\x00chars\x07here",
    "combining e\u0301 vs é",
    "İstanbul ŞEHİR",
    "ß straße STRASSE",
    "#hashtag @mention https://example.org/path?q=1&x=2",
    "C++ & C# programming!!!",
    "100% 3.14159 1,000,000",
    "it's a dog's life, isn't it? we'll see; you'd know, I'm sure",
    "\u00a0non-breaking\u00a0space",
    "Mixed CASE WiTh NumBers123abc",
    "IMG_2682.HEIC",
    "dog " * 75,
    "dog " * 76,
    "a very long description of a sunny beach with palm trees and people " * 6,
    "😀" * 100,
    "<|endoftext|> injected special token",
    "x<end_of_text>y and <start_of_text>",
    "!!<end_of_text> after punctuation, it's<end_of_text>",
]


def image_files() -> list[Path]:
    return [p for p in sorted(PHOTOS.rglob("*")) if p.is_file() and p.suffix.lower() not in (".xmp", ".md")]


def reference_image(path: Path) -> Image.Image:
    img = Image.open(path)
    img = ImageOps.exif_transpose(img)
    return img if img.mode == "RGB" else img.convert("RGB")


def main() -> None:
    model = build_model()
    pre_cfg = open_clip.get_model_preprocess_cfg(model)
    transform = image_transform_v2(PreprocessCfg(**pre_cfg), is_train=False)
    tokenizer = open_clip.get_tokenizer(NAME)
    OUT.mkdir(parents=True, exist_ok=True)

    names, embs, blocks = [], [], []
    with torch.no_grad():
        for p in image_files():
            try:
                img = reference_image(p)
            except OSError as exc:
                print(f"skip {p}: {exc}")
                continue
            x = transform(img)
            s = x.shape[-1] // BLOCKS
            blocks.append(x.reshape(3, BLOCKS, s, BLOCKS, s).mean(dim=(2, 4)).numpy())
            embs.append(model.encode_image(x[None], normalize=True)[0].numpy())
            names.append(p.relative_to(PHOTOS).as_posix())
            print(f"{names[-1]}  {img.size}")
        ids = tokenizer(TEXTS)
        text_embs = model.encode_text(ids, normalize=True).numpy()

    (OUT / "images.json").write_text(json.dumps(names, indent=1) + "\n")
    np.save(OUT / "image_embeddings.npy", np.stack(embs).astype(np.float32))
    np.save(OUT / "image_blocks.npy", np.stack(blocks).astype(np.float32))
    (OUT / "texts.json").write_text(json.dumps(TEXTS, indent=1, ensure_ascii=False) + "\n")
    np.save(OUT / "text_ids.npy", ids.numpy().astype(np.int32))
    np.save(OUT / "text_embeddings.npy", text_embs.astype(np.float32))
    print(f"{len(names)} images, {len(TEXTS)} texts -> {OUT}")


if __name__ == "__main__":
    main()
